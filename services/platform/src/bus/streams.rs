//! Every stream of the system, declared once. Each process ensures all of them at start, so a
//! publisher never depends on the consumer's process having started first.

use std::time::Duration;

use super::StreamSpec;

const DAY: Duration = Duration::from_secs(86_400);

/// Identity facts: `identity.v1.<aggregate>.<event>`.
pub const IDENTITY: &str = "identity";
/// Guild facts: `guild.v1.g.<guild_id>.<aggregate>.<event>`.
pub const GUILD: &str = "guild";
/// Outbound federation jobs (work queue): `federation.v1.job.<kind>`.
pub const FEDERATION_JOBS: &str = "federation-jobs";
/// Outcomes of federation jobs: `federation.v1.result.<kind>`.
pub const FEDERATION_RESULTS: &str = "federation-results";

/// The stream storing messages published on `subject` (relative), if any.
pub fn of_subject(subject: &str) -> Option<&'static str> {
    // Called per published message: the streams' subject prefixes are worked out once.
    static PREFIXES: std::sync::OnceLock<Vec<(String, &'static str)>> = std::sync::OnceLock::new();
    PREFIXES
        .get_or_init(|| {
            all()
                .into_iter()
                .flat_map(|spec| {
                    spec.subjects.into_iter().filter_map(move |pattern| {
                        Some((pattern.strip_suffix('>')?.to_owned(), spec.name))
                    })
                })
                .collect()
        })
        .iter()
        .find(|(prefix, _)| subject.starts_with(prefix.as_str()))
        .map(|(_, name)| *name)
}

pub fn all() -> Vec<StreamSpec> {
    vec![
        StreamSpec {
            name: IDENTITY,
            subjects: vec!["identity.v1.>".into()],
            work_queue: false,
            max_age: 7 * DAY,
        },
        StreamSpec {
            name: GUILD,
            subjects: vec!["guild.v1.>".into()],
            work_queue: false,
            // Event streams resume at least 24 h back (PROTOCOL.md section 10).
            max_age: 7 * DAY,
        },
        StreamSpec {
            name: FEDERATION_JOBS,
            subjects: vec!["federation.v1.job.>".into()],
            work_queue: true,
            // The longest job TTL (verify, migration, ban) is 7 days.
            max_age: 8 * DAY,
        },
        StreamSpec {
            name: FEDERATION_RESULTS,
            subjects: vec!["federation.v1.result.>".into()],
            work_queue: false,
            max_age: 7 * DAY,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_map_to_their_streams() {
        assert_eq!(of_subject("guild.v1.g.abc.message.created"), Some(GUILD));
        assert_eq!(of_subject("identity.v1.account.registered"), Some(IDENTITY));
        assert_eq!(
            of_subject("federation.v1.job.verify_user"),
            Some(FEDERATION_JOBS)
        );
        assert_eq!(
            of_subject("federation.v1.result.user_verified"),
            Some(FEDERATION_RESULTS)
        );
        assert_eq!(of_subject("guild.v2.other"), None);
    }
}
