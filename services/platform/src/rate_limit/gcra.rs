//! The token bucket as GCRA (generic cell rate algorithm): one number per caller, the time at
//! which its bucket will be full again (the "theoretical arrival time"). One number makes the
//! shared state a single compare-and-set value.

use std::time::Duration;

use super::Rule;

/// What a call may do, and the state to store when it goes ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead; `full_at` (µs since the epoch) is the caller's new state.
    Allow { full_at: u64 },
    /// Refused; a call after `retry_after` would be allowed.
    Refuse { retry_after: Duration },
}

/// Decides a call at `now` (µs since the epoch) for a caller whose bucket is full again at
/// `full_at` (none: never seen, or forgotten).
pub fn decide(full_at: Option<u64>, now: u64, rule: Rule) -> Decision {
    let interval = micros(rule.interval()).max(1);
    let period = micros(rule.period);
    let full_at = full_at.unwrap_or(now).max(now);
    let next = full_at.saturating_add(interval);
    // Allowed while the bucket, after this call, holds no more than `period` of debt.
    let allowed_from = next.saturating_sub(period);
    if now < allowed_from {
        Decision::Refuse {
            retry_after: Duration::from_micros(allowed_from - now),
        }
    } else {
        Decision::Allow { full_at: next }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000;

    fn rule(count: u32, secs: u64) -> Rule {
        Rule {
            count,
            period: Duration::from_secs(secs),
        }
    }

    /// Runs `calls` at `now`, threading the state; how many were allowed.
    fn burst(state: &mut Option<u64>, now: u64, calls: usize, rule: Rule) -> usize {
        (0..calls)
            .filter(|_| match decide(*state, now, rule) {
                Decision::Allow { full_at } => {
                    *state = Some(full_at);
                    true
                }
                Decision::Refuse { .. } => false,
            })
            .count()
    }

    #[test]
    fn a_full_bucket_takes_count_calls_at_once_then_refills_at_the_rate() {
        let rule = rule(5, 10);
        let mut state = None;
        let start = 1_000 * SEC;
        assert_eq!(burst(&mut state, start, 8, rule), 5);
        // One call's worth comes back every 2 s.
        assert_eq!(
            decide(state, start, rule),
            Decision::Refuse {
                retry_after: Duration::from_secs(2)
            }
        );
        assert_eq!(burst(&mut state, start + 2 * SEC - 1, 1, rule), 0);
        assert_eq!(burst(&mut state, start + 2 * SEC, 2, rule), 1);
        // After a whole period of quiet the bucket is full again, and no fuller.
        assert_eq!(burst(&mut state, start + 100 * SEC, 9, rule), 5);
    }

    #[test]
    fn sustained_rate_is_count_per_period() {
        let rule = rule(10, 1);
        let mut state = None;
        let allowed: usize = (0..1000u64)
            .map(|ms| burst(&mut state, 5 * SEC + ms * 1000, 1, rule))
            .sum();
        // The first burst plus the rate over the second that follows.
        assert!((10..=20).contains(&allowed), "{allowed}");
        assert_eq!(burst(&mut state, 7 * SEC, 100, rule), 10);
    }

    #[test]
    fn a_clock_behind_the_stored_state_is_not_a_free_pass() {
        let rule = rule(1, 60);
        let mut state = None;
        assert_eq!(burst(&mut state, 100 * SEC, 1, rule), 1);
        assert_eq!(burst(&mut state, 90 * SEC, 1, rule), 0);
    }
}
