//! The Python binding: `flexcache._core.FlexCache` and `ManualClock`.
//!
//! Each method converts its arguments (`args`, `key`), calls `item_size()`
//! if needed, then makes one engine call through
//! [`FlexCachePy::with_engine`]: under a short mutable borrow that runs no
//! Python code, and only after the borrow ends it closes and drops what the
//! engine released (`callbacks`). A re-entrant call from `close()` or
//! `item_size()` therefore finds the cache consistent and not borrowed; a
//! call from another thread while a borrow is held (which can only happen
//! if a Python finalizer runs mid-operation) gets pyo3's `RuntimeError`,
//! never a crash. `with_engine` is the one place that takes the borrow, so
//! a thread-safe mode (a lock inside the object instead of pyo3's borrow
//! flag) is a change to it alone.

mod args;
mod callbacks;
mod fastcall;
mod key;

use std::sync::Arc;

use pyo3::exceptions::{PyKeyError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyString;
use pyo3::{intern, PyTraverseError, PyVisit};

use self::args::{Arg, Ttl};
use self::callbacks::{close_one, close_released};
use self::key::Key;
use crate::clock::{Clock, ManualClock};
use crate::engine::prefetch;
use crate::engine::time::Nanos;
use crate::engine::{Cache, Config, InsertError, NewEntry, ReleaseReason, Released};

type Engine = Cache<Py<PyString>, Py<PyAny>>;

/// What one engine call hands back to be closed and dropped.
type ReleasedObjects = Released<Py<PyString>, Py<PyAny>>;

/// A clock that only moves when told to, for tests of expiry.
#[pyclass(name = "ManualClock", module = "flexcache.testing", frozen)]
#[derive(Debug)]
struct ManualClockPy {
    inner: Arc<ManualClock>,
}

#[pymethods]
impl ManualClockPy {
    #[new]
    fn new() -> Self {
        ManualClockPy {
            inner: Arc::new(ManualClock::new()),
        }
    }

    /// Moves time forward by `delta` (seconds or a timedelta, `>= 0`).
    fn advance(&self, delta: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.advance(args::advance_step(delta)?);
        Ok(())
    }

    /// Steps the wall clock alone by `seconds` (positive or negative), as a
    /// system time change would; monotonic time, and so every deadline
    /// already set, does not move.
    fn step_wall(&self, seconds: f64) -> PyResult<()> {
        if !seconds.is_finite() {
            return Err(PyValueError::new_err(
                "step_wall() takes a finite number of seconds",
            ));
        }
        self.inner.step_wall(seconds);
        Ok(())
    }

    /// Seconds advanced since the clock was made.
    fn monotonic(&self) -> f64 {
        self.inner.now() as f64 / 1e9
    }

    /// The clock's wall time, in seconds since the Unix epoch.
    fn time(&self) -> f64 {
        self.inner.wall_seconds()
    }

    fn __repr__(&self) -> String {
        format!("ManualClock(monotonic={:?})", self.monotonic())
    }
}

/// An in-memory cache keyed by `str`.
#[pyclass(name = "FlexCache", module = "flexcache", weakref)]
#[derive(Debug)]
struct FlexCachePy {
    inner: Engine,
    clock: Clock,
    /// `scan_interval` as the user gave it, for the property and `repr`.
    scan_interval_seconds: f64,
}

/// Which time [`FlexCachePy::with_engine`] reads for its engine call.
#[derive(Clone, Copy, Debug)]
enum TimeRule {
    /// For an operation that reads no new deadline: the clock only when the
    /// time can matter (see [`FlexCachePy::lookup_now`]).
    Lookup,
    /// The clock, always: the call computes a deadline or scans.
    Clock,
    /// The call takes no time: the engine's latest serves, unread.
    Untimed,
}

/// The time an engine call runs at, and the clock it was read from (a
/// deadline from a wall-clock `ttl` reads that clock's wall time).
#[derive(Clone, Copy, Debug)]
struct Time<'a> {
    now: Nanos,
    clock: &'a Clock,
}

impl FlexCachePy {
    /// The time for an operation that reads no new deadline: when the time
    /// cannot matter (see `Cache::needs_time`), the engine's latest time
    /// serves and the clock is not read (a clock read is a good part of a
    /// `get`).
    #[inline]
    fn lookup_now(&self) -> Nanos {
        if self.inner.needs_time() {
            self.clock.now()
        } else {
            self.inner.latest_now()
        }
    }

    /// Runs one engine call: borrows the cache mutably, reads the time by
    /// `time`, calls `call` with the engine, the time and the buffer for
    /// what it releases, ends the borrow, and then closes and drops what
    /// was released (user code may run there, and re-enter the cache).
    /// `call` must not run Python code: the borrow is held while it runs.
    ///
    /// Every access to the engine goes through here (the garbage
    /// collector's `__traverse__` and `__clear__` aside), so this is the
    /// one place to change for a lock. Inline, so that each method compiles
    /// to what it would be written out by hand.
    #[inline(always)]
    fn with_engine<R>(
        slf: &Bound<'_, Self>,
        time: TimeRule,
        call: impl FnOnce(&mut Engine, Time<'_>, &mut ReleasedObjects) -> R,
    ) -> PyResult<R> {
        let mut released = ReleasedObjects::new();
        let result = {
            let mut this = slf.try_borrow_mut()?;
            let this = &mut *this;
            let now = match time {
                TimeRule::Lookup => this.lookup_now(),
                TimeRule::Clock => this.clock.now(),
                TimeRule::Untimed => this.inner.latest_now(),
            };
            let time = Time {
                now,
                clock: &this.clock,
            };
            call(&mut this.inner, time, &mut released)
        };
        close_released(slf.py(), released);
        Ok(result)
    }
}

#[pymethods]
impl FlexCachePy {
    #[new]
    #[pyo3(
        signature = (eviction_policy = Arg::Missing, scan_interval = Arg::Missing, max_items = Arg::Missing, max_bytes = Arg::Missing, *, clock = None),
        text_signature = "(eviction_policy='lru', scan_interval=0.0, max_items=0, max_bytes=0, *, clock=None)"
    )]
    fn new(
        eviction_policy: Arg<'_>,
        scan_interval: Arg<'_>,
        max_items: Arg<'_>,
        max_bytes: Arg<'_>,
        clock: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let policy = args::eviction_policy(eviction_policy)?;
        let (scan_interval, scan_interval_seconds) = args::scan_interval(scan_interval)?;
        let max_items = args::limit(max_items, "max_items")?;
        let max_bytes = args::limit(max_bytes, "max_bytes")?;
        let clock = match clock {
            None => Clock::monotonic(),
            Some(obj) if obj.is_none() => Clock::monotonic(),
            Some(obj) => match obj.cast::<ManualClockPy>() {
                Ok(manual) => Clock::Manual(manual.get().inner.clone()),
                Err(_) => {
                    return Err(PyTypeError::new_err(
                        "clock must be a flexcache.testing.ManualClock or None",
                    ));
                }
            },
        };
        let config = Config {
            policy,
            max_items,
            max_bytes,
            scan_interval,
        };
        let inner = Cache::new(config, clock.now());
        Ok(FlexCachePy {
            inner,
            clock,
            scan_interval_seconds,
        })
    }

    /// Stores `value` under `key`, expiring after `ttl` (None: never).
    #[pyo3(signature = (key, value, ttl = None))]
    fn set<'py>(
        slf: &Bound<'py, Self>,
        key: &Bound<'py, PyAny>,
        value: &Bound<'py, PyAny>,
        ttl: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<()> {
        let py = slf.py();
        let parsed_key = Key::from_object(key)?;
        let ttl = args::ttl(ttl)?;
        // User code runs here, before the cache is borrowed.
        let (size, needs_close) = callbacks::measure(value)?;
        let time = if matches!(ttl, Ttl::Never) {
            TimeRule::Lookup
        } else {
            TimeRule::Clock
        };
        let result = Self::with_engine(slf, time, |engine, time, released| {
            let new = NewEntry {
                hash: parsed_key.hash,
                key: parsed_key.text.clone().unbind(),
                value: value.clone().unbind(),
                size,
                deadline: ttl.deadline(time.now, time.clock),
                needs_close,
            };
            let result =
                engine.insert(new, |stored| parsed_key.matches(stored), time.now, released);
            if !released.is_empty() {
                // Likely an eviction, and in a run of them: start loading
                // what the next one will release.
                prefetch_upcoming_victim(engine);
            }
            result
        })?;
        let refused = match result {
            Ok(()) => return Ok(()),
            Err(refused) => refused,
        };
        let too_large = matches!(refused, InsertError::TooLarge { .. });
        let (new_key, new_value) = refused.into_entry();
        // Dropped as `Bound`, at once (see `callbacks::close_one`).
        drop((new_key.into_bound(py), new_value.into_bound(py)));
        if !too_large {
            return Err(PyKeyError::new_err(key.clone().unbind()));
        }
        let max_bytes = Self::with_engine(slf, TimeRule::Untimed, |engine, _, _| {
            engine.config().max_bytes
        })?;
        Err(PyValueError::new_err(format!(
            "item size {size} is larger than max_bytes ({max_bytes})"
        )))
    }

    /// The value stored under `key`, or `default` if it is missing or expired.
    #[pyo3(signature = (key, default = None))]
    #[inline(always)]
    fn get<'py>(
        slf: &Bound<'py, Self>,
        key: &Bound<'py, PyAny>,
        default: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let key = Key::from_object(key)?;
        let found = Self::with_engine(slf, TimeRule::Lookup, |engine, time, released| {
            engine
                .get(key.hash, |stored| key.matches(stored), time.now, released)
                .map(|value| value.clone_ref(py))
        })?;
        Ok(match found {
            Some(value) => value.into_bound(py),
            None => default.unwrap_or_else(|| py.None().into_bound(py)),
        })
    }

    /// Removes `key`, closing its value. False if no live entry held it.
    fn delete<'py>(slf: &Bound<'py, Self>, key: &Bound<'py, PyAny>) -> PyResult<bool> {
        let key = Key::from_object(key)?;
        let removed = Self::with_engine(slf, TimeRule::Lookup, |engine, time, released| {
            engine.remove(key.hash, |stored| key.matches(stored), time.now, released)
        })?;
        // Closed after the borrow, as what the automatic scan released was.
        Ok(removed.is_some_and(|entry| {
            let live = entry.reason == ReleaseReason::Deleted;
            close_one(slf.py(), entry);
            live
        }))
    }

    /// Reaps every expired entry now, whatever `scan_interval` says.
    fn scan(slf: &Bound<'_, Self>) -> PyResult<()> {
        Self::with_engine(slf, TimeRule::Clock, |engine, time, released| {
            engine.scan(time.now, released);
        })
    }

    /// Removes every entry, closing each value.
    fn clear(slf: &Bound<'_, Self>) -> PyResult<()> {
        Self::with_engine(slf, TimeRule::Untimed, |engine, _, released| {
            engine.clear(released);
        })
    }

    /// Number of entries held (expired ones count until reaped).
    #[getter]
    fn items(slf: &Bound<'_, Self>) -> PyResult<usize> {
        Self::with_engine(slf, TimeRule::Untimed, |engine, _, _| engine.len())
    }

    /// Sum of the sizes of the entries held.
    #[getter]
    fn bytes(slf: &Bound<'_, Self>) -> PyResult<u128> {
        Self::with_engine(slf, TimeRule::Untimed, |engine, _, _| engine.bytes())
    }

    #[getter]
    fn eviction_policy(slf: &Bound<'_, Self>) -> PyResult<&'static str> {
        Self::with_engine(slf, TimeRule::Untimed, |engine, _, _| {
            engine.config().policy.name()
        })
    }

    /// Set at construction and kept by the binding, outside the engine.
    #[getter]
    fn scan_interval(&self) -> f64 {
        self.scan_interval_seconds
    }

    #[getter]
    fn max_items(slf: &Bound<'_, Self>) -> PyResult<u64> {
        Self::with_engine(slf, TimeRule::Untimed, |engine, _, _| {
            engine.config().max_items
        })
    }

    #[getter]
    fn max_bytes(slf: &Bound<'_, Self>) -> PyResult<u64> {
        Self::with_engine(slf, TimeRule::Untimed, |engine, _, _| {
            engine.config().max_bytes
        })
    }

    fn __len__(slf: &Bound<'_, Self>) -> PyResult<usize> {
        Self::with_engine(slf, TimeRule::Untimed, |engine, _, _| engine.len())
    }

    fn __contains__(slf: &Bound<'_, Self>, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        let key = Key::from_object(key)?;
        Self::with_engine(slf, TimeRule::Lookup, |engine, time, _| {
            engine.contains(key.hash, |stored| key.matches(stored), time.now)
        })
    }

    /// The object's own size and the native memory its engine holds (the
    /// arena of entries, the index, the timing wheel, the side tables).
    /// Keys and values are objects of their own, which `sys.getsizeof`
    /// does not count in a container either.
    fn __sizeof__(slf: &Bound<'_, Self>) -> PyResult<usize> {
        let own: usize = slf
            .get_type()
            .getattr(intern!(slf.py(), "__basicsize__"))?
            .extract()?;
        let engine = Self::with_engine(slf, TimeRule::Untimed, |engine, _, _| engine.heap_size())?;
        Ok(own + engine)
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let scan_interval = slf.try_borrow()?.scan_interval_seconds;
        Self::with_engine(slf, TimeRule::Untimed, |engine, _, _| {
            let config = engine.config();
            format!(
                "FlexCache(eviction_policy='{}', scan_interval={:?}, max_items={}, max_bytes={}, items={}, bytes={})",
                config.policy.name(),
                scan_interval,
                config.max_items,
                config.max_bytes,
                engine.len(),
                engine.bytes(),
            )
        })
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        let mut outcome = Ok(());
        self.inner.for_each(|key, value| {
            if outcome.is_ok() {
                outcome = visit.call(key).and_then(|()| visit.call(value));
            }
        });
        outcome
    }

    /// Breaks reference cycles for the garbage collector: drops every entry
    /// without calling `close()` (SPEC: collection is not a shutdown).
    fn __clear__(&mut self) {
        let mut released = ReleasedObjects::new();
        self.inner.clear(&mut released);
        drop(released);
    }
}

/// Starts loading the key and value objects the next eviction will drop
/// (see `engine::prefetch`): at that point the entry is in cache, but the
/// two objects, whose reference counts the drop writes, usually are not.
#[inline]
fn prefetch_upcoming_victim(engine: &Engine) {
    if let Some((key, value)) = engine.upcoming_victim() {
        let header = std::mem::size_of::<pyo3::ffi::PyObject>();
        prefetch(key.as_ptr().cast_const().cast(), header);
        prefetch(value.as_ptr().cast_const().cast(), header);
    }
}

// `gil_used`: key.rs reads a str's cached hash field directly, and the
// fastcall entries' safety arguments assume the GIL; a free-threaded CPython
// therefore re-enables the GIL when it imports the module (README, Threads).
#[pymodule(gil_used = true)]
#[pyo3(name = "_core")]
fn core_module(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<FlexCachePy>()?;
    fastcall::install(&module.py().get_type::<FlexCachePy>())?;
    module.add_class::<ManualClockPy>()?;
    Ok(())
}
