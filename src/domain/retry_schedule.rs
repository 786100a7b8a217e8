//! When a webhook delivery that failed is tried again.
use std::{fmt, time::Duration};

/// The default: 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, then every 3 h, up
/// to about 23 hours after the first attempt (14 attempts in all).
pub const DEFAULT_RETRY_SCHEDULE: &str = "5s,30s,2m,10m,30m,1h,3h,3h,3h,3h,3h,3h,3h";

/// The waits between attempts: after the first failed attempt the first
/// wait, and so on; when they run out the delivery has failed.
#[derive(Clone, PartialEq, Eq)]
pub struct RetrySchedule(Vec<Duration>);

/// The most retries a schedule may list.
const MAX_RETRIES: usize = 100;

impl RetrySchedule {
    /// Parses `5s,30s,2m,1h` (units `ms`, `s`, `m`, `h`; each wait at most
    /// a day).
    pub fn parse(text: &str) -> Result<Self, String> {
        let waits = text
            .split(',')
            .map(|part| parse_wait(part.trim()))
            .collect::<Option<Vec<_>>>()
            .filter(|waits| waits.len() <= MAX_RETRIES)
            .ok_or_else(|| {
                format!("expected up to {MAX_RETRIES} waits like 5s,30s,2m,1h (ms, s, m, h; each at most 24h)")
            })?;
        Ok(Self(waits))
    }

    /// How many attempts a delivery gets in all.
    pub fn attempts(&self) -> i32 {
        self.0.len() as i32 + 1
    }

    /// The wait after `attempts` failed attempts, spread by `jitter` (from
    /// -1 to 1) over ±20 % of it so that endpoints that failed together are
    /// not all tried again at once; none when no attempt is left.
    pub fn wait_after(&self, attempts: i32, jitter: f64) -> Option<Duration> {
        let wait = *self
            .0
            .get(usize::try_from(attempts).ok()?.checked_sub(1)?)?;
        Some(wait.mul_f64(1.0 + 0.2 * jitter.clamp(-1.0, 1.0)))
    }

    /// The longest wait: how long a `Retry-After` may put an attempt off.
    pub fn longest(&self) -> Duration {
        self.0.iter().copied().max().unwrap_or_default()
    }
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self::parse(DEFAULT_RETRY_SCHEDULE).unwrap_or(Self(Vec::new()))
    }
}

impl fmt::Debug for RetrySchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.0).finish()
    }
}

fn parse_wait(text: &str) -> Option<Duration> {
    let digits = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(digits);
    let number: u64 = number.parse().ok()?;
    let wait = match unit {
        "ms" => Duration::from_millis(number),
        "s" => Duration::from_secs(number),
        "m" => Duration::from_secs(number.checked_mul(60)?),
        "h" => Duration::from_secs(number.checked_mul(3_600)?),
        _ => return None,
    };
    (wait <= Duration::from_secs(86_400)).then_some(wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_spans_about_a_day_in_fourteen_attempts() {
        let schedule = RetrySchedule::default();
        assert_eq!(schedule.attempts(), 14);
        let total: Duration = (1..14).filter_map(|n| schedule.wait_after(n, 0.0)).sum();
        assert_eq!(
            total,
            Duration::from_secs(5 + 30 + 120 + 600 + 1_800 + 3_600 + 7 * 10_800)
        );
        assert_eq!(schedule.wait_after(14, 0.0), None);
        assert_eq!(schedule.wait_after(0, 0.0), None);
        assert_eq!(schedule.wait_after(1, 1.0), Some(Duration::from_secs(6)));
        assert_eq!(schedule.wait_after(2, -1.0), Some(Duration::from_secs(24)));
        assert_eq!(schedule.longest(), Duration::from_secs(10_800));
    }

    #[test]
    fn schedules_parse_or_say_why_not() {
        let parsed = RetrySchedule::parse("100ms, 2s,1m").map(|s| format!("{s:?}"));
        assert_eq!(parsed.as_deref(), Ok("[100ms, 2s, 60s]"));
        for bad in [
            "",
            "5",
            "5x",
            "-1s",
            "25h",
            "s",
            "1s,,2s",
            "99999999999999999999h",
        ] {
            assert!(RetrySchedule::parse(bad).is_err(), "{bad}");
        }
        assert!(RetrySchedule::parse(&vec!["1s"; 101].join(",")).is_err());
    }
}
