//! The clocks a cache can read: the machine's monotonic clock (through
//! `quanta`) or a [`ManualClock`] that moves only when told to, for tests.
//! Only the binding reads a clock; the engine takes `now` as an argument.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::engine::time::{Nanos, LATEST_NOW, NANOS_PER_SECOND};

/// A clock that stands still until [`ManualClock::advance`] moves it.
///
/// Monotonic time starts at 0; wall time starts at the system's wall time
/// when the clock is made and moves with it. Shared between the caches
/// that use it (an `Arc`), so one `advance` moves them all.
#[derive(Debug)]
pub struct ManualClock {
    nanos: AtomicU64,
    /// Wall time at monotonic 0, as `f64` bits (an atomic, so that
    /// [`ManualClock::step_wall`] can move it through a shared `Arc`).
    wall_origin_bits: AtomicU64,
}

impl ManualClock {
    #[must_use]
    pub fn new() -> Self {
        ManualClock {
            nanos: AtomicU64::new(0),
            wall_origin_bits: AtomicU64::new(system_wall_seconds().to_bits()),
        }
    }

    /// A clock at monotonic time `nanos` whose wall time at monotonic 0 is
    /// `wall_origin` seconds since the epoch: a copy of one that reads
    /// those (see [`ManualClock::wall_origin`]).
    #[must_use]
    pub fn at(nanos: Nanos, wall_origin: f64) -> Self {
        ManualClock {
            nanos: AtomicU64::new(nanos),
            wall_origin_bits: AtomicU64::new(wall_origin.to_bits()),
        }
    }

    /// Wall time at monotonic 0, in seconds since the epoch.
    pub fn wall_origin(&self) -> f64 {
        f64::from_bits(self.wall_origin_bits.load(Ordering::Relaxed))
    }

    /// Moves time forward, saturating at the end of the clock's range.
    pub fn advance(&self, nanos: u64) {
        update(&self.nanos, |current| current.saturating_add(nanos));
    }

    pub fn now(&self) -> Nanos {
        self.nanos.load(Ordering::Relaxed)
    }

    pub fn wall_seconds(&self) -> f64 {
        self.wall_origin() + self.now() as f64 / NANOS_PER_SECOND as f64
    }

    /// Steps the wall clock alone by `seconds` (either way), as an NTP
    /// correction or a user changing the system time would; monotonic time
    /// does not move.
    pub fn step_wall(&self, seconds: f64) {
        update(&self.wall_origin_bits, |bits| {
            (f64::from_bits(bits) + seconds).to_bits()
        });
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

/// Where a cache reads time.
#[derive(Debug, Clone)]
pub enum Clock {
    /// The machine's monotonic clock, counted from when the cache was made.
    Monotonic {
        clock: quanta::Clock,
        origin: u64,
    },
    Manual(Arc<ManualClock>),
}

impl Clock {
    #[must_use]
    pub fn monotonic() -> Self {
        // One `quanta::Clock` for the process, cloned: making one probes
        // the CPU with `cpuid`, which a virtual machine traps, and a new
        // `FlexCache()` cost ~28 us for it (a dict is ~50 ns).
        static SHARED: OnceLock<quanta::Clock> = OnceLock::new();
        let clock = SHARED.get_or_init(quanta::Clock::new).clone();
        let origin = clock.raw();
        Clock::Monotonic { clock, origin }
    }

    /// Nanoseconds, clamped below [`NEVER`] so that a deadline of "now"
    /// (an already-past datetime) is never mistaken for "never", even on a
    /// manual clock advanced to the end of its range.
    #[inline]
    #[must_use]
    pub fn now(&self) -> Nanos {
        let now = match self {
            Clock::Monotonic { clock, origin } => clock.delta_as_nanos(*origin, clock.raw()),
            Clock::Manual(manual) => manual.now(),
        };
        now.min(LATEST_NOW)
    }

    /// Seconds since the Unix epoch, as this clock sees the wall: a manual
    /// clock's wall time moves with it.
    #[must_use]
    pub fn wall_seconds(&self) -> f64 {
        match self {
            Clock::Monotonic { .. } => system_wall_seconds(),
            Clock::Manual(manual) => manual.wall_seconds(),
        }
    }
}

/// Applies `change` atomically (clocks are shared between threads).
fn update(cell: &AtomicU64, change: impl Fn(u64) -> u64) {
    // The closure always returns Some, so fetch_update cannot fail.
    let _ = cell.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |current| {
        Some(change(current))
    });
}

fn system_wall_seconds() -> f64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(since) => since.as_secs_f64(),
        Err(before) => -before.duration().as_secs_f64(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let manual = Arc::new(ManualClock::new());
        let clock = Clock::Manual(manual.clone());
        assert_eq!(clock.now(), 0);
        let wall = clock.wall_seconds();
        manual.advance(1_500_000_000);
        assert_eq!(clock.now(), 1_500_000_000);
        assert!((clock.wall_seconds() - wall - 1.5).abs() < 1e-6);
        manual.step_wall(-100.0);
        assert_eq!(clock.now(), 1_500_000_000);
        assert!((clock.wall_seconds() - wall + 98.5).abs() < 1e-6);
        manual.advance(u64::MAX);
        // Clamped below NEVER: a deadline of "now" must still mean expired.
        assert_eq!(clock.now(), LATEST_NOW);
    }

    #[test]
    fn monotonic_clock_does_not_go_back() {
        let clock = Clock::monotonic();
        let a = clock.now();
        let b = clock.now();
        assert!(b >= a);
    }
}
