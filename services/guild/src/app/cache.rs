//! Guild state for permission checks (owner, permission version, roles), kept in memory so the
//! per-call check does not hit the database. Entries are forgotten when the bus says the
//! guild's permissions changed (`permissions.changed`, `guild.deleted`), and live at most a few
//! seconds in case such a notice is lost. A token newer than the cached version reloads the
//! entry, so a cache that is behind never rejects a fresh token.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::domain::model::{Guild, Role};

const TTL: Duration = Duration::from_secs(5);
/// Entries beyond this are dropped oldest first.
const CAPACITY: usize = 10_000;

#[derive(Debug, Clone)]
pub struct GuildState {
    pub guild: Guild,
    pub roles: Vec<Role>,
}

#[derive(Default)]
pub struct PermissionCache {
    entries: Mutex<HashMap<String, (GuildState, Instant)>>,
}

impl PermissionCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (GuildState, Instant)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, guild_id: &str) -> Option<GuildState> {
        let entries = self.lock();
        entries
            .get(guild_id)
            .filter(|(_, loaded)| loaded.elapsed() < TTL)
            .map(|(state, _)| state.clone())
    }

    pub fn put(&self, state: GuildState) {
        let mut entries = self.lock();
        if entries.len() >= CAPACITY {
            entries.retain(|_, (_, loaded)| loaded.elapsed() < TTL);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(state.guild.id.clone(), (state, Instant::now()));
    }

    pub fn forget(&self, guild_id: &str) {
        self.lock().remove(guild_id);
    }
}

/// The guild id of a guild subject (`guild.v1.g.<guild_id>.<kind>`).
pub fn guild_of(subject: &str) -> Option<&str> {
    subject.strip_prefix("guild.v1.g.")?.split('.').next()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(id: &str, version: u64) -> GuildState {
        GuildState {
            guild: Guild {
                id: id.into(),
                name: "g".into(),
                icon_file_id: String::new(),
                owner_id: "o".into(),
                permission_version: version,
                member_count: 1,
                created_at: 0,
            },
            roles: vec![],
        }
    }

    #[test]
    fn entries_are_served_until_forgotten() {
        let cache = PermissionCache::default();
        cache.put(state("g1", 3));
        assert_eq!(cache.get("g1").map(|s| s.guild.permission_version), Some(3));
        cache.forget("g1");
        assert!(cache.get("g1").is_none());
    }

    #[test]
    fn guild_subjects_name_their_guild() {
        assert_eq!(guild_of("guild.v1.g.abc.permissions.changed"), Some("abc"));
        assert_eq!(guild_of("identity.v1.x"), None);
    }
}
