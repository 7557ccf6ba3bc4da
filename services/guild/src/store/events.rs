//! The guild event log: every event, in commit order for readers, kept for resuming streams.

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, Value};

/// An event as stored: its log position and the encoded `Event`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    pub seq: i64,
    pub guild_id: String,
    pub payload: Vec<u8>,
}

/// An event to append: its guild, id and encoded `Event`.
pub struct NewEvent<'a> {
    pub guild_id: &'a str,
    pub event_id: &'a str,
    pub payload: &'a [u8],
}

/// Appends events, in order, in the caller's transaction.
///
/// On PostgreSQL the statement first takes an advisory lock held until the transaction ends, so
/// transactions append one after another and positions are handed out in commit order: a
/// reader never sees a position before a lower one commits. (SQLite has one writer at a time.)
/// Call it after the transaction's other writes, so the lock is held only to the commit.
pub async fn append(
    conn: &impl ConnectionTrait,
    events: &[NewEvent<'_>],
    now: i64,
) -> Result<(), DbErr> {
    if events.is_empty() {
        return Ok(());
    }
    let backend = conn.get_database_backend();
    let columns = ["guild_id", "event_id", "payload", "created_at"];
    let sql = mzchat_platform::db::locked_insert_sql(
        backend,
        "guild_events",
        "guild_events",
        &columns,
        events.len(),
    );
    let values: Vec<Value> = events
        .iter()
        .flat_map(|e| {
            [
                e.guild_id.into(),
                e.event_id.into(),
                e.payload.to_vec().into(),
                now.into(),
            ]
        })
        .collect();
    conn.execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await
        .map(|_| ())
}

/// Events of `guilds` after `after`, oldest first.
pub async fn after(
    conn: &impl ConnectionTrait,
    guilds: &[String],
    after: i64,
    limit: u64,
) -> Result<Vec<Logged>, DbErr> {
    if guilds.is_empty() {
        return Ok(vec![]);
    }
    let backend = conn.get_database_backend();
    let placeholders: Vec<String> = (0..guilds.len())
        .map(|i| {
            if backend == DbBackend::Postgres {
                format!("${}", i + 2)
            } else {
                "?".into()
            }
        })
        .collect();
    let first = if backend == DbBackend::Postgres {
        "$1"
    } else {
        "?"
    };
    let sql = format!(
        "SELECT seq, guild_id, payload FROM guild_events WHERE seq > {first} AND guild_id IN ({}) ORDER BY seq LIMIT {limit}",
        placeholders.join(", ")
    );
    let mut values: Vec<Value> = vec![after.into()];
    values.extend(guilds.iter().map(|g| Value::from(g.as_str())));
    let rows = conn
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    rows.iter().map(logged).collect()
}

/// Events of every guild after `after`, oldest first.
pub async fn all_after(
    conn: &impl ConnectionTrait,
    after: i64,
    limit: u64,
) -> Result<Vec<Logged>, DbErr> {
    let backend = conn.get_database_backend();
    let param = if backend == DbBackend::Postgres {
        "$1"
    } else {
        "?"
    };
    let sql = format!(
        "SELECT seq, guild_id, payload FROM guild_events WHERE seq > {param} ORDER BY seq LIMIT {limit}"
    );
    let rows = conn
        .query_all_raw(Statement::from_sql_and_values(backend, sql, [after.into()]))
        .await?;
    rows.iter().map(logged).collect()
}

fn logged(row: &sea_orm::QueryResult) -> Result<Logged, DbErr> {
    Ok(Logged {
        seq: row.try_get("", "seq")?,
        guild_id: row.try_get("", "guild_id")?,
        payload: row.try_get("", "payload")?,
    })
}

/// The newest position (0 when empty).
pub async fn head(conn: &impl ConnectionTrait) -> Result<i64, DbErr> {
    let backend = conn.get_database_backend();
    let row = conn
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT COALESCE(MAX(seq), 0) AS head FROM guild_events",
        ))
        .await?;
    Ok(row
        .and_then(|r| r.try_get::<i64>("", "head").ok())
        .unwrap_or(0))
}

/// The oldest position still kept (0 when empty).
pub async fn tail(conn: &impl ConnectionTrait) -> Result<i64, DbErr> {
    let backend = conn.get_database_backend();
    let row = conn
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT COALESCE(MIN(seq), 0) AS tail FROM guild_events",
        ))
        .await?;
    Ok(row
        .and_then(|r| r.try_get::<i64>("", "tail").ok())
        .unwrap_or(0))
}

/// Forgets events older than `before` (milliseconds since the epoch); returns how many.
pub async fn prune(conn: &impl ConnectionTrait, before: i64) -> Result<u64, DbErr> {
    let backend = conn.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => "DELETE FROM guild_events WHERE created_at < $1",
        _ => "DELETE FROM guild_events WHERE created_at < ?",
    };
    let values: [Value; 1] = [before.into()];
    Ok(conn
        .execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?
        .rows_affected())
}
