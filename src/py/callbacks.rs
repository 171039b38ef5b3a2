//! The value protocols: `item_size()` is called before the engine is
//! touched (a raising one changes nothing); `close()` is called on what the
//! engine released, after the cache's borrow has ended, so it may re-enter
//! the cache. A raising `close()` goes to `sys.unraisablehook` and the
//! remaining values are still closed.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::engine::Released;

/// Tag bit: the value had a `close` attribute when it was set.
pub(crate) const HAS_CLOSE: u8 = 1;

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

/// The value's size (calling its `item_size()` once, if it has one) and its tag bits.
pub(crate) fn measure(value: &Bound<'_, PyAny>) -> PyResult<(u64, u8)> {
    if is_plain_builtin(value) {
        return Ok((1, 0));
    }
    let py = value.py();
    let size = match value.getattr_opt(intern!(py, "item_size"))? {
        Some(item_size) => size_from(&item_size.call0()?)?,
        None => 1,
    };
    let tag = if value.getattr_opt(intern!(py, "close"))?.is_some() {
        HAS_CLOSE
    } else {
        0
    };
    Ok((size, tag))
}

fn size_from(result: &Bound<'_, PyAny>) -> PyResult<u64> {
    if result.is_instance_of::<PyBool>() || !result.is_instance_of::<PyInt>() {
        let name = result
            .get_type()
            .name()
            .map_or_else(|_| "?".to_owned(), |n| n.to_string());
        return Err(PyTypeError::new_err(format!(
            "item_size() must return an int, not {name}"
        )));
    }
    match result.extract::<i64>() {
        Ok(size) if size >= 0 => Ok(size as u64),
        Ok(size) => Err(PyValueError::new_err(format!(
            "item_size() must return an int >= 0, got {size}"
        ))),
        Err(_) if result.lt(0)? => {
            Err(PyValueError::new_err("item_size() must return an int >= 0"))
        }
        Err(_) => Err(PyValueError::new_err(
            "item_size() must return at most 2**63-1",
        )),
    }
}

/// Closes each released value that has `close()`, then drops every key and
/// value. Call only with no borrow of the cache held.
#[inline]
pub(crate) fn close_released(py: Python<'_>, released: Released<Py<PyString>, Py<PyAny>>) {
    if released.is_empty() && !released.spilled() {
        // The usual case. An empty inline SmallVec owns nothing, and
        // forgetting it skips its out-of-line destructor on every call.
        std::mem::forget(released);
        return;
    }
    close_each(py, released);
}

#[inline(never)]
fn close_each(py: Python<'_>, released: Released<Py<PyString>, Py<PyAny>>) {
    for entry in released {
        if entry.tag & HAS_CLOSE != 0 {
            let value = entry.value.bind(py);
            if let Err(error) = value.call_method0(intern!(py, "close")) {
                error.write_unraisable(py, Some(value));
            }
        }
    }
}
