//! The newest events of the log, shared by every event stream of this process.
//!
//! One message wakes every stream of its guild. Without this window each stream would read the
//! log itself (a thousand streams, a thousand queries per message); with it, the woken streams
//! coalesce into one read of the log, and each then filters the window in memory. A stream that
//! is further behind than the window reads the database as before.

use std::{
    collections::VecDeque,
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
};

use mzchat_proto::guild::Event;
use prost::Message as _;
use sea_orm::{DatabaseConnection, DbErr};

use crate::store::{self, events::Logged};

/// Events kept in memory; a stream further behind than this reads the database.
const CAPACITY: usize = 4096;
/// Rows read from the log per query while catching up.
const PAGE: u64 = 1000;

/// A log entry decoded once for every stream (None: undecodable, skipped by streams).
#[derive(Debug)]
pub struct Entry {
    pub seq: i64,
    pub guild_id: String,
    pub event: Option<Event>,
}

impl From<Logged> for Entry {
    fn from(logged: Logged) -> Self {
        let event = Event::decode(logged.payload.as_slice()).ok();
        if event.is_none() {
            tracing::error!(seq = logged.seq, "undecodable event in the log");
        }
        Self {
            seq: logged.seq,
            guild_id: logged.guild_id,
            event,
        }
    }
}

#[derive(Default)]
struct Window {
    /// Set by the first read: every event after `floor`, up to the last read, is in `entries`.
    floor: Option<i64>,
    entries: VecDeque<Arc<Entry>>,
}

impl Window {
    fn last(&self) -> Option<i64> {
        self.entries.back().map(|e| e.seq).or(self.floor)
    }
}

#[derive(Default)]
pub struct RecentEvents {
    window: RwLock<Window>,
    /// Serializes reads of the log; holds the ticket the last read started at.
    read_lock: tokio::sync::Mutex<u64>,
    tickets: AtomicU64,
}

impl RecentEvents {
    /// Events of `guilds` after `cursor`, oldest first, at most `limit`: everything committed
    /// before this call is included.
    pub async fn after(
        &self,
        db: &DatabaseConnection,
        guilds: &[String],
        cursor: i64,
        limit: u64,
    ) -> Result<Vec<Arc<Entry>>, DbErr> {
        self.catch_up(db).await?;
        if let Some(found) = self.in_window(guilds, cursor, limit) {
            return Ok(found);
        }
        let rows = store::events::after(db, guilds, cursor, limit).await?;
        Ok(rows.into_iter().map(|l| Arc::new(l.into())).collect())
    }

    /// Reads the log's new events into the window. Callers that arrive while a read runs wait
    /// for it; the first of them reads again (the running read may have missed their commit),
    /// and the rest are covered by that read.
    async fn catch_up(&self, db: &DatabaseConnection) -> Result<(), DbErr> {
        let ticket = self.tickets.fetch_add(1, Ordering::SeqCst) + 1;
        let mut last_started = self.read_lock.lock().await;
        if *last_started >= ticket {
            return Ok(());
        }
        *last_started = self.tickets.load(Ordering::SeqCst);
        let last = self.read_window().last();
        let Some(mut last) = last else {
            let head = store::events::head(db).await?;
            self.write_window().floor = Some(head);
            return Ok(());
        };
        loop {
            let rows = store::events::all_after(db, last, PAGE).await?;
            let full = rows.len() as u64 == PAGE;
            let mut window = self.write_window();
            for row in rows {
                last = row.seq;
                window.entries.push_back(Arc::new(row.into()));
            }
            while window.entries.len() > CAPACITY {
                let dropped = window.entries.pop_front().map(|e| e.seq);
                window.floor = dropped;
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// The window's answer, or None when `cursor` is older than the window.
    fn in_window(&self, guilds: &[String], cursor: i64, limit: u64) -> Option<Vec<Arc<Entry>>> {
        let window = self.read_window();
        if window.floor.is_none_or(|floor| cursor < floor) {
            return None;
        }
        let start = window.entries.partition_point(|e| e.seq <= cursor);
        Some(
            window
                .entries
                .range(start..)
                .filter(|e| guilds.contains(&e.guild_id))
                .take(limit as usize)
                .cloned()
                .collect(),
        )
    }

    fn read_window(&self) -> std::sync::RwLockReadGuard<'_, Window> {
        self.window.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_window(&self) -> std::sync::RwLockWriteGuard<'_, Window> {
        self.window.write().unwrap_or_else(|e| e.into_inner())
    }
}
