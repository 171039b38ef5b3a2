//! The value protocols and the cache's own callbacks: `item_size()` (or the
//! cache's `weigher`) is called before the engine is touched (a raising one
//! changes nothing); `on_remove` and then `close()` are called on what the
//! engine released, after the cache's borrow has ended, so they may
//! re-enter the cache. A raising `on_remove` or `close()` goes to
//! `sys.unraisablehook`, is counted, and the remaining values are still
//! handled.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use super::args::{discard, type_name};
use super::key::StoredKey;
use crate::engine::{ReleaseReason, Released, ReleasedEntry};

/// What one engine call hands back to be closed and dropped.
pub(crate) type ReleasedObjects = Released<StoredKey, Py<PyAny>>;
type ReleasedObject = ReleasedEntry<StoredKey, Py<PyAny>>;

/// Builtin types that have neither `item_size` nor `close` and cannot get
/// them: skipping the attribute lookups for them keeps common sets fast.
/// The commonest three are tested inline and the rest out of line: written
/// as one chain, the compiler tests all nine without branching, which cost
/// every `set` about 30 instructions.
#[inline(always)]
fn is_plain_builtin(value: &Bound<'_, PyAny>) -> bool {
    value.is_exact_instance_of::<PyInt>()
        || value.is_exact_instance_of::<PyString>()
        || value.is_none()
        || is_other_plain_builtin(value)
}

#[inline(never)]
fn is_other_plain_builtin(value: &Bound<'_, PyAny>) -> bool {
    value.is_exact_instance_of::<PyDict>()
        || value.is_exact_instance_of::<PyList>()
        || value.is_exact_instance_of::<PyTuple>()
        || value.is_exact_instance_of::<PyBytes>()
        || value.is_exact_instance_of::<PyFloat>()
        || value.is_exact_instance_of::<PyBool>()
}

/// The value's size (calling its `item_size()` once, if it has one) and
/// whether it had a `close` attribute when it was set (the entry's
/// `needs_close`).
/// Inline for the plain builtins; the rest is out of line.
#[inline(always)]
pub(crate) fn measure(value: &Bound<'_, PyAny>) -> PyResult<(u64, bool)> {
    if is_plain_builtin(value) {
        return Ok((1, false));
    }
    measure_object(value)
}

#[inline(never)]
fn measure_object(value: &Bound<'_, PyAny>) -> PyResult<(u64, bool)> {
    let py = value.py();
    let size = match protocol_attribute(value, intern!(py, "item_size"))? {
        Some(item_size) => size_from(&item_size.call0()?, "item_size()")?,
        None => 1,
    };
    Ok((size, has_close(value)?))
}

/// As [`measure`], the size coming from the cache's `weigher(key, value)`
/// instead of the value's own `item_size()`, which is then not called.
#[inline(never)]
pub(crate) fn weigh(
    weigher: &Bound<'_, PyAny>,
    key: &Bound<'_, PyAny>,
    value: &Bound<'_, PyAny>,
) -> PyResult<(u64, bool)> {
    let size = size_from(&weigher.call1((key, value))?, "weigher()")?;
    let has_close = !is_plain_builtin(value) && has_close(value)?;
    Ok((size, has_close))
}

/// Whether the value needs closing when it leaves (as [`measure`] finds
/// it), without measuring it: for an entry whose size is known already.
pub(crate) fn needs_close(value: &Bound<'_, PyAny>) -> PyResult<bool> {
    Ok(!is_plain_builtin(value) && has_close(value)?)
}

/// Closes a value the cache never held but made itself (`FlexCache.load`
/// giving up part-way: what its deserializer made has no other owner), as
/// a released value is closed; returns how many calls raised.
pub(crate) fn close_unheld(value: &Bound<'_, PyAny>) -> u64 {
    match needs_close(value) {
        Ok(true) => call_close(value),
        Ok(false) => 0,
        Err(error) => {
            error.write_unraisable(value.py(), Some(value));
            1
        }
    }
}

/// Whether the value has `close()` or `aclose()` (the entry's
/// `needs_close`).
fn has_close(value: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = value.py();
    Ok(protocol_attribute(value, intern!(py, "close"))?.is_some()
        || protocol_attribute(value, intern!(py, "aclose"))?.is_some())
}

/// `value.<name>` for one of the value protocols, or `None` when it is
/// missing or is `None`: SPEC counts an attribute set to `None` as absent,
/// as Python does for `__hash__ = None`.
#[inline]
fn protocol_attribute<'py>(
    value: &Bound<'py, PyAny>,
    name: &Bound<'py, PyString>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    Ok(optional_attribute(value, name)?.filter(|attribute| !attribute.is_none()))
}

/// `getattr(value, name)`, or `None` when it is missing.
///
/// Python 3.13 has `PyObject_GetOptionalAttr`, which pyo3's `getattr_opt`
/// calls. Before it, `getattr_opt` raises and clears an `AttributeError`,
/// which for a plain object with neither `item_size` nor `close` made a
/// `set` several times slower; `_PyObject_LookupAttr` (3.7 to 3.12, the
/// same lookup without the exception) avoids that.
#[cfg(any(Py_3_13, PyPy, GraalPy, Py_LIMITED_API))]
#[inline]
fn optional_attribute<'py>(
    value: &Bound<'py, PyAny>,
    name: &Bound<'py, PyString>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    value.getattr_opt(name)
}

#[cfg(not(any(Py_3_13, PyPy, GraalPy, Py_LIMITED_API)))]
#[allow(unsafe_code)]
fn optional_attribute<'py>(
    value: &Bound<'py, PyAny>,
    name: &Bound<'py, PyString>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    use pyo3::ffi;

    extern "C" {
        // CPython 3.7-3.12, `Include/cpython/object.h`: 1 and a new
        // reference in `*result` when found; 0 and NULL when the lookup
        // raised AttributeError (suppressed); -1 and NULL with an error set.
        fn _PyObject_LookupAttr(
            obj: *mut ffi::PyObject,
            name: *mut ffi::PyObject,
            result: *mut *mut ffi::PyObject,
        ) -> std::os::raw::c_int;
    }

    let py = value.py();
    let mut result: *mut ffi::PyObject = std::ptr::null_mut();
    // SAFETY:
    // 1. The thread is attached to the interpreter (`py` exists), as the C
    //    API requires.
    // 2. `value` and `name` are live objects borrowed for the call; the
    //    function does not steal them.
    // 3. `result` is a valid out-pointer to a local.
    let found = unsafe { _PyObject_LookupAttr(value.as_ptr(), name.as_ptr(), &raw mut result) };
    match found {
        // SAFETY: on 1, `result` is a new (owned) non-null reference, which
        // `from_owned_ptr` takes over exactly once.
        1 => Ok(Some(unsafe { Bound::from_owned_ptr(py, result) })),
        0 => Ok(None),
        _ => Err(PyErr::fetch(py)),
    }
}

/// A size as `item_size()` or a weigher (`what`) returned it.
fn size_from(result: &Bound<'_, PyAny>, what: &str) -> PyResult<u64> {
    if result.is_instance_of::<PyBool>() || !result.is_instance_of::<PyInt>() {
        let name = type_name(result);
        return Err(PyTypeError::new_err(format!(
            "{what} must return an int, not {name}"
        )));
    }
    match result.extract::<i64>() {
        Ok(size) if size >= 0 => Ok(size as u64),
        Ok(size) => Err(PyValueError::new_err(format!(
            "{what} must return an int >= 0, got {size}"
        ))),
        // Out of i64: the error is dropped as the rule of the fast bodies
        // says (`args::discard`), and the sign says which message.
        Err(error) => {
            discard(error);
            Err(PyValueError::new_err(if result.lt(0)? {
                format!("{what} must return an int >= 0")
            } else {
                format!("{what} must return at most 2**63-1")
            }))
        }
    }
}

/// What the cache calls on each entry it lets go, besides `close()`: its
/// Python policy's `on_remove(key)` and then its `on_remove` listener,
/// borrowed from the (frozen) cache object.
#[derive(Clone, Copy)]
pub(crate) struct Hooks<'a, 'py> {
    /// A policy written in Python, told of each entry that leaves.
    pub(crate) policy: Option<&'a Bound<'py, PyAny>>,
    pub(crate) on_remove: Option<&'a Bound<'py, PyAny>>,
    /// Called instead of `close()` on each value to close (the cache's
    /// private `_closer`: `flexcache.aio` collects them to await).
    pub(crate) closer: Option<&'a Bound<'py, PyAny>>,
}

impl<'py> Hooks<'_, 'py> {
    /// Tells `on_remove` and closes each released value that has `close()`,
    /// then drops every key and value, in release order; returns how many
    /// of those calls raised. Call only with no borrow of the cache held.
    ///
    /// Most operations release nothing, which costs a test here; the rest
    /// is out of line and drains in place: moving the `SmallVec` into a
    /// consumer cost a `delete` more than releasing its one entry did.
    /// `released` is left empty and inline, so it owns nothing: the caller
    /// may forget it, skipping its out-of-line destructor. The hooks are
    /// read (`hooks`) only when something was released: read up front,
    /// they cost every `get` hit 15 instructions.
    #[inline(always)]
    pub(crate) fn release_all(
        hooks: impl FnOnce() -> Self,
        py: Python<'py>,
        released: &mut ReleasedObjects,
    ) -> u64 {
        if !released.is_empty() || released.spilled() {
            hooks().release_each(py, released)
        } else {
            0
        }
    }

    #[inline(never)]
    fn release_each(self, py: Python<'py>, released: &mut ReleasedObjects) -> u64 {
        let mut errors = 0;
        for entry in released.drain(..) {
            errors += self.release(py, entry, true);
        }
        if released.spilled() {
            *released = Released::new();
        }
        errors
    }

    /// Tells `on_remove` about one released entry and, if `close` and the
    /// value has `close()`, closes it; returns how many of the calls raised.
    ///
    /// Keys and values are dropped as `Bound`, which releases them at once
    /// whatever pyo3 counts. The `fastcall` entries run their bodies on a
    /// thread pyo3 does not count as attached, where dropping them as `Py`
    /// would leave them in pyo3's deferred pool until some later call
    /// through pyo3's wrapper drained it (the rule of src/py/fastcall.rs).
    #[inline(always)]
    pub(crate) fn release(self, py: Python<'py>, entry: ReleasedObject, close: bool) -> u64 {
        let key = entry.key.into_bound(py);
        let value = entry.value.into_bound(py);
        let mut errors = 0;
        if let Some(policy) = self.policy {
            super::policy::on_remove(policy, &key);
        }
        if let Some(on_remove) = self.on_remove {
            errors += call_on_remove(on_remove, &key, &value, entry.reason);
        }
        if close && entry.needs_close {
            errors += match self.closer {
                None => call_close(&value),
                Some(closer) => call_closer(closer, &value),
            };
        }
        drop((key, value));
        errors
    }
}

/// `on_remove(key, value, cause)`; an error goes to `sys.unraisablehook`
/// (see [`call_close`]) and counts 1.
#[cold]
#[inline(never)]
fn call_on_remove(
    on_remove: &Bound<'_, PyAny>,
    key: &Bound<'_, PyAny>,
    value: &Bound<'_, PyAny>,
    reason: ReleaseReason,
) -> u64 {
    let py = on_remove.py();
    let outcome = super::types::removal_cause(py, reason)
        .and_then(|cause| on_remove.call1((key, value, cause)));
    match outcome {
        Ok(_) => 0,
        Err(error) => {
            error.write_unraisable(py, Some(on_remove));
            1
        }
    }
}

/// `value.close()`; an error goes to `sys.unraisablehook` and counts 1.
///
/// `write_unraisable` restores the error first. The error of a failed
/// `call_method0` is normalized (pyo3 fetches it from the interpreter), and
/// restoring a normalized error hands its objects to CPython without
/// dropping a `Py` (pyo3 0.30, `err_state.rs`); only a lazy error builds
/// and drops `Py` parts when restored, so this keeps the rule of the fast
/// bodies (src/py/fastcall.rs).
#[cold]
#[inline(never)]
fn call_close(value: &Bound<'_, PyAny>) -> u64 {
    let py = value.py();
    let outcome = match protocol_attribute(value, intern!(py, "close")) {
        Ok(Some(close)) => close.call0().map(drop),
        // No `close()` but an `aclose()`: nothing here can await it
        // (README, "Values with only aclose()").
        Ok(None) => let_go_unawaited(value),
        Err(error) => Err(error),
    };
    match outcome {
        Ok(()) => 0,
        Err(error) => {
            error.write_unraisable(py, Some(value));
            1
        }
    }
}

/// A value with only `aclose()`, let go by the synchronous cache:
/// `flexcache._aclose.let_go` schedules it on the running event loop, or
/// reports it as never awaited.
fn let_go_unawaited(value: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = value.py();
    if protocol_attribute(value, intern!(py, "aclose"))?.is_none() {
        return Ok(());
    }
    py.import(intern!(py, "flexcache._aclose"))?
        .getattr(intern!(py, "let_go"))?
        .call1((value,))
        .map(drop)
}

/// `closer(value)`, for a cache made with `_closer`; an error goes to
/// `sys.unraisablehook` and counts 1.
#[cold]
#[inline(never)]
fn call_closer(closer: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> u64 {
    match closer.call1((value,)) {
        Ok(_) => 0,
        Err(error) => {
            error.write_unraisable(value.py(), Some(closer));
            1
        }
    }
}
