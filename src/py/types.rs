//! The plain-Python types of the API (`flexcache._types`): `RemovalCause`,
//! the str enum `on_remove` is told, and `CacheStats`, the named tuple
//! `stats()` returns. They live in Python so that they pickle, compare and
//! print as users expect; the module imports them once, at its own import.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

use crate::engine::{ReleaseReason, Stats};

/// The `RemovalCause` member of each [`ReleaseReason`], in its order.
static CAUSES: PyOnceLock<[Py<PyAny>; 5]> = PyOnceLock::new();
static CACHE_STATS: PyOnceLock<Py<PyType>> = PyOnceLock::new();

const TYPES_MODULE: &str = "flexcache._types";

/// Imports the types; called when the native module is imported.
pub(crate) fn import(py: Python<'_>) -> PyResult<()> {
    CAUSES.get_or_try_init(py, || -> PyResult<_> {
        let causes = py.import(TYPES_MODULE)?.getattr("RemovalCause")?;
        let member = |name: &str| causes.getattr(name).map(Bound::unbind);
        Ok([
            member("EXPIRED")?,
            member("SIZE")?,
            member("EXPLICIT")?,
            member("REPLACED")?,
            member("CLEARED")?,
        ])
    })?;
    CACHE_STATS.import(py, TYPES_MODULE, "CacheStats")?;
    Ok(())
}

/// The `RemovalCause` that tells `on_remove` why an entry left.
pub(crate) fn removal_cause(py: Python<'_>, reason: ReleaseReason) -> PyResult<&Bound<'_, PyAny>> {
    let causes = CAUSES
        .get(py)
        .ok_or_else(|| PyRuntimeError::new_err("flexcache._types is not imported"))?;
    let index = match reason {
        ReleaseReason::Expired => 0,
        ReleaseReason::Evicted | ReleaseReason::Rejected => 1,
        ReleaseReason::Deleted => 2,
        ReleaseReason::Replaced => 3,
        ReleaseReason::Cleared => 4,
    };
    Ok(causes[index].bind(py))
}

/// `stats` as a `flexcache.CacheStats`.
pub(crate) fn cache_stats(py: Python<'_>, stats: Stats) -> PyResult<Bound<'_, PyAny>> {
    let class = CACHE_STATS.import(py, TYPES_MODULE, "CacheStats")?;
    class.call1((
        stats.hits,
        stats.misses,
        stats.sets,
        stats.evictions,
        stats.rejections,
        stats.expirations,
        stats.deletions,
        stats.close_errors,
    ))
}
