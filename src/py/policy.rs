//! Eviction policies written in Python (`flexcache.EvictionPolicy`).
//!
//! The engine runs such a cache under `EvictionPolicy::External`: it keeps
//! no order and never evicts, and a store that needs room comes back
//! refused (`NeedsRoom`, nothing changed but expired entries reaped). The
//! binding then asks the policy's `victim()`, with no borrow or lock held,
//! evicts that key through the engine, and stores again. The notification
//! hooks run where `close()` runs: after the engine call, outside it.

use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;

use super::key::Key;
use super::{FlexCachePy, TimeRule};

/// A policy's hook that only informs (`on_insert`, `on_access`,
/// `on_remove`): its exception goes to `sys.unraisablehook`, as a failed
/// `close()` does.
#[cold]
#[inline(never)]
fn tell(
    policy: &Bound<'_, PyAny>,
    hook: &Bound<'_, pyo3::types::PyString>,
    key: &Bound<'_, PyAny>,
) {
    if let Err(error) = policy.call_method1(hook, (key,)) {
        error.write_unraisable(policy.py(), Some(policy));
    }
}

/// Whether `obj` is a `flexcache.EvictionPolicy`.
pub(super) fn is_eviction_policy(obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = obj.py();
    let base = py
        .import(intern!(py, "flexcache._policy"))?
        .getattr(intern!(py, "EvictionPolicy"))?;
    obj.is_instance(&base)
}

/// `policy.on_insert(key)` (see [`tell`]).
#[cold]
#[inline(never)]
pub(super) fn on_insert(policy: &Bound<'_, PyAny>, key: &Bound<'_, PyAny>) {
    tell(policy, intern!(policy.py(), "on_insert"), key);
}

/// `policy.on_remove(key)` (see [`tell`]).
#[cold]
#[inline(never)]
pub(super) fn on_remove(policy: &Bound<'_, PyAny>, key: &Bound<'_, PyAny>) {
    tell(policy, intern!(policy.py(), "on_remove"), key);
}

/// `policy.on_access(key)` (see [`tell`]).
#[cold]
#[inline(never)]
fn on_access(policy: &Bound<'_, PyAny>, key: &Bound<'_, PyAny>) {
    tell(policy, intern!(policy.py(), "on_access"), key);
}

impl FlexCachePy {
    /// The cache's Python policy, if it has one.
    #[inline(always)]
    pub(super) fn python_policy<'a, 'py>(
        slf: &'a Bound<'py, Self>,
    ) -> Option<&'a Bound<'py, PyAny>> {
        slf.get()
            .python_policy
            .as_ref()
            .map(|policy| policy.bind(slf.py()))
    }

    /// `policy.on_insert(key)`, for a cache with a Python policy.
    #[inline(always)]
    pub(super) fn tell_inserted(slf: &Bound<'_, Self>, key: &Bound<'_, PyAny>) {
        if let Some(policy) = Self::python_policy(slf) {
            on_insert(policy, key);
        }
    }

    /// `policy.on_access(key)`, for a cache with a Python policy. The test
    /// alone is inline: it is all a `get` hit pays without one.
    #[inline(always)]
    pub(super) fn tell_accessed(slf: &Bound<'_, Self>, key: &Bound<'_, PyAny>) {
        if let Some(policy) = Self::python_policy(slf) {
            on_access(policy, key);
        }
    }

    /// Makes room for a store of the keys `storing` by one victim of the
    /// Python policy: asks `victim()` and evicts the live entry it names
    /// (its `on_remove` and `close()` follow, as for any release). A key
    /// that is not one of a live entry, or is one being stored, is a
    /// `ValueError` naming the policy, and nothing changes.
    #[cold]
    #[inline(never)]
    pub(super) fn evict_for_policy(slf: &Bound<'_, Self>, storing: &[&Key<'_>]) -> PyResult<()> {
        let py = slf.py();
        let Some(policy) = Self::python_policy(slf) else {
            unreachable!("room asked for under a policy of the engine's");
        };
        let answer = policy.call_method0(intern!(py, "victim"))?;
        let wrong = |why: &str| {
            let policy = policy
                .repr()
                .map_or_else(|_| "?".to_owned(), |r| r.to_string());
            let answer = answer
                .repr()
                .map_or_else(|_| "?".to_owned(), |r| r.to_string());
            PyValueError::new_err(format!(
                "eviction policy {policy}: victim() returned {answer}, {why}"
            ))
        };
        let Ok(victim) = Key::from_object(&answer) else {
            return Err(wrong("which is not a hashable key"));
        };
        for key in storing {
            // User code (`__eq__`), with no borrow held.
            if key.hash == victim.hash && victim.equals(&key.object)? {
                return Err(wrong("the key being stored"));
            }
        }
        let evicted = Self::with_key(
            slf,
            &victim,
            TimeRule::Lookup,
            |engine, time, released, matcher| {
                engine.evict(
                    victim.hash,
                    |stored| matcher.compare(stored),
                    time.now,
                    released,
                )
            },
        )?;
        if evicted {
            Ok(())
        } else {
            Err(wrong("which is not the key of a live entry"))
        }
    }
}
