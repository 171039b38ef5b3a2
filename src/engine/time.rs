//! Time as the engine sees it: a [`Nanos`] is a count of nanoseconds on a
//! monotonic clock the caller reads; the engine never reads one itself.
//! Deadlines saturate instead of overflowing, and [`NEVER`] means "does not
//! expire": an entry with that deadline is not in the timing wheel at all.

/// Nanoseconds on the caller's monotonic clock.
pub type Nanos = u64;

/// The deadline of an entry that never expires. No `now` reaches it: the
/// engine clamps `now` to `NEVER - 1`.
pub const NEVER: Nanos = u64::MAX;

/// The latest `now` the engine accepts, so that `deadline <= now` is never
/// true for [`NEVER`].
pub const LATEST_NOW: Nanos = NEVER - 1;

pub const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// `now + ttl`, saturating to [`NEVER`] for deadlines past the clock's range.
#[inline]
#[must_use]
pub fn deadline_after(now: Nanos, ttl_nanos: u64) -> Nanos {
    now.saturating_add(ttl_nanos)
}

/// Seconds as nanoseconds, rounded up so that any positive duration is at
/// least one nanosecond; saturates to `u64::MAX` for huge values and
/// infinity. `seconds` must be `>= 0` and not NaN.
#[inline]
#[must_use]
pub fn seconds_to_nanos(seconds: f64) -> u64 {
    debug_assert!(seconds >= 0.0, "negative or NaN seconds: {seconds}");
    let nanos = (seconds * NANOS_PER_SECOND as f64).ceil();
    // `as` saturates for floats out of range, which is the rounding we want.
    nanos as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_saturate() {
        assert_eq!(deadline_after(5, 10), 15);
        assert_eq!(deadline_after(LATEST_NOW, 1), NEVER);
        assert_eq!(deadline_after(1, u64::MAX), NEVER);
    }

    #[test]
    fn seconds_round_up_and_saturate() {
        assert_eq!(seconds_to_nanos(1.5), 1_500_000_000);
        assert_eq!(seconds_to_nanos(1e-12), 1);
        assert_eq!(seconds_to_nanos(0.0), 0);
        assert_eq!(seconds_to_nanos(1e300), u64::MAX);
        assert_eq!(seconds_to_nanos(f64::INFINITY), u64::MAX);
    }
}
