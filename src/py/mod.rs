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
//!
//! A key that compares through Python's `==` (see `key`) cannot be
//! compared under the borrow: [`FlexCachePy::with_key`] runs the engine
//! call, and when the engine answers that it met such a key, compares the
//! candidates with the borrow released and runs the call again, as long as
//! the cache did not change meanwhile.

mod args;
mod bulk;
mod callbacks;
mod fastcall;
mod flight;
mod guard;
mod key;
mod memo;
mod persist;
mod policy;
mod types;

use std::sync::{Arc, OnceLock};

use pyo3::exceptions::{PyKeyError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use pyo3::{intern, PyTraverseError, PyVisit};
use smallvec::SmallVec;

use self::args::{Arg, Ttl};
use self::callbacks::{Hooks, ReleasedObjects};
use self::flight::{Flight, Joined};
use self::guard::GuardedEngine;
use self::key::{Key, Matcher, StoredKey};
use crate::clock::{Clock, ManualClock};
use crate::engine::prefetch;
use crate::engine::time::{Nanos, NEVER};
use crate::engine::{Cache, Config, InsertError, ReleaseReason, ReleasedEntry, Undecided};

type Engine = Cache<StoredKey, Py<PyAny>>;

/// An entry an operation took out and hands back itself.
type TakenEntry = ReleasedEntry<StoredKey, Py<PyAny>>;

/// What `live_entries` read: keys, values, and the generation.
type LiveEntries<'py> = (Vec<Bound<'py, PyAny>>, Vec<Bound<'py, PyAny>>, u64);

/// How many times an operation whose key compares in Python tries again
/// when the cache changed while the key was compared (CPython's dict tries
/// forever; SPEC asks for a bound).
const SETTLE_TRIES: usize = 16;

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

    /// Pickles (and copies) as a new clock at the same times.
    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyAny>, (u64, f64))> {
        let remake = py
            .import(intern!(py, "flexcache._persist"))?
            .getattr(intern!(py, "_manual_clock"))?;
        Ok((remake, (self.inner.now(), self.inner.wall_origin())))
    }

    /// A clock at monotonic `nanos` whose wall time at monotonic 0 was
    /// `wall_origin` (what `__reduce__` hands on).
    #[staticmethod]
    fn _at(nanos: u64, wall_origin: f64) -> Self {
        ManualClockPy {
            inner: Arc::new(ManualClock::at(nanos, wall_origin)),
        }
    }
}

/// An in-memory cache keyed by any hashable object.
/// Frozen: what never changes after construction is read with no borrow,
/// and the engine sits in its own cell (see `crate::cell`).
#[pyclass(name = "FlexCache", module = "flexcache", weakref, frozen)]
#[derive(Debug)]
struct FlexCachePy {
    engine: GuardedEngine,
    clock: Clock,
    /// The `ManualClock` object the cache was made with, handed on to its
    /// copies (`clock` holds what it reads).
    clock_object: Option<Py<PyAny>>,
    /// `scan_interval` as the user gave it, for the property and `repr`.
    scan_interval_seconds: f64,
    /// `weigher(key, value) -> size`, instead of the values' `item_size()`.
    weigher: Option<Py<PyAny>>,
    /// `on_remove(key, value, cause)`, told of every entry that leaves.
    on_remove: Option<Py<PyAny>>,
    /// A thread-safe cache's `get_or_set` computations under way, by key.
    in_flight: Option<Py<PyDict>>,
    /// `background_scan`, in seconds.
    background_scan: Option<f64>,
    /// The private `_closer`: called instead of `close()` (`flexcache.aio`).
    closer: Option<Py<PyAny>>,
    /// A policy written in Python (`flexcache.EvictionPolicy`), which
    /// chooses the victims of an engine made with `External` (see `policy`).
    python_policy: Option<Py<PyAny>>,
    /// The `flexcache._scanner.Scanner` running `scan()` in its thread,
    /// started by `__init__` (the object must exist for it to refer to).
    scanner: OnceLock<Py<PyAny>>,
}

pyo3::create_exception!(
    flexcache,
    TooLargeError,
    PyValueError,
    "A value larger than the cache's max_bytes on its own: a ValueError that says so, for \
     callers (the decorators) that hand such a value back unstored."
);

/// Why the engine refused a single store.
#[derive(Clone, Copy, PartialEq, Eq)]
enum StoreRefusal {
    Occupied,
    TooLarge,
    Undecided,
    /// The Python policy must choose a victim (see `policy`).
    NeedsRoom,
}

/// What `store_made`'s store of a made value found.
enum MadeStore<'py> {
    Stored,
    /// Over `max_bytes` on its own: returned, neither stored nor closed.
    TooLarge,
    /// The Python policy must choose a victim (see `policy`).
    NeedsRoom,
    /// A live entry appeared meanwhile, and wins.
    Held(Bound<'py, PyAny>),
}

/// The error for a call that finds the engine taken: a callback of this
/// cache's own call re-entered it, or another thread is in it.
#[cold]
#[inline(never)]
fn engine_in_use() -> PyErr {
    PyRuntimeError::new_err(
        "the cache is already in use (re-entered from its own callback, or used by another \
         thread at the same time)",
    )
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

impl TimeRule {
    /// The rule for a call that stores with `ttl`.
    fn storing(ttl: Ttl) -> Self {
        if matches!(ttl, Ttl::Never) {
            TimeRule::Lookup
        } else {
            TimeRule::Clock
        }
    }
}

/// The time an engine call runs at, and the clock it was read from (a
/// deadline from a wall-clock `ttl` reads that clock's wall time).
#[derive(Clone, Copy, Debug)]
struct Time<'a> {
    now: Nanos,
    clock: &'a Clock,
}

/// The engine call of an operation on one key: it gets the comparison to
/// find the key with, and answers [`Undecided`] (having changed nothing)
/// when it met a stored key that only Python can compare.
trait KeyCall<'py, R>:
    FnMut(&mut Engine, Time<'_>, &mut ReleasedObjects, Matcher<'_, 'py>) -> Result<R, Undecided>
{
}

impl<'py, R, F> KeyCall<'py, R> for F where
    F: FnMut(&mut Engine, Time<'_>, &mut ReleasedObjects, Matcher<'_, 'py>) -> Result<R, Undecided>
{
}

impl FlexCachePy {
    /// The time for an operation that reads no new deadline: when the time
    /// cannot matter (see `Cache::needs_time`), the engine's latest time
    /// serves and the clock is not read (a clock read is a good part of a
    /// `get`).
    #[inline]
    fn lookup_now(&self, engine: &Engine) -> Nanos {
        if engine.needs_time() {
            self.clock.now()
        } else {
            engine.latest_now()
        }
    }

    /// Runs one engine call: takes the engine, reads the time by `time`,
    /// calls `call` with the engine, the time and the buffer for what it
    /// releases, gives the engine back, and then tells `on_remove`, closes
    /// and drops what was released (user code may run there, and re-enter
    /// the cache). `call` must not run Python code: the engine is taken
    /// while it runs.
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
        let this = slf.get();
        let result = {
            // Declared first, dropped last: the engine goes back before
            // the lock is unlocked.
            let _lock = this.engine.lock(slf.py());
            let mut engine = this.engine.take(slf.py()).ok_or_else(engine_in_use)?;
            let now = match time {
                TimeRule::Lookup => this.lookup_now(&engine),
                TimeRule::Clock => this.clock.now(),
                TimeRule::Untimed => engine.latest_now(),
            };
            let time = Time {
                now,
                clock: &this.clock,
            };
            call(&mut engine, time, &mut released)
        };
        let errors = Hooks::release_all(|| Self::hooks(slf), slf.py(), &mut released);
        // Empty and inline now (see `Hooks::release_all`).
        std::mem::forget(released);
        if errors > 0 {
            Self::count_close_errors(slf, errors);
        }
        Ok(result)
    }

    /// What the cache calls on an entry it lets go.
    #[inline(always)]
    fn hooks<'a, 'py>(slf: &'a Bound<'py, Self>) -> Hooks<'a, 'py> {
        Hooks {
            policy: Self::python_policy(slf),
            on_remove: slf.get().on_remove.as_ref().map(|f| f.bind(slf.py())),
            closer: slf.get().closer.as_ref().map(|f| f.bind(slf.py())),
        }
    }

    /// Runs the engine call of an operation on `key` (see [`KeyCall`]). A
    /// key that compares in Rust is decided in that one call; otherwise the
    /// candidates are compared here, with the borrow released, and the call
    /// runs again with their verdict, unless the cache changed meanwhile
    /// (then the comparison starts over, up to [`SETTLE_TRIES`] times).
    #[inline(always)]
    fn with_key<'py, R>(
        slf: &Bound<'py, Self>,
        key: &Key<'py>,
        time: TimeRule,
        mut call: impl KeyCall<'py, R>,
    ) -> PyResult<R> {
        let first = Self::with_engine(
            slf,
            time,
            #[inline(always)]
            |engine, time, released| call(engine, time, released, Matcher::first(key)),
        )?;
        match first {
            Ok(result) => Ok(result),
            Err(Undecided) => Self::settle(slf, key, time, call),
        }
    }

    #[cold]
    #[inline(never)]
    fn settle<'py, R>(
        slf: &Bound<'py, Self>,
        key: &Key<'py>,
        time: TimeRule,
        mut call: impl KeyCall<'py, R>,
    ) -> PyResult<R> {
        let py = slf.py();
        for _ in 0..SETTLE_TRIES {
            let (candidates, generation) =
                Self::with_engine(slf, TimeRule::Untimed, |engine, _, _| {
                    let mut found = SmallVec::<[Bound<'py, PyAny>; 2]>::new();
                    engine.candidates(
                        key.hash,
                        |stored| key.compare(stored),
                        |stored| found.push(stored.bind(py).clone()),
                    );
                    (found, engine.generation())
                })?;
            let mut winner = None;
            for candidate in &candidates {
                // User code: it may raise, or change the cache.
                if key.equals(candidate)? {
                    winner = Some(candidate);
                    break;
                }
            }
            let outcome = Self::with_engine(slf, time, |engine, time, released| {
                (engine.generation() == generation)
                    .then(|| call(engine, time, released, Matcher::settled(key, winner)))
            })?;
            if let Some(Ok(result)) = outcome {
                return Ok(result);
            }
        }
        Err(PyRuntimeError::new_err(format!(
            "the cache changed while a key was being compared, on each of {SETTLE_TRIES} tries \
             (does the key's __eq__ change the cache?)"
        )))
    }

    /// Ends the background scan thread, if there is one, and waits for it.
    fn stop_background_scan(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        if let Some(scanner) = slf.get().scanner.get() {
            scanner.bind(py).call_method0(intern!(py, "stop"))?;
        }
        Ok(())
    }

    /// Counts failed `close()` and `on_remove` calls in the statistics.
    #[cold]
    #[inline(never)]
    fn count_close_errors(slf: &Bound<'_, Self>, errors: u64) {
        let this = slf.get();
        let _lock = this.engine.lock(slf.py());
        match this.engine.take(slf.py()) {
            Some(mut engine) => engine.count_close_errors(errors),
            None => args::discard(engine_in_use()),
        }
    }

    /// Tells the hooks about an entry an operation took out itself and,
    /// when `close`, closes its value.
    #[inline(always)]
    fn release_taken(slf: &Bound<'_, Self>, entry: TakenEntry, close: bool) {
        let errors = Self::hooks(slf).release(slf.py(), entry, close);
        if errors > 0 {
            Self::count_close_errors(slf, errors);
        }
    }

    /// The size of `value` stored under `key`, and whether it needs
    /// closing: the cache's weigher's answer if it has one, else the
    /// value's own `item_size()`. User code; before any engine borrow.
    #[inline(always)]
    fn measure(
        slf: &Bound<'_, Self>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<(u64, bool)> {
        match &slf.get().weigher {
            None => callbacks::measure(value),
            Some(weigher) => callbacks::weigh(weigher.bind(slf.py()), key, value),
        }
    }

    /// The exception for a size over `max_bytes`.
    fn too_large(slf: &Bound<'_, Self>, size: u64) -> PyResult<PyErr> {
        let max_bytes = Self::with_engine(slf, TimeRule::Untimed, |engine, _, _| {
            engine.config().max_bytes
        })?;
        Ok(TooLargeError::new_err(format!(
            "item size {size} is larger than max_bytes ({max_bytes})"
        )))
    }

    /// `set` (`REPLACE` false) and `put` (true).
    #[inline(always)]
    fn store<'py, const REPLACE: bool>(
        slf: &Bound<'py, Self>,
        key: &Bound<'py, PyAny>,
        value: &Bound<'py, PyAny>,
        ttl: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<()> {
        let py = slf.py();
        let parsed_key = Key::from_object(key)?;
        let ttl = args::ttl(ttl)?;
        // User code runs here, before the cache is borrowed.
        let (size, needs_close) = Self::measure(slf, key, value)?;
        let mut kept_value = false;
        loop {
            let refused = Self::with_key(
                slf,
                &parsed_key,
                TimeRule::storing(ttl),
                #[inline(always)]
                |engine, time, released, matcher| {
                    let deadline = ttl.deadline(time.now, time.clock);
                    let new = parsed_key.new_entry(value, size, needs_close, deadline);
                    let eq = |stored: &StoredKey| matcher.compare(stored);
                    let result = if REPLACE {
                        engine.put(new, eq, time.now, released)
                    } else {
                        engine.insert(new, eq, time.now, released)
                    };
                    if !released.is_empty() {
                        if REPLACE {
                            kept_value = keep_restored_value(py, released, key, value);
                        }
                        // Likely an eviction, and in a run of them: start
                        // loading what the next one will release.
                        prefetch_upcoming_victim(engine);
                    }
                    // The refused key and value are dropped here, as `Bound` (at
                    // once, see `Hooks::release`): the caller's own references
                    // keep both alive, so no object is freed and no code runs.
                    // What leaves the engine call is then one byte, not an
                    // error carrying two objects (moved through the stack, it
                    // stalled every `set` on a store-to-load forward).
                    let refusal = match result {
                        Ok(()) => return Ok(None),
                        Err(InsertError::Occupied { .. }) => StoreRefusal::Occupied,
                        Err(InsertError::TooLarge { .. }) => StoreRefusal::TooLarge,
                        Err(InsertError::Undecided { .. }) => StoreRefusal::Undecided,
                        Err(InsertError::NeedsRoom { .. }) => StoreRefusal::NeedsRoom,
                    };
                    let (new_key, new_value) = result.unwrap_err().into_entry();
                    drop((new_key.into_bound(py), new_value.into_bound(py)));
                    match refusal {
                        StoreRefusal::Undecided => Err(Undecided),
                        refusal => Ok(Some(refusal)),
                    }
                },
            )?;
            match refused {
                None => break,
                Some(StoreRefusal::NeedsRoom) => Self::evict_for_policy(slf, &[&parsed_key])?,
                Some(StoreRefusal::TooLarge) => return Err(Self::too_large(slf, size)?),
                Some(_) => return Err(PyKeyError::new_err((key.clone().unbind(),))),
            }
        }
        if let Some(policy) = Self::python_policy(slf) {
            // The very value stored again was told of no release: its old
            // entry left all the same.
            if kept_value {
                policy::on_remove(policy, key);
            }
            policy::on_insert(policy, key);
        }
        Ok(())
    }

    /// Removes a key's entry and hands it back, to be released with
    /// [`FlexCachePy::release_taken`].
    #[inline(always)]
    fn take_entry<'py>(slf: &Bound<'py, Self>, key: &Key<'py>) -> PyResult<Option<TakenEntry>> {
        Self::with_key(
            slf,
            key,
            TimeRule::Lookup,
            #[inline(always)]
            |engine, time, released, matcher| {
                engine.remove(
                    key.hash,
                    |stored| matcher.compare(stored),
                    time.now,
                    released,
                )
            },
        )
    }

    /// `factory()`, stored under `key` as `set` stores it, unless a live
    /// entry appeared meanwhile, which wins (and is returned).
    fn make_and_store<'py>(
        slf: &Bound<'py, Self>,
        parsed_key: &Key<'py>,
        factory: &Bound<'py, PyAny>,
        ttl: Ttl,
    ) -> PyResult<Bound<'py, PyAny>> {
        Self::store_made(slf, parsed_key, factory.call0()?, ttl)
    }

    /// The tail of `get_or_set`, once the value is made: stored as `set`
    /// stores it, unless a live entry appeared meanwhile, which wins (and
    /// is returned; the made value goes as a replaced entry would). A
    /// value too large for `max_bytes` is returned, neither stored nor
    /// closed.
    fn store_made<'py>(
        slf: &Bound<'py, Self>,
        parsed_key: &Key<'py>,
        made: Bound<'py, PyAny>,
        ttl: Ttl,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let key = &parsed_key.object;
        let (size, needs_close) = Self::measure(slf, key, &made)?;
        let holder = loop {
            let outcome = Self::with_key(
                slf,
                parsed_key,
                TimeRule::storing(ttl),
                |engine, time, released, matcher| {
                    let deadline = ttl.deadline(time.now, time.clock);
                    let new = parsed_key.new_entry(&made, size, needs_close, deadline);
                    let eq = |stored: &StoredKey| matcher.compare(stored);
                    let Err(refused) = engine.insert(new, eq, time.now, released) else {
                        return Ok(MadeStore::Stored);
                    };
                    let outcome = match refused {
                        InsertError::Undecided { .. } => None,
                        InsertError::TooLarge { .. } => Some(MadeStore::TooLarge),
                        InsertError::NeedsRoom { .. } => Some(MadeStore::NeedsRoom),
                        InsertError::Occupied { .. } => engine
                            .peek(parsed_key.hash, eq, time.now)?
                            .map(|value| MadeStore::Held(value.bind(py).clone())),
                    };
                    let (key, value) = refused.into_entry();
                    drop((key.into_bound(py), value.into_bound(py)));
                    outcome.ok_or(Undecided)
                },
            )?;
            match outcome {
                MadeStore::Stored => {
                    Self::tell_inserted(slf, key);
                    return Ok(made);
                }
                MadeStore::TooLarge => return Ok(made),
                MadeStore::NeedsRoom => Self::evict_for_policy(slf, &[parsed_key])?,
                MadeStore::Held(holder) => break holder,
            }
        };
        // The factory's result, which nobody else has, goes as a replaced
        // entry would.
        let discarded = ReleasedEntry {
            key: key.clone().unbind(),
            value: made.unbind(),
            needs_close,
            reason: ReleaseReason::Replaced,
        };
        Self::release_taken(slf, discarded, true);
        Ok(holder)
    }

    /// The live value of a key, as `peek` looks it up: nothing counted,
    /// moved or reaped.
    fn peeked<'py>(slf: &Bound<'py, Self>, key: &Key<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let py = slf.py();
        Self::with_key(slf, key, TimeRule::Lookup, |engine, time, _, matcher| {
            Ok(engine
                .peek(key.hash, |stored| matcher.compare(stored), time.now)?
                .map(|value| value.bind(py).clone()))
        })
    }

    /// The live value of a key, as `get` looks it up.
    #[inline(always)]
    fn lookup<'py>(slf: &Bound<'py, Self>, key: &Key<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let py = slf.py();
        let found = Self::with_key(
            slf,
            key,
            TimeRule::Lookup,
            #[inline(always)]
            |engine, time, released, matcher| {
                Ok(engine
                    .get(
                        key.hash,
                        |stored| matcher.compare(stored),
                        time.now,
                        released,
                    )?
                    .map(|value| value.bind(py).clone()))
            },
        )?;
        if found.is_some() {
            Self::tell_accessed(slf, &key.object);
        }
        Ok(found)
    }

    /// The live entries' keys and values, in eviction order where the
    /// policy keeps one (see `Cache::for_each_live`), and the generation
    /// they were read at.
    fn live_entries<'py>(
        slf: &Bound<'py, Self>,
        keys: bool,
        values: bool,
    ) -> PyResult<LiveEntries<'py>> {
        let py = slf.py();
        Self::with_engine(slf, TimeRule::Lookup, |engine, time, _| {
            let mut found_keys = Vec::new();
            let mut found_values = Vec::new();
            engine.for_each_live(time.now, |key, value| {
                if keys {
                    found_keys.push(key.bind(py).clone());
                }
                if values {
                    found_values.push(value.bind(py).clone());
                }
            });
            (found_keys, found_values, engine.generation())
        })
    }

    fn generation(slf: &Bound<'_, Self>) -> PyResult<u64> {
        Self::with_engine(slf, TimeRule::Untimed, |engine, _, _| engine.generation())
    }
}

/// After a `put` of `value` under `key`: the entry it replaced, if that
/// held the very same value object, is no release at all (the value stays
/// in the cache), so it is taken out of `released` unclosed and untold.
/// The replaced entry comes back with the new key object (the cache keeps
/// the first), which is how it is recognised.
#[inline(never)]
fn keep_restored_value(
    py: Python<'_>,
    released: &mut ReleasedObjects,
    key: &Bound<'_, PyAny>,
    value: &Bound<'_, PyAny>,
) -> bool {
    let Some(position) = released.iter().position(|entry| {
        entry.reason == ReleaseReason::Replaced && entry.key.is(key) && entry.value.is(value)
    }) else {
        return false;
    };
    let entry = released.remove(position);
    // The caller holds both objects: these drops only decrement.
    drop((entry.key.into_bound(py), entry.value.into_bound(py)));
    true
}

#[pymethods]
impl FlexCachePy {
    #[new]
    #[pyo3(
        signature = (eviction_policy = Arg::Missing, scan_interval = Arg::Missing, max_items = Arg::Missing, max_bytes = Arg::Missing, *, clock = None, weigher = None, on_remove = None, thread_safe = None, background_scan = None, _closer = None),
        text_signature = "(eviction_policy='lru', scan_interval=0.0, max_items=0, max_bytes=0, *, clock=None, weigher=None, on_remove=None, thread_safe=None, background_scan=None, _closer=None)"
    )]
    #[allow(
        clippy::too_many_arguments,
        reason = "the constructor's arguments, as SPEC lists them"
    )]
    #[allow(
        clippy::used_underscore_binding,
        reason = "`_closer` is the keyword's name: private, for flexcache.aio"
    )]
    fn new(
        py: Python<'_>,
        eviction_policy: Arg<'_>,
        scan_interval: Arg<'_>,
        max_items: Arg<'_>,
        max_bytes: Arg<'_>,
        clock: Option<&Bound<'_, PyAny>>,
        weigher: Option<&Bound<'_, PyAny>>,
        on_remove: Option<&Bound<'_, PyAny>>,
        thread_safe: Option<bool>,
        background_scan: Option<&Bound<'_, PyAny>>,
        _closer: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let closer = args::optional_callable(_closer, "_closer")?;
        let background_scan = args::background_scan(background_scan)?;
        let thread_safe = match (thread_safe, background_scan) {
            (Some(false), Some(_)) => {
                return Err(PyValueError::new_err(
                    "background_scan needs thread_safe=True (its thread shares the cache)",
                ));
            }
            (Some(thread_safe), _) => thread_safe,
            (None, background_scan) => background_scan.is_some(),
        };
        let (policy, python_policy) = args::eviction_policy(eviction_policy)?;
        let (scan_interval, scan_interval_seconds) = args::scan_interval(scan_interval)?;
        let max_items = args::limit(max_items, "max_items")?;
        let max_bytes = args::limit(max_bytes, "max_bytes")?;
        let clock_object = clock
            .filter(|obj| !obj.is_none())
            .map(|obj| obj.clone().unbind());
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
        let weigher = args::optional_callable(weigher, "weigher")?;
        let on_remove = args::optional_callable(on_remove, "on_remove")?;
        let config = Config {
            policy,
            max_items,
            max_bytes,
            scan_interval,
        };
        let engine = GuardedEngine::new(Cache::new(config, clock.now()), thread_safe);
        let in_flight = thread_safe.then(|| PyDict::new(py).unbind());
        Ok(FlexCachePy {
            engine,
            clock,
            clock_object,
            scan_interval_seconds,
            weigher,
            on_remove,
            in_flight,
            background_scan,
            closer,
            python_policy: python_policy.map(Bound::unbind),
            scanner: OnceLock::new(),
        })
    }

    /// Starts the background scan, now that the cache exists for its
    /// thread to refer to (weakly). The arguments were `__new__`'s.
    #[pyo3(signature = (*_args, **_kwargs))]
    fn __init__(
        slf: &Bound<'_, Self>,
        _args: &Bound<'_, pyo3::types::PyTuple>,
        _kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        let this = slf.get();
        let Some(period) = this.background_scan else {
            return Ok(());
        };
        if this.scanner.get().is_some() {
            return Ok(());
        }
        let py = slf.py();
        let scanner = py
            .import(intern!(py, "flexcache._scanner"))?
            .getattr(intern!(py, "Scanner"))?
            .call1((slf, period))?;
        // A second `__init__` racing this one: keep the first scanner.
        if let Err(scanner) = this.scanner.set(scanner.unbind()) {
            scanner.bind(py).call_method0(intern!(py, "stop"))?;
        }
        Ok(())
    }

    /// Pickles, copies and deep-copies (see `persist`).
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, pyo3::types::PyTuple>> {
        persist::reduce(slf)
    }

    /// The constructor's keyword arguments that make a cache of these
    /// settings.
    fn _settings<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyDict>> {
        persist::settings(slf)
    }

    /// The live entries in eviction order, as `(key, value, size,
    /// remaining_ns, uses)` records.
    fn _snapshot<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyList>> {
        persist::records(slf)
    }

    /// Files `_snapshot()` records into this cache, which must be empty.
    fn _restore<'py>(slf: &Bound<'py, Self>, records: &Bound<'py, PyAny>) -> PyResult<()> {
        persist::restore_records(slf, records)
    }

    /// Writes every live entry and the settings to `target` (a path, written
    /// atomically, or a binary file), keys and values as `serializer`
    /// makes bytes of them; the number of entries written.
    #[pyo3(signature = (target, *, serializer))]
    fn dump<'py>(
        slf: &Bound<'py, Self>,
        target: &Bound<'py, PyAny>,
        serializer: &Bound<'py, PyAny>,
    ) -> PyResult<u64> {
        persist::dump(slf, target, serializer)
    }

    /// A new cache holding what `dump` wrote to `source` (a path or a
    /// binary file), less what has expired since; `settings` override the
    /// dumped ones.
    #[classmethod]
    #[pyo3(signature = (source, *, deserializer, clock = None, **settings))]
    fn load<'py>(
        cls: &Bound<'py, pyo3::types::PyType>,
        source: &Bound<'py, PyAny>,
        deserializer: &Bound<'py, PyAny>,
        clock: Option<&Bound<'py, PyAny>>,
        settings: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        persist::load(cls, source, deserializer, clock, settings)
    }

    /// `with FlexCache(...) as cache:` hands the cache itself.
    fn __enter__<'py>(slf: &Bound<'py, Self>) -> Bound<'py, Self> {
        slf.clone()
    }

    /// Leaving the `with` block stops the background scan and clears the
    /// cache, closing every value. Exceptions propagate.
    #[pyo3(signature = (*_exc))]
    fn __exit__(slf: &Bound<'_, Self>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        Self::stop_background_scan(slf)?;
        Self::clear(slf)?;
        Ok(false)
    }

    /// `background_scan` in seconds, or None.
    #[getter]
    fn background_scan(&self) -> Option<f64> {
        self.background_scan
    }

    /// Whether every operation is atomic under the cache's own lock.
    #[getter]
    fn thread_safe(&self) -> bool {
        self.engine.thread_safe()
    }

    /// `FlexCache[str, bytes]`, for type annotations.
    #[classmethod]
    fn __class_getitem__<'py>(
        cls: &Bound<'py, pyo3::types::PyType>,
        item: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = cls.py();
        py.import(intern!(py, "types"))?
            .getattr(intern!(py, "GenericAlias"))?
            .call1((cls, item))
    }

    /// Stores `value` under `key`, expiring after `ttl` (None: never);
    /// `KeyError` if a live entry holds the key.
    #[pyo3(signature = (key, value, ttl = None))]
    #[inline(always)]
    fn set<'py>(
        slf: &Bound<'py, Self>,
        key: &Bound<'py, PyAny>,
        value: &Bound<'py, PyAny>,
        ttl: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<()> {
        Self::store::<false>(slf, key, value, ttl)
    }

    /// Stores `value` under `key`, replacing (and closing) a live entry's
    /// value unless it is this very object.
    #[pyo3(signature = (key, value, ttl = None))]
    fn put<'py>(
        slf: &Bound<'py, Self>,
        key: &Bound<'py, PyAny>,
        value: &Bound<'py, PyAny>,
        ttl: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<()> {
        Self::store::<true>(slf, key, value, ttl)
    }

    fn __setitem__<'py>(
        slf: &Bound<'py, Self>,
        key: &Bound<'py, PyAny>,
        value: &Bound<'py, PyAny>,
    ) -> PyResult<()> {
        Self::store::<true>(slf, key, value, None)
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
        Ok(match Self::lookup(slf, &key)? {
            Some(value) => value,
            None => default.unwrap_or_else(|| py.None().into_bound(py)),
        })
    }

    fn __getitem__<'py>(
        slf: &Bound<'py, Self>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let parsed_key = Key::from_object(key)?;
        Self::lookup(slf, &parsed_key)?.ok_or_else(|| PyKeyError::new_err((key.clone().unbind(),)))
    }

    /// The live value of `key`, or `default`; changes no order, no
    /// statistic, and reaps nothing.
    #[pyo3(signature = (key, default = None))]
    fn peek<'py>(
        slf: &Bound<'py, Self>,
        key: &Bound<'py, PyAny>,
        default: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let found = Self::peeked(slf, &Key::from_object(key)?)?;
        Ok(found.unwrap_or_else(|| default.unwrap_or_else(|| py.None().into_bound(py))))
    }

    /// Removes `key`, closing its value. False if no live entry held it.
    #[inline(always)]
    fn delete<'py>(slf: &Bound<'py, Self>, key: &Bound<'py, PyAny>) -> PyResult<bool> {
        let key = Key::from_object(key)?;
        let removed = Self::take_entry(slf, &key)?;
        // Closed after the borrow, as what the automatic scan released was.
        Ok(removed.is_some_and(|entry| {
            let live = entry.reason == ReleaseReason::Deleted;
            Self::release_taken(slf, entry, true);
            live
        }))
    }

    fn __delitem__<'py>(slf: &Bound<'py, Self>, key: &Bound<'py, PyAny>) -> PyResult<()> {
        if Self::delete(slf, key)? {
            Ok(())
        } else {
            Err(PyKeyError::new_err((key.clone().unbind(),)))
        }
    }

    /// Removes `key` and returns its value without closing it (the caller
    /// takes it over); `default`, or `KeyError`, when no live entry held it.
    #[pyo3(signature = (key, default = Arg::Missing))]
    fn pop<'py>(
        slf: &Bound<'py, Self>,
        key: &Bound<'py, PyAny>,
        default: Arg<'py>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let parsed_key = Key::from_object(key)?;
        let removed = Self::take_entry(slf, &parsed_key)?;
        if let Some(entry) = removed {
            if entry.reason == ReleaseReason::Deleted {
                let value = entry.value.bind(py).clone();
                Self::release_taken(slf, entry, false);
                return Ok(value);
            }
            Self::release_taken(slf, entry, true);
        }
        match default {
            Arg::Given(default) => Ok(default),
            Arg::Missing => Err(PyKeyError::new_err((key.clone().unbind(),))),
        }
    }

    /// The live value of `key`; otherwise `factory()`'s result, stored as
    /// `set` stores (unless a live entry appeared meanwhile, which wins).
    #[pyo3(signature = (key, factory, ttl = None))]
    fn get_or_set<'py>(
        slf: &Bound<'py, Self>,
        key: &Bound<'py, PyAny>,
        factory: &Bound<'py, PyAny>,
        ttl: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let parsed_key = Key::from_object(key)?;
        let ttl = args::ttl(ttl)?;
        if let Some(value) = Self::lookup(slf, &parsed_key)? {
            return Ok(value);
        }
        let Some(in_flight) = &slf.get().in_flight else {
            return Self::make_and_store(slf, &parsed_key, factory, ttl);
        };
        let py = slf.py();
        let leader = match Flight::join(in_flight.bind(py), key)? {
            Joined::Waiter(flight) => return flight.get().outcome(py),
            Joined::Leader(leader) => leader,
        };
        // Registered: a caller that missed before can no longer start a
        // flight of its own, and one that stored meanwhile is seen here
        // (looked at, not counted: this call counted its miss above).
        let outcome = match Self::peeked(slf, &parsed_key) {
            Ok(Some(value)) => Ok(value),
            Ok(None) => Self::make_and_store(slf, &parsed_key, factory, ttl),
            Err(error) => Err(error),
        };
        leader.land(&outcome)?;
        outcome
    }

    /// `get_or_set`'s store, for a value made elsewhere (`flexcache.aio`
    /// awaits its factory, then stores the result with this).
    #[pyo3(signature = (key, made, ttl = None))]
    fn _store_made<'py>(
        slf: &Bound<'py, Self>,
        key: &Bound<'py, PyAny>,
        made: Bound<'py, PyAny>,
        ttl: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let parsed_key = Key::from_object(key)?;
        let ttl = args::ttl(ttl)?;
        Self::store_made(slf, &parsed_key, made, ttl)
    }

    /// Raises what `set` would raise for `ttl`, and does nothing else.
    #[staticmethod]
    #[pyo3(signature = (ttl = None))]
    fn _check_ttl(ttl: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        args::ttl(ttl).map(drop)
    }

    /// Gives a live entry a new `ttl` (None: never expires); False when no
    /// live entry holds `key`.
    #[pyo3(signature = (key, ttl = None))]
    fn touch<'py>(
        slf: &Bound<'py, Self>,
        key: &Bound<'py, PyAny>,
        ttl: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<bool> {
        let parsed_key = Key::from_object(key)?;
        let ttl = args::ttl(ttl)?;
        let touched = Self::with_key(
            slf,
            &parsed_key,
            TimeRule::Clock,
            |engine, time, released, matcher| {
                engine.touch(
                    parsed_key.hash,
                    |stored| matcher.compare(stored),
                    ttl.deadline(time.now, time.clock),
                    time.now,
                    released,
                )
            },
        )?;
        Ok(touched)
    }

    /// Seconds until the live entry of `key` expires (None: never);
    /// `KeyError` when no live entry holds it.
    fn expires_in<'py>(slf: &Bound<'py, Self>, key: &Bound<'py, PyAny>) -> PyResult<Option<f64>> {
        let parsed_key = Key::from_object(key)?;
        let remaining = Self::with_key(
            slf,
            &parsed_key,
            TimeRule::Clock,
            |engine, time, _, matcher| {
                let deadline = engine.deadline_of(
                    parsed_key.hash,
                    |stored| matcher.compare(stored),
                    time.now,
                )?;
                Ok(deadline.map(|deadline| {
                    (deadline != NEVER).then(|| (deadline - time.now) as f64 / 1e9)
                }))
            },
        )?;
        remaining.ok_or_else(|| PyKeyError::new_err((key.clone().unbind(),)))
    }

    /// `{key: value}` for the live entries among `keys`, each looked up as
    /// `get` looks it up.
    fn get_many<'py>(
        slf: &Bound<'py, Self>,
        keys: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        bulk::get_many(slf, keys)
    }

    /// Stores every `(key, value)` of `entries` (a mapping or pairs), all
    /// or nothing, as `set` would.
    #[pyo3(signature = (entries, ttl = None))]
    fn set_many<'py>(
        slf: &Bound<'py, Self>,
        entries: &Bound<'py, PyAny>,
        ttl: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<()> {
        bulk::store_many(slf, entries, ttl, false)
    }

    /// As `set_many`, replacing live entries as `put` does.
    #[pyo3(signature = (entries, ttl = None))]
    fn put_many<'py>(
        slf: &Bound<'py, Self>,
        entries: &Bound<'py, PyAny>,
        ttl: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<()> {
        bulk::store_many(slf, entries, ttl, true)
    }

    /// Deletes each of `keys`; returns how many live entries were removed.
    fn delete_many<'py>(slf: &Bound<'py, Self>, keys: &Bound<'py, PyAny>) -> PyResult<usize> {
        bulk::delete_many(slf, keys)
    }

    /// Reaps every expired entry now, whatever `scan_interval` says.
    fn scan(slf: &Bound<'_, Self>) -> PyResult<()> {
        Self::with_engine(slf, TimeRule::Clock, |engine, time, released| {
            engine.scan(time.now, released);
        })
    }

    /// Removes every entry, closing each value.
    fn clear(slf: &Bound<'_, Self>) -> PyResult<()> {
        Self::with_engine(slf, TimeRule::Lookup, |engine, time, released| {
            engine.clear(time.now, released);
        })
    }

    /// A snapshot of the counts since the cache was made or since
    /// `reset_stats()`.
    fn stats<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let stats = Self::with_engine(slf, TimeRule::Untimed, |engine, _, _| engine.stats())?;
        types::cache_stats(slf.py(), stats)
    }

    /// Starts every count of `stats()` again from zero.
    fn reset_stats(slf: &Bound<'_, Self>) -> PyResult<()> {
        Self::with_engine(slf, TimeRule::Untimed, |engine, _, _| engine.reset_stats())
    }

    /// The live keys, in eviction order (the next victim first) under a
    /// policy that keeps one.
    fn keys<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyList>> {
        let (keys, _, _) = Self::live_entries(slf, true, false)?;
        PyList::new(slf.py(), keys)
    }

    /// The live values, in the order of `keys()`.
    fn values<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyList>> {
        let (_, values, _) = Self::live_entries(slf, false, true)?;
        PyList::new(slf.py(), values)
    }

    fn __iter__(slf: &Bound<'_, Self>) -> PyResult<KeyIterator> {
        let (keys, _, generation) = Self::live_entries(slf, true, false)?;
        Ok(KeyIterator {
            cache: Some(slf.clone().unbind()),
            keys: keys.into_iter().map(Bound::unbind).collect(),
            position: 0,
            generation,
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

    /// The policy's name, or the `EvictionPolicy` object it was made with.
    #[getter]
    fn eviction_policy<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        if let Some(policy) = Self::python_policy(slf) {
            return Ok(policy.clone());
        }
        let name = Self::with_engine(slf, TimeRule::Untimed, |engine, _, _| {
            engine.config().policy.name()
        })?;
        Ok(pyo3::types::PyString::new(slf.py(), name).into_any())
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
        let found = Self::with_key(slf, &key, TimeRule::Lookup, |engine, time, _, matcher| {
            engine.contains(key.hash, |stored| matcher.compare(stored), time.now)
        })?;
        Ok(found)
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
        let scan_interval = slf.get().scan_interval_seconds;
        // User code (the policy's `__repr__`), before the engine is taken.
        let python_policy = match Self::python_policy(slf) {
            Some(policy) => Some(policy.repr()?.to_string()),
            None => None,
        };
        Self::with_engine(slf, TimeRule::Untimed, |engine, _, _| {
            let config = engine.config();
            let policy = python_policy.unwrap_or_else(|| format!("'{}'", config.policy.name()));
            format!(
                "FlexCache(eviction_policy={}, scan_interval={:?}, max_items={}, max_bytes={}, items={}, bytes={})",
                policy,
                scan_interval,
                config.max_items,
                config.max_bytes,
                engine.len(),
                engine.bytes(),
            )
        })
    }

    /// Visits the callbacks and every entry. An engine taken by a call in
    /// progress (another thread's, on a free-threaded build, when the
    /// collector stopped it) is skipped: references the collector is not
    /// shown only make what they reach look reachable, which is safe.
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        for callback in [
            &self.weigher,
            &self.on_remove,
            &self.closer,
            &self.python_policy,
        ]
        .into_iter()
        .flatten()
        {
            visit.call(callback)?;
        }
        if let Some(in_flight) = &self.in_flight {
            visit.call(in_flight)?;
        }
        if let Some(scanner) = self.scanner.get() {
            visit.call(scanner)?;
        }
        let Some(engine) = self.engine.take_for_collector() else {
            return Ok(());
        };
        let mut outcome = Ok(());
        engine.for_each(|key, value| {
            if outcome.is_ok() {
                outcome = visit.call(key).and_then(|()| visit.call(value));
            }
        });
        outcome
    }

    /// Breaks reference cycles for the garbage collector: drops every entry
    /// without calling `close()` (SPEC: collection is not a shutdown). The
    /// callbacks stay: the class is frozen, and a cycle through one (a
    /// closure or bound method that reaches the cache) is broken by the
    /// collector clearing the function or instance on the way.
    fn __clear__(&self) {
        let mut released = ReleasedObjects::new();
        if let Some(mut engine) = self.engine.take_for_collector() {
            let now = engine.latest_now();
            engine.clear(now, &mut released);
        }
        drop(released);
    }
}

/// `iter(cache)`: the live keys when it was made, in `keys()` order. Any
/// store or removal in the cache since makes its next step raise
/// `RuntimeError`, as a dict's iterator does.
#[pyclass(name = "FlexCacheKeyIterator", module = "flexcache._core")]
struct KeyIterator {
    cache: Option<Py<FlexCachePy>>,
    keys: Vec<Py<PyAny>>,
    position: usize,
    generation: u64,
}

#[pymethods]
impl KeyIterator {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[classmethod]
    fn __class_getitem__<'py>(
        cls: &Bound<'py, pyo3::types::PyType>,
        item: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        FlexCachePy::__class_getitem__(cls, item)
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let Some(cache) = &self.cache else {
            return Ok(None);
        };
        if FlexCachePy::generation(cache.bind(py))? != self.generation {
            return Err(PyRuntimeError::new_err(
                "the cache changed during iteration",
            ));
        }
        let Some(key) = self.keys.get(self.position) else {
            // Exhausted: an exhausted iterator stays so, as Python's do.
            self.cache = None;
            self.keys = Vec::new();
            return Ok(None);
        };
        self.position += 1;
        Ok(Some(key.bind(py).clone()))
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Some(cache) = &self.cache {
            visit.call(cache)?;
        }
        for key in &self.keys {
            visit.call(key)?;
        }
        Ok(())
    }

    fn __clear__(&mut self) {
        self.cache = None;
        self.keys = Vec::new();
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

// `gil_used`: the fastcall entries' rule for what their bodies may drop is
// tested on GIL builds only (no free-threaded CPython installs here), so a
// free-threaded CPython re-enables the GIL when it imports the module. The
// str hash read and the engine cell's unshared take have their
// `Py_GIL_DISABLED` forms already (README, Threads).
#[pymodule(gil_used = true)]
#[pyo3(name = "_core")]
fn core_module(module: &Bound<'_, PyModule>) -> PyResult<()> {
    types::import(module.py())?;
    module.add_class::<FlexCachePy>()?;
    module.add_class::<KeyIterator>()?;
    fastcall::install(&module.py().get_type::<FlexCachePy>())?;
    module.add_class::<ManualClockPy>()?;
    module.add_class::<memo::CachedCall>()?;
    module.add("TooLargeError", module.py().get_type::<TooLargeError>())?;
    Ok(())
}
