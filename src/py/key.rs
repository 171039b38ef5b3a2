//! Keys: Python `str` objects kept as they are, identified by their text.
//!
//! The hash is Python's own (cached in the str object), so a lookup never
//! re-hashes or encodes the text, and lone surrogates are ordinary keys. A
//! str subclass is copied once to an exact str: its `__hash__`/`__eq__` are
//! not trusted, and it finds the entry stored under the equal plain str.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyString;
use pyo3::{intern, PyTypeInfo};

use super::args::{discard, type_name};

pub(crate) struct Key<'py> {
    pub(crate) text: Bound<'py, PyString>,
    pub(crate) hash: u64,
}

impl<'py> Key<'py> {
    /// # Errors
    /// `TypeError` for anything that is not a str.
    #[inline(always)]
    pub(crate) fn from_object(obj: &Bound<'py, PyAny>) -> PyResult<Self> {
        match obj.cast_exact::<PyString>() {
            Ok(text) => Self::from_exact(text.clone()),
            Err(_) => Self::from_other(obj),
        }
    }

    #[inline(always)]
    fn from_exact(text: Bound<'py, PyString>) -> PyResult<Self> {
        // Python's str hash, cast bit for bit: only equality of hashes
        // matters.
        let hash = match cached_hash(&text) {
            Some(hash) => hash,
            None => text.as_any().hash()?,
        };
        Ok(Key {
            text,
            hash: hash as u64,
        })
    }

    #[cold]
    #[inline(never)]
    fn from_other(obj: &Bound<'py, PyAny>) -> PyResult<Self> {
        if !obj.is_instance_of::<PyString>() {
            let name = type_name(obj);
            return Err(PyTypeError::new_err(format!(
                "cache keys must be str, not {name}"
            )));
        }
        // `str.__str__` copies a subclass instance to an exact str without
        // calling any method the subclass overrides.
        let py = obj.py();
        let text = PyString::type_object(py)
            .getattr(intern!(py, "__str__"))?
            .call1((obj,))?
            .cast_into::<PyString>()?;
        Self::from_exact(text)
    }

    /// Whether a stored key has this key's text. Both are exact strs, so
    /// the comparison runs no Python code.
    #[inline]
    pub(crate) fn matches(&self, stored: &Py<PyString>) -> bool {
        if stored.is(&self.text) {
            return true;
        }
        match stored.bind(self.text.py()).as_any().eq(&self.text) {
            Ok(equal) => equal,
            // Comparing two exact strs does not fail; were it to, the error
            // is dropped as the rule of the fast bodies says.
            Err(error) => {
                discard(error);
                false
            }
        }
    }
}

/// The hash CPython caches in a str object, once computed. Reading the field
/// skips `PyObject_Hash`'s indirect call, a measurable part of a cache hit
/// (bench/README.md).
#[cfg(not(any(Py_LIMITED_API, PyPy, GraalPy, Py_GIL_DISABLED)))]
#[allow(unsafe_code)]
#[inline(always)]
fn cached_hash(text: &Bound<'_, PyString>) -> Option<isize> {
    // SAFETY: `text` is a live, exact str (its type was checked), and the
    // object of every str begins with `PyASCIIObject` on the CPython
    // versions this (non-limited, GIL) build targets. `hash` is -1 until
    // CPython computes it, and CPython writes it only with the GIL held,
    // as it is held here, so the read races with nothing.
    let hash = unsafe { (*text.as_ptr().cast::<pyo3::ffi::PyASCIIObject>()).hash };
    (hash != -1).then_some(hash)
}

#[cfg(any(Py_LIMITED_API, PyPy, GraalPy, Py_GIL_DISABLED))]
#[inline(always)]
fn cached_hash(_text: &Bound<'_, PyString>) -> Option<isize> {
    None
}
