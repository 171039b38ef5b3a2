//! The cell the engine lives in: one user at a time, any thread.
//!
//! `FlexCache` is a frozen pyclass, so that what never changes after
//! construction (the clock, `weigher`, `on_remove`) is read with no borrow
//! at all; the engine, which every call changes, sits in this cell. Taking
//! it is one compare-and-swap and giving it back one release store: what
//! pyo3's mutable borrow cost, where pyo3's shared borrow (a `set` took one
//! to read the weigher) cost two atomic read-modify-writes more.
//!
//! Pure Rust (and tested by `cargo test`, which builds no Python).

// The cell's two dereferences are the crate's one interior mutability: each
// `unsafe` block below says why it holds.
#![allow(unsafe_code)]

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};

/// A value that one [`CellGuard`] at a time reaches; taking it while it is
/// taken fails instead of waiting (re-entry from a callback, or a second
/// thread, gets an error, never a second reference).
#[derive(Debug)]
pub struct ExclusiveCell<T> {
    taken: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reached only through a `CellGuard`, and a guard
// exists only between a take that found `taken` false and set it true, and
// its drop's store of false. `try_take` reads and sets in one atomic swap;
// `try_take_unshared` in a load and a store, between which its caller
// promises no other thread takes the cell. Either way at most one guard
// lives at a time, whichever thread holds it. The swap is `Acquire` and the
// drop's store `Release`, so everything one holder did to the value happens
// before the next swapping holder's first access (an unshared take relies
// on what already orders its caller's threads, such as CPython's GIL).
// `T: Send` because the value moves between the threads that take it in turn.
unsafe impl<T: Send> Sync for ExclusiveCell<T> {}

impl<T> ExclusiveCell<T> {
    #[must_use]
    pub fn new(value: T) -> Self {
        ExclusiveCell {
            taken: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    /// The value, unless a guard holds it now.
    #[inline(always)]
    pub fn try_take(&self) -> Option<CellGuard<'_, T>> {
        self.taken
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        Some(CellGuard { cell: self })
    }

    /// As [`ExclusiveCell::try_take`], without the atomic swap: a locked
    /// compare-and-swap drains the store buffer, which cost a cache `set`
    /// about a tenth of its time when threads cannot contend anyway.
    ///
    /// # Safety
    /// No other thread may take this cell while this call runs, and the
    /// threads that take it must be ordered by something else (for
    /// instance, every take is made holding CPython's GIL).
    #[inline(always)]
    pub unsafe fn try_take_unshared(&self) -> Option<CellGuard<'_, T>> {
        if self.taken.load(Ordering::Relaxed) {
            return None;
        }
        self.taken.store(true, Ordering::Relaxed);
        Some(CellGuard { cell: self })
    }
}

/// The one live access to an [`ExclusiveCell`]'s value; dropping it gives
/// the value back.
#[derive(Debug)]
pub struct CellGuard<'a, T> {
    cell: &'a ExclusiveCell<T>,
}

impl<T> Deref for CellGuard<'_, T> {
    type Target = T;

    #[inline(always)]
    fn deref(&self) -> &T {
        // SAFETY: this guard is the only one (see the `Sync` impl), and it
        // borrows the cell, so the value outlives the reference.
        unsafe { &*self.cell.value.get() }
    }
}

impl<T> DerefMut for CellGuard<'_, T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as for `deref`; `&mut self` makes this reference the only
        // one the guard hands out while it lives.
        unsafe { &mut *self.cell.value.get() }
    }
}

impl<T> Drop for CellGuard<'_, T> {
    #[inline(always)]
    fn drop(&mut self) {
        self.cell.taken.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::ExclusiveCell;

    #[test]
    fn one_guard_at_a_time() {
        let cell = ExclusiveCell::new(1);
        let mut first = cell.try_take().expect("a free cell is taken");
        assert!(cell.try_take().is_none(), "a taken cell refuses");
        *first += 1;
        drop(first);
        assert_eq!(*cell.try_take().expect("given back"), 2);
    }

    #[test]
    fn an_unshared_take_refuses_a_taken_cell_too() {
        let cell = ExclusiveCell::new(1);
        // SAFETY: one thread takes this cell.
        let mut first = unsafe { cell.try_take_unshared() }.expect("a free cell is taken");
        // SAFETY: as above.
        assert!(unsafe { cell.try_take_unshared() }.is_none());
        assert!(cell.try_take().is_none());
        *first += 1;
        drop(first);
        // SAFETY: as above.
        assert_eq!(*unsafe { cell.try_take_unshared() }.expect("given back"), 2);
    }

    #[test]
    fn threads_take_turns() {
        let cell = ExclusiveCell::new(0_u64);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    let mut done = 0;
                    while done < 10_000 {
                        if let Some(mut value) = cell.try_take() {
                            *value += 1;
                            done += 1;
                        }
                    }
                });
            }
        });
        assert_eq!(*cell.try_take().expect("free after the threads"), 40_000);
    }
}
