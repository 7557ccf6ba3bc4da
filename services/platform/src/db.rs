//! Database connections: a PostgreSQL schema per service, or a SQLite file per service in the
//! data directory. The same sea-orm code path serves both.

use std::{path::Path, time::Duration};

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr};
use sea_orm_migration::MigratorTrait;

use crate::config::ServerConfig;

/// Where one service keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseTarget {
    Sqlite {
        path: std::path::PathBuf,
    },
    Postgres {
        url: crate::config::Secret,
        schema: String,
    },
}

impl DatabaseTarget {
    /// The target of `service` under the process configuration.
    pub fn for_service(config: &ServerConfig, service: &str) -> Self {
        match &config.database_url {
            Some(url) => DatabaseTarget::Postgres {
                url: url.clone(),
                schema: format!(
                    "{}{}",
                    config.database_schema_prefix,
                    service.replace('-', "_")
                ),
            },
            None => DatabaseTarget::Sqlite {
                path: config.data_dir.join(format!("{service}.db")),
            },
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbSetupError {
    #[error("cannot create data directory {path}")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot connect to the database")]
    Connect(#[source] DbErr),
    #[error("cannot create schema {schema}")]
    Schema {
        schema: String,
        #[source]
        source: DbErr,
    },
    #[error("migrations failed")]
    Migrate(#[source] DbErr),
}

/// Opens a pool on the target, creating the PostgreSQL schema or the SQLite file if needed.
pub async fn connect(
    target: &DatabaseTarget,
    max_connections: u32,
) -> Result<DatabaseConnection, DbSetupError> {
    match target {
        DatabaseTarget::Sqlite { path } => connect_sqlite(path).await,
        DatabaseTarget::Postgres { url, schema } => {
            let bootstrap = Database::connect(options(url.expose(), 1))
                .await
                .map_err(DbSetupError::Connect)?;
            bootstrap
                .execute_unprepared(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
                .await
                .map_err(|source| DbSetupError::Schema {
                    schema: schema.clone(),
                    source,
                })?;
            bootstrap.close().await.ok();
            let mut opts = options(url.expose(), max_connections);
            opts.set_schema_search_path(schema.clone());
            Database::connect(opts).await.map_err(DbSetupError::Connect)
        }
    }
}

async fn connect_sqlite(path: &Path) -> Result<DatabaseConnection, DbSetupError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| DbSetupError::DataDir {
            path: dir.display().to_string(),
            source,
        })?;
    }
    // One connection: SQLite allows one writer, and a single connection turns lock contention
    // into queueing instead of SQLITE_BUSY errors.
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let db = Database::connect(options(&url, 1))
        .await
        .map_err(DbSetupError::Connect)?;
    for pragma in [
        "PRAGMA journal_mode = WAL",
        "PRAGMA synchronous = NORMAL",
        "PRAGMA foreign_keys = ON",
    ] {
        db.execute_unprepared(pragma)
            .await
            .map_err(DbSetupError::Connect)?;
    }
    Ok(db)
}

fn options(url: &str, max_connections: u32) -> ConnectOptions {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(max_connections)
        .min_connections(0)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(30))
        .sqlx_logging(false);
    opts
}

/// Applies the service's pending migrations.
pub async fn migrate<M: MigratorTrait>(db: &DatabaseConnection) -> Result<(), DbSetupError> {
    M::up(db, None).await.map_err(DbSetupError::Migrate)
}

/// Whether the backend supports row locks (`SELECT ... FOR UPDATE`).
pub fn supports_row_locks(db: &impl ConnectionTrait) -> bool {
    db.get_database_backend() == DbBackend::Postgres
}

/// Milliseconds since the Unix epoch: how timestamps are stored, the same on both backends.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `INSERT INTO table (columns)` of `rows` rows of parameters, in order. On PostgreSQL the same
/// statement first takes the transaction-scoped advisory lock named `lock` in the current schema:
/// writers that must commit in the order they insert (an outbox, an event log) queue on it, and
/// taking it in the insert saves a round trip while everyone else waits.
pub fn locked_insert_sql(
    backend: DbBackend,
    lock: &str,
    table: &str,
    columns: &[&str],
    rows: usize,
) -> String {
    let columns_list = columns.join(", ");
    let mut n = 0;
    let tuples: Vec<String> = (0..rows)
        .map(|_| {
            let params: Vec<String> = columns
                .iter()
                .map(|_| {
                    n += 1;
                    if backend == DbBackend::Postgres {
                        format!("${n}")
                    } else {
                        "?".into()
                    }
                })
                .collect();
            format!("({})", params.join(", "))
        })
        .collect();
    let values = tuples.join(", ");
    if backend == DbBackend::Postgres {
        format!(
            "WITH locked AS (SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.{lock}'))) \
             INSERT INTO {table} ({columns_list}) \
             SELECT v.* FROM locked, (VALUES {values}) AS v({columns_list})"
        )
    } else {
        format!("INSERT INTO {table} ({columns_list}) VALUES {values}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locked_insert_numbers_every_parameter_and_locks_only_on_postgres() {
        assert_eq!(
            locked_insert_sql(DbBackend::Postgres, "log", "t", &["a", "b"], 2),
            "WITH locked AS (SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.log'))) \
             INSERT INTO t (a, b) SELECT v.* FROM locked, (VALUES ($1, $2), ($3, $4)) AS v(a, b)"
        );
        assert_eq!(
            locked_insert_sql(DbBackend::Sqlite, "log", "t", &["a", "b"], 2),
            "INSERT INTO t (a, b) VALUES (?, ?), (?, ?)"
        );
    }
}
