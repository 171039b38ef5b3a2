//! The hit path of `flexcache.cached` for a plain function, in Rust.
//!
//! A Python wrapper cost a memoized call of two ints 160 ns, 2.2x
//! `functools.lru_cache` (a C function): its call with `*args`, a `get`
//! through the method descriptor, a count. This callable takes the call's
//! argument tuple itself as the key (the default key of positional
//! arguments), looks it up in the cache and counts the hit, all in one
//! native call. Everything else (keyword arguments, a custom `key=`, a
//! miss and its single flight) goes to the Python wrapper it was made with.

use std::sync::atomic::{AtomicU64, Ordering};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use super::key::Key;
use super::FlexCachePy;

/// `flexcache.cached`'s callable for a plain function with the default key.
#[pyclass(name = "CachedCall", module = "flexcache._core", dict, weakref, frozen)]
pub(crate) struct CachedCall {
    cache: Py<FlexCachePy>,
    /// The Python wrapper: every call this one does not answer itself.
    slow: Py<PyAny>,
    hits: AtomicU64,
}

impl std::fmt::Debug for CachedCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedCall")
            .field("hits", &self.hits.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

#[pymethods]
impl CachedCall {
    #[new]
    fn new(cache: Py<FlexCachePy>, slow: Py<PyAny>) -> Self {
        CachedCall {
            cache,
            slow,
            hits: AtomicU64::new(0),
        }
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn __call__<'py>(
        &self,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = args.py();
        if kwargs.is_none_or(PyDictMethods::is_empty) {
            // The default key of positional arguments is their tuple.
            let key = Key::from_object(args.as_any())?;
            if let Some(value) = FlexCachePy::lookup(self.cache.bind(py), &key)? {
                self.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(value);
            }
            // A miss, already counted by the cache: the Python side runs the
            // flight without looking again.
            return self.slow.bind(py).call_method1("missed", (args,));
        }
        self.slow.bind(py).call(args, kwargs)
    }

    /// Calls answered here, from the cache.
    #[getter]
    fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Bound to an instance when looked up through it, as a function is.
    fn __get__<'py>(
        slf: &Bound<'py, Self>,
        instance: Option<&Bound<'py, PyAny>>,
        _owner: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        match instance {
            Some(instance) if !instance.is_none() => py
                .import(pyo3::intern!(py, "types"))?
                .getattr(pyo3::intern!(py, "MethodType"))?
                .call1((slf, instance)),
            _ => Ok(slf.clone().into_any()),
        }
    }

    /// Pickled by name, as the function it wraps is.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        slf.getattr(pyo3::intern!(slf.py(), "__qualname__"))
    }

    fn __traverse__(&self, visit: pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        visit.call(&self.cache)?;
        visit.call(&self.slow)
    }
}
