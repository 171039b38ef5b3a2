//! How a call gets the engine: the cell alone, or the cell behind a lock
//! for `thread_safe=True`.
//!
//! Without `thread_safe`, a call that finds the engine taken fails (SPEC:
//! calls from several threads work or raise `RuntimeError`). With it, a
//! call waits for the lock, with the GIL released while it waits, so that
//! the holder (on a free-threaded build, or one that released the GIL) can
//! finish. The lock is held only around the engine call itself, which runs
//! no Python code, so no callback ever runs under it.

use parking_lot::lock_api::RawMutex as _;
use parking_lot::RawMutex;
use pyo3::Python;

use super::Engine;
use crate::cell::{CellGuard, ExclusiveCell};

/// The engine and, for a thread-safe cache, the lock in front of it.
pub(crate) struct GuardedEngine {
    engine: ExclusiveCell<Engine>,
    /// Used only when `thread_safe`: a flag is a cheaper test on every
    /// call than an `Option` of the mutex.
    lock: RawMutex,
    thread_safe: bool,
}

impl std::fmt::Debug for GuardedEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedEngine")
            .field("engine", &self.engine)
            .field("thread_safe", &self.thread_safe)
            .field("locked", &self.lock.is_locked())
            .finish()
    }
}

impl GuardedEngine {
    pub(crate) fn new(engine: Engine, thread_safe: bool) -> Self {
        GuardedEngine {
            engine: ExclusiveCell::new(engine),
            lock: RawMutex::INIT,
            thread_safe,
        }
    }

    pub(crate) fn thread_safe(&self) -> bool {
        self.thread_safe
    }

    /// For a thread-safe cache on a free-threaded build, its lock, once
    /// free (waiting with the GIL released); `None` otherwise. Take the
    /// engine (`take`) after it, and give the engine back before it is
    /// dropped.
    ///
    /// With the GIL the lock could never be contended: an engine step runs
    /// no Python code and so never gives the GIL away, and the steps of two
    /// threads cannot overlap. Locking it anyway cost a `get` two locked
    /// read-modify-writes, 1.25x, for nothing; so there a thread-safe cache
    /// is the plain one, whose cell still refuses (never waits) a second
    /// taker.
    #[inline(always)]
    pub(crate) fn lock(&self, py: Python<'_>) -> Option<LockHeld<'_>> {
        if cfg!(Py_GIL_DISABLED) && self.thread_safe {
            Some(Self::lock_slowly(&self.lock, py))
        } else {
            None
        }
    }

    #[cold]
    #[inline(never)]
    fn lock_slowly<'a>(lock: &'a RawMutex, py: Python<'_>) -> LockHeld<'a> {
        if !lock.try_lock() {
            // Waiting with the GIL held would stall every other thread,
            // the holder among them where it needs the GIL to finish.
            py.detach(|| lock.lock());
        }
        LockHeld(lock)
    }

    /// The engine, unless a call in progress has it. For a thread-safe
    /// cache, call with its [`GuardedEngine::lock`] held: then the engine
    /// is always free (no engine call re-enters the cache).
    #[inline(always)]
    #[allow(
        unsafe_code,
        reason = "the unshared take; its safety argument is inside"
    )]
    pub(crate) fn take(&self, _attached: Python<'_>) -> Option<CellGuard<'_, Engine>> {
        #[cfg(not(Py_GIL_DISABLED))]
        {
            // SAFETY: with the GIL, being attached means holding the GIL,
            // and the load and store of an unshared take run no Python
            // code, so the GIL stays held between them: no other thread can
            // take the cell meanwhile (the collector's `__traverse__` and
            // `__clear__` run under the GIL too), and the GIL's hand-offs
            // order the threads that take it.
            unsafe { self.engine.try_take_unshared() }
        }
        #[cfg(Py_GIL_DISABLED)]
        {
            // Attached is not exclusive without the GIL: the swap (which
            // the lock of a thread-safe cache makes always succeed).
            self.engine.try_take()
        }
    }

    /// The engine for the garbage collector, which must not wait: `None`
    /// while a call has it (the collector then skips it; see
    /// `__traverse__`).
    pub(crate) fn take_for_collector(&self) -> Option<CellGuard<'_, Engine>> {
        self.engine.try_take()
    }
}

/// A held lock, unlocked when dropped.
pub(crate) struct LockHeld<'a>(&'a RawMutex);

impl std::fmt::Debug for LockHeld<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LockHeld")
    }
}

impl Drop for LockHeld<'_> {
    fn drop(&mut self) {
        // SAFETY: a `LockHeld` is made only right after this thread locked
        // the mutex, and only once per locking.
        #[allow(unsafe_code, reason = "parking_lot's raw unlock")]
        unsafe {
            self.0.unlock();
        }
    }
}
