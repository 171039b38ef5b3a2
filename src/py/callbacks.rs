//! The value protocols: `item_size()` is called before the engine is
//! touched (a raising one changes nothing); `close()` is called on what the
//! engine released, after the cache's borrow has ended, so it may re-enter
//! the cache. A raising `close()` goes to `sys.unraisablehook` and the
//! remaining values are still closed.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use super::args::{discard, type_name};
use crate::engine::{Released, ReleasedEntry};

/// Builtin types that have neither `item_size` nor `close` and cannot get
/// them: skipping the attribute lookups for them keeps common sets fast.
#[inline]
fn is_plain_builtin(value: &Bound<'_, PyAny>) -> bool {
    value.is_none()
        || value.is_exact_instance_of::<PyString>()
        || value.is_exact_instance_of::<PyInt>()
        || value.is_exact_instance_of::<PyDict>()
        || value.is_exact_instance_of::<PyList>()
        || value.is_exact_instance_of::<PyTuple>()
        || value.is_exact_instance_of::<PyBytes>()
        || value.is_exact_instance_of::<PyFloat>()
        || value.is_exact_instance_of::<PyBool>()
}

/// The value's size (calling its `item_size()` once, if it has one) and
/// whether it had a `close` attribute when it was set (the entry's
/// `needs_close`).
pub(crate) fn measure(value: &Bound<'_, PyAny>) -> PyResult<(u64, bool)> {
    if is_plain_builtin(value) {
        return Ok((1, false));
    }
    let py = value.py();
    let size = match protocol_attribute(value, intern!(py, "item_size"))? {
        Some(item_size) => size_from(&item_size.call0()?)?,
        None => 1,
    };
    let has_close = protocol_attribute(value, intern!(py, "close"))?.is_some();
    Ok((size, has_close))
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

fn size_from(result: &Bound<'_, PyAny>) -> PyResult<u64> {
    if result.is_instance_of::<PyBool>() || !result.is_instance_of::<PyInt>() {
        let name = type_name(result);
        return Err(PyTypeError::new_err(format!(
            "item_size() must return an int, not {name}"
        )));
    }
    match result.extract::<i64>() {
        Ok(size) if size >= 0 => Ok(size as u64),
        Ok(size) => Err(PyValueError::new_err(format!(
            "item_size() must return an int >= 0, got {size}"
        ))),
        // Out of i64: the error is dropped as the rule of the fast bodies
        // says (`args::discard`), and the sign says which message.
        Err(error) => {
            discard(error);
            Err(PyValueError::new_err(if result.lt(0)? {
                "item_size() must return an int >= 0"
            } else {
                "item_size() must return at most 2**63-1"
            }))
        }
    }
}

/// Closes each released value that has `close()`, then drops every key and
/// value, in release order. Call only with no borrow of the cache held.
///
/// Most operations release nothing, which costs a test here; the rest is
/// out of line and drains in place: moving the `SmallVec` into a consumer
/// cost a `delete` more than releasing its one entry did.
#[inline(always)]
pub(crate) fn close_released(py: Python<'_>, mut released: Released<Py<PyString>, Py<PyAny>>) {
    if !released.is_empty() || released.spilled() {
        close_each(py, &mut released);
    }
    // Empty and inline now, so it owns nothing: forgetting it skips the
    // out-of-line destructor.
    std::mem::forget(released);
}

#[inline(never)]
fn close_each(py: Python<'_>, released: &mut Released<Py<PyString>, Py<PyAny>>) {
    for entry in released.drain(..) {
        close_one(py, entry);
    }
    if released.spilled() {
        *released = Released::new();
    }
}

/// Keys and values are dropped as `Bound`, which releases them at once
/// whatever pyo3 counts. The `fastcall` entries run their bodies on a
/// thread pyo3 does not count as attached, where dropping them as `Py`
/// would leave them in pyo3's deferred pool until some later call through
/// pyo3's wrapper drained it (the rule of src/py/fastcall.rs).
#[inline]
pub(crate) fn close_one(py: Python<'_>, entry: ReleasedEntry<Py<PyString>, Py<PyAny>>) {
    let key = entry.key.into_bound(py);
    let value = entry.value.into_bound(py);
    if entry.needs_close {
        call_close(&value);
    }
    drop((key, value));
}

/// `value.close()`; an error goes to `sys.unraisablehook`.
///
/// `write_unraisable` restores the error first. The error of a failed
/// `call_method0` is normalized (pyo3 fetches it from the interpreter), and
/// restoring a normalized error hands its objects to CPython without
/// dropping a `Py` (pyo3 0.30, `err_state.rs`); only a lazy error builds
/// and drops `Py` parts when restored, so this keeps the rule of the fast
/// bodies (src/py/fastcall.rs).
#[cold]
#[inline(never)]
fn call_close(value: &Bound<'_, PyAny>) {
    if let Err(error) = value.call_method0(intern!(value.py(), "close")) {
        error.write_unraisable(value.py(), Some(value));
    }
}
