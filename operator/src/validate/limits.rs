//! Rate limits and the X-Forwarded-For hops in front of mzchatd. mzchatd refuses to start on a
//! setting it cannot parse, so the operator checks them with the same grammar (restated here:
//! the operator does not depend on mzchatd's crates) before any pod is rolled.

use crate::crd::HomeserverSpec;

use super::Errors;

/// mzchatd's limit names (`--rate-limit NAME=...`), in its order.
pub const LIMIT_NAMES: [&str; 12] = [
    "message.send",
    "typing",
    "invite.create",
    "guild.join",
    "login",
    "upload",
    "federation",
    "push.relay",
    "ip.login",
    "ip.invite",
    "ip.server_info",
    "ip.sync_mailbox",
];

/// The name that lifts every limit; it only takes `off`.
pub const ALL: &str = "all";

/// Most proxies in front of mzchatd the operator accepts.
pub const MAX_FORWARDED_FOR_HOPS: i32 = 10;

/// Longest period mzchatd accepts, in seconds (24 h).
const MAX_PERIOD_SECS: u64 = 24 * 3600;

pub(super) fn check(spec: &HomeserverSpec, errors: &mut Errors) {
    for (name, rule) in &spec.rate_limits {
        let field = format!("spec.rateLimits[{name:?}]");
        let rule = rule.trim();
        if name == ALL {
            if rule != "off" {
                errors.add(
                    field,
                    format!("{rule:?}: `all` takes only off (it lifts every limit; name the limits to change them)"),
                );
            }
            continue;
        }
        if !LIMIT_NAMES.contains(&name.as_str()) {
            errors.add(
                field,
                format!("unknown limit; known: {ALL}, {}", LIMIT_NAMES.join(", ")),
            );
            continue;
        }
        if rule != "off"
            && let Err(m) = parse_rule(rule)
        {
            errors.add(
                field,
                format!(
                    "{rule:?}: {m}; a rule is COUNT/PERIOD, e.g. 30/10s, 5/1m or 100/1h, or off"
                ),
            );
        }
    }
    let hops = spec.forwarded_for_hops;
    if !(0..=MAX_FORWARDED_FOR_HOPS).contains(&hops) {
        errors.add(
            "spec.forwardedForHops",
            format!("is {hops}; it is the number of proxies in front of mzchatd that append to X-Forwarded-For, between 0 and {MAX_FORWARDED_FOR_HOPS} (1 behind the route's Ingress or Gateway)"),
        );
    }
}

/// mzchatd's `COUNT/PERIOD`: COUNT a whole number of at least 1, PERIOD digits (none: 1) and a
/// unit s, m or h, between 1 s and 24 h. The count and the period in seconds.
pub fn parse_rule(text: &str) -> Result<(u32, u64), String> {
    let (count, period) = text.split_once('/').ok_or("expected COUNT/PERIOD")?;
    let count: u32 = count
        .trim()
        .parse()
        .map_err(|_| format!("count {:?} is not a whole number", count.trim()))?;
    if count == 0 {
        return Err("count must be at least 1 (use off to lift a limit)".into());
    }
    let period = period.trim();
    let digits = period.len()
        - period
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .len();
    let (number, unit) = period.split_at(digits);
    let number: u64 = if number.is_empty() {
        1
    } else {
        number.parse().map_err(|_| "period is too long")?
    };
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => {
            return Err(format!(
                "period {period:?} must be a number with s, m or h, e.g. 10s, 1m or 1h"
            ));
        }
    };
    let secs = number.saturating_mul(unit_secs);
    if secs == 0 || secs > MAX_PERIOD_SECS {
        return Err(format!("period {period:?} must be between 1s and 24h"));
    }
    Ok((count, secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_as_mzchatd_parses_them() {
        assert_eq!(parse_rule("30/10s"), Ok((30, 10)));
        assert_eq!(parse_rule(" 5 / 1m "), Ok((5, 60)));
        assert_eq!(parse_rule("3/h"), Ok((3, 3600)), "a bare unit means one");
        assert_eq!(parse_rule("1/24h"), Ok((1, 86_400)));
        assert_eq!(parse_rule("1/86400s"), Ok((1, 86_400)));
    }

    #[test]
    fn bad_rules_say_what_is_wrong() {
        for (rule, expected) in [
            ("30", "expected COUNT/PERIOD"),
            ("x/1s", "not a whole number"),
            ("-1/1s", "not a whole number"),
            ("4294967296/1s", "not a whole number"),
            ("0/1s", "at least 1"),
            ("1/0s", "between 1s and 24h"),
            ("1/25h", "between 1s and 24h"),
            ("1/86401s", "between 1s and 24h"),
            ("1/2d", "s, m or h"),
            ("1/10 s", "s, m or h"),
            ("1/1.5m", "s, m or h"),
            ("1/", "s, m or h"),
            ("1/99999999999999999999s", "too long"),
            ("30/10s,login=off", "s, m or h"),
        ] {
            let err = parse_rule(rule).expect_err(rule);
            assert!(err.contains(expected), "{rule}: {err}");
        }
    }
}
