//! Which limits exist, their defaults, and the `--rate-limit NAME=COUNT/PERIOD` settings that
//! change them.

use std::{collections::BTreeMap, fmt, str::FromStr, time::Duration};

/// Every limit the services apply. User limits are per user and device, `Federation` and
/// `PushRelay` per calling server, the `Ip*` limits per client address (calls without a
/// session).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Limit {
    MessageSend,
    Typing,
    InviteCreate,
    GuildJoin,
    Login,
    Upload,
    Federation,
    PushRelay,
    IpLogin,
    IpInvite,
    IpServerInfo,
    IpSyncMailbox,
}

impl Limit {
    pub const ALL: [Limit; 12] = [
        Limit::MessageSend,
        Limit::Typing,
        Limit::InviteCreate,
        Limit::GuildJoin,
        Limit::Login,
        Limit::Upload,
        Limit::Federation,
        Limit::PushRelay,
        Limit::IpLogin,
        Limit::IpInvite,
        Limit::IpServerInfo,
        Limit::IpSyncMailbox,
    ];

    /// The name in settings, metrics and error messages.
    pub fn name(self) -> &'static str {
        match self {
            Limit::MessageSend => "message.send",
            Limit::Typing => "typing",
            Limit::InviteCreate => "invite.create",
            Limit::GuildJoin => "guild.join",
            Limit::Login => "login",
            Limit::Upload => "upload",
            Limit::Federation => "federation",
            Limit::PushRelay => "push.relay",
            Limit::IpLogin => "ip.login",
            Limit::IpInvite => "ip.invite",
            Limit::IpServerInfo => "ip.server_info",
            Limit::IpSyncMailbox => "ip.sync_mailbox",
        }
    }

    /// Generous for people, tight for scripts: a burst of `count` at once, then `count` per
    /// `period` on average.
    fn default_rule(self) -> Rule {
        let (count, secs) = match self {
            Limit::MessageSend => (50, 10),
            Limit::Typing => (60, 60),
            Limit::InviteCreate => (20, 60),
            Limit::GuildJoin => (20, 60),
            Limit::Login => (10, 60),
            Limit::Upload => (60, 60),
            Limit::Federation => (2000, 10),
            Limit::PushRelay => (2000, 10),
            Limit::IpLogin => (60, 60),
            Limit::IpInvite => (120, 60),
            Limit::IpServerInfo => (300, 60),
            Limit::IpSyncMailbox => (120, 60),
        };
        Rule {
            count,
            period: Duration::from_secs(secs),
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// At most `count` calls in any `period`, all of them at once if they come together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub count: u32,
    pub period: Duration,
}

impl Rule {
    /// Time between calls at the sustained rate.
    pub fn interval(&self) -> Duration {
        self.period / self.count
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} per {}", self.count, human(self.period))
    }
}

fn human(period: Duration) -> String {
    let secs = period.as_secs();
    match secs {
        s if s % 3600 == 0 => format!("{} h", s / 3600),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// The rule of every limit; a limit without one is off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    rules: BTreeMap<Limit, Rule>,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            rules: Limit::ALL.iter().map(|l| (*l, l.default_rule())).collect(),
        }
    }
}

/// Periods above this are refused: the shared store forgets a caller after the longest period.
const MAX_PERIOD: Duration = Duration::from_secs(24 * 3600);

impl RateLimits {
    /// No limit at all (benchmarks, trusted deployments: `--rate-limit all=off`).
    pub fn off() -> Self {
        Self {
            rules: BTreeMap::new(),
        }
    }

    pub fn rule(&self, limit: Limit) -> Option<Rule> {
        self.rules.get(&limit).copied()
    }

    /// The longest period of any rule: how long the shared store must remember a caller.
    pub fn longest_period(&self) -> Duration {
        self.rules
            .values()
            .map(|r| r.period)
            .max()
            .unwrap_or(Duration::from_secs(60))
    }

    /// The defaults changed by `settings`, each `NAME=COUNT/PERIOD` or `NAME=off`, applied in
    /// order (`all=off` first turns every limit off).
    pub fn from_settings<S: AsRef<str>>(settings: &[S]) -> Result<Self, String> {
        let mut limits = Self::default();
        for setting in settings {
            let setting = setting.as_ref().trim();
            let (name, value) = setting.split_once('=').ok_or_else(|| {
                format!("--rate-limit {setting:?}: expected NAME=COUNT/PERIOD or NAME=off")
            })?;
            let rule = match value.trim() {
                "off" => None,
                text => Some(
                    text.parse::<Rule>()
                        .map_err(|e| format!("--rate-limit {setting:?}: {e}"))?,
                ),
            };
            if name.trim() == "all" {
                limits.rules.clear();
                if rule.is_some() {
                    return Err("--rate-limit all= takes only `off`".into());
                }
                continue;
            }
            let limit = Limit::ALL
                .into_iter()
                .find(|l| l.name() == name.trim())
                .ok_or_else(|| {
                    let names: Vec<_> = Limit::ALL.iter().map(|l| l.name()).collect();
                    format!(
                        "--rate-limit {setting:?}: unknown limit (known: all, {})",
                        names.join(", ")
                    )
                })?;
            match rule {
                Some(rule) => limits.rules.insert(limit, rule),
                None => limits.rules.remove(&limit),
            };
        }
        Ok(limits)
    }
}

impl FromStr for Rule {
    type Err = String;

    /// `COUNT/PERIOD`, the period a number with `s`, `m` or `h` (a bare unit means one).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (count, period) = text
            .split_once('/')
            .ok_or("expected COUNT/PERIOD, e.g. 30/10s")?;
        let count: u32 = count
            .trim()
            .parse()
            .map_err(|_| format!("count {count:?} is not a whole number"))?;
        if count == 0 {
            return Err("count must be at least 1 (use `off` to lift a limit)".into());
        }
        let period = period.trim();
        let split = period.len()
            - period
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .len();
        let (number, unit) = period.split_at(split);
        let number: u64 = if number.is_empty() {
            1
        } else {
            number.parse().map_err(|_| "period is too long")?
        };
        let unit_secs = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            _ => return Err(format!("period {period:?}: expected e.g. 10s, 1m or 1h")),
        };
        let period = Duration::from_secs(number.saturating_mul(unit_secs));
        if period.is_zero() || period > MAX_PERIOD {
            return Err(format!("period {period:?} must be between 1 s and 24 h"));
        }
        Ok(Rule { count, period })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_change_the_defaults_in_order() {
        let limits = RateLimits::from_settings(&["message.send=5/2s", "typing=off", "login=3/h"])
            .expect("valid");
        assert_eq!(
            limits.rule(Limit::MessageSend),
            Some(Rule {
                count: 5,
                period: Duration::from_secs(2)
            })
        );
        assert_eq!(limits.rule(Limit::Typing), None);
        assert_eq!(
            limits.rule(Limit::Login).expect("valid").period,
            Duration::from_secs(3600)
        );
        assert_eq!(
            limits.rule(Limit::Upload),
            Limit::Upload.default_rule().into()
        );

        let only_send =
            RateLimits::from_settings(&["all=off", "message.send=1/1s"]).expect("valid");
        assert_eq!(only_send.rule(Limit::Login), None);
        assert!(only_send.rule(Limit::MessageSend).is_some());
        assert_eq!(only_send.longest_period(), Duration::from_secs(1));
    }

    #[test]
    fn bad_settings_say_what_is_wrong() {
        for (setting, expected) in [
            ("message.send", "expected NAME=COUNT/PERIOD"),
            ("nope=1/1s", "unknown limit"),
            ("login=0/1s", "at least 1"),
            ("login=1/0s", "between 1 s and 24 h"),
            ("login=1/2d", "expected e.g. 10s"),
            ("login=1/25h", "between 1 s and 24 h"),
            ("login=x/1s", "not a whole number"),
            ("all=1/1s", "only `off`"),
        ] {
            let err = RateLimits::from_settings(&[setting]).expect_err(setting);
            assert!(err.contains(expected), "{setting}: {err}");
        }
    }

    #[test]
    fn rules_read_as_people_write_them() {
        let rule: Rule = "30/10s".parse().expect("valid");
        assert_eq!(rule.to_string(), "30 per 10 s");
        assert_eq!(
            rule.interval(),
            Duration::from_millis(333) + Duration::from_nanos(333_333)
        );
        assert_eq!(
            "2/m".parse::<Rule>().expect("valid").to_string(),
            "2 per 1 min"
        );
    }
}
