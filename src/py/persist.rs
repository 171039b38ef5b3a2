//! Persistence: `pickle`, `copy` and `deepcopy` of a cache (through
//! `__reduce__`), and the settings and snapshot they carry.
//!
//! A cache reduces to `flexcache._persist._rebuild(settings, records)`:
//! the constructor's keyword arguments as the cache keeps them, and one
//! record `(key, value, size, remaining_ns, uses)` per live entry in
//! eviction order. Pickle pickles both; `copy.copy` passes them on as they
//! are (so the copy shares the values, the callbacks and a `ManualClock`);
//! `copy.deepcopy` deep-copies them with its memo. `_rebuild` makes the
//! cache through the constructor (its validation, its scan thread) and
//! files the records with `_restore`: no `item_size()`, no admission, the
//! `lfu` counts as they were, each ttl counted again from then.

use pyo3::exceptions::PyRuntimeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use super::bulk::without_repeated_keys;
use super::callbacks;
use super::key::Key;
use super::{FlexCachePy, TimeRule};
use crate::engine::time::{deadline_after, Nanos, NEVER};
use crate::engine::RestoredEntry;

/// A live entry as a snapshot holds it: key, value, size, nanoseconds
/// left to live (`None`: never expires), `lfu` count.
pub(super) struct Snapshotted<'py> {
    pub(super) key: Bound<'py, PyAny>,
    pub(super) value: Bound<'py, PyAny>,
    pub(super) size: u64,
    pub(super) remaining: Option<Nanos>,
    pub(super) uses: u64,
}

/// The constructor's keyword arguments that remake `slf`'s settings
/// (`_closer`, `flexcache.aio`'s private hook, is its owner's and stays).
pub(super) fn settings<'py>(slf: &Bound<'py, FlexCachePy>) -> PyResult<Bound<'py, PyDict>> {
    let py = slf.py();
    let this = slf.get();
    let (max_items, max_bytes) =
        FlexCachePy::with_engine(slf, TimeRule::Untimed, |engine, _, _| {
            (engine.config().max_items, engine.config().max_bytes)
        })?;
    let settings = PyDict::new(py);
    // As the property answers it, whatever it is (a name, or a policy
    // object carried like any other setting).
    settings.set_item(
        intern!(py, "eviction_policy"),
        slf.getattr(intern!(py, "eviction_policy"))?,
    )?;
    settings.set_item(intern!(py, "scan_interval"), this.scan_interval_seconds)?;
    settings.set_item(intern!(py, "max_items"), max_items)?;
    settings.set_item(intern!(py, "max_bytes"), max_bytes)?;
    settings.set_item(intern!(py, "clock"), &this.clock_object)?;
    settings.set_item(intern!(py, "weigher"), &this.weigher)?;
    settings.set_item(intern!(py, "on_remove"), &this.on_remove)?;
    settings.set_item(intern!(py, "thread_safe"), this.engine.thread_safe())?;
    settings.set_item(intern!(py, "background_scan"), this.background_scan)?;
    Ok(settings)
}

/// The live entries in eviction order, each with its size, time left and
/// `lfu` count. Only references are taken under the borrow: no object is
/// made there (an allocation can run the collector, and so finalizers).
pub(super) fn snapshot<'py>(slf: &Bound<'py, FlexCachePy>) -> PyResult<Vec<Snapshotted<'py>>> {
    let py = slf.py();
    FlexCachePy::with_engine(slf, TimeRule::Clock, |engine, time, _| {
        let mut entries = Vec::with_capacity(engine.len());
        engine.export(time.now, |entry| {
            entries.push(Snapshotted {
                key: entry.key.bind(py).clone(),
                value: entry.value.bind(py).clone(),
                size: entry.size,
                remaining: (entry.deadline != NEVER).then(|| entry.deadline - time.now),
                uses: entry.uses,
            });
        });
        entries
    })
}

/// [`snapshot`] as the list of records `_restore` takes.
pub(super) fn records<'py>(slf: &Bound<'py, FlexCachePy>) -> PyResult<Bound<'py, PyList>> {
    let py = slf.py();
    let entries = snapshot(slf)?;
    let mut records = Vec::with_capacity(entries.len());
    for entry in entries {
        records.push(PyTuple::new(
            py,
            [
                entry.key,
                entry.value,
                entry.size.into_pyobject(py)?.into_any(),
                entry.remaining.into_pyobject(py)?,
                entry.uses.into_pyobject(py)?.into_any(),
            ],
        )?);
    }
    PyList::new(py, records)
}

/// `__reduce__`: the cache made again by `flexcache._persist._rebuild`.
pub(super) fn reduce<'py>(slf: &Bound<'py, FlexCachePy>) -> PyResult<Bound<'py, PyTuple>> {
    let py = slf.py();
    let rebuild = py
        .import(intern!(py, "flexcache._persist"))?
        .getattr(intern!(py, "_rebuild"))?;
    let arguments = PyTuple::new(py, [settings(slf)?.into_any(), records(slf)?.into_any()])?;
    PyTuple::new(py, [rebuild, arguments.into_any()])
}

/// Files `records` (as [`records`] makes them) into `slf`, which must be
/// empty: see `Cache::restore`.
pub(super) fn restore_records<'py>(
    slf: &Bound<'py, FlexCachePy>,
    records: &Bound<'py, PyAny>,
) -> PyResult<()> {
    let mut entries = Vec::new();
    for record in records.try_iter()? {
        let (key, value, size, remaining, uses): (
            Bound<'py, PyAny>,
            Bound<'py, PyAny>,
            u64,
            Option<Nanos>,
            u64,
        ) = record?.extract()?;
        entries.push(Snapshotted {
            key,
            value,
            size,
            remaining,
            uses,
        });
    }
    restore(slf, entries)
}

/// Files `entries` into `slf`, which must be empty, as `Cache::restore`
/// does: sizes as given (no `item_size()`, no weigher), each ttl counted
/// from now. Of keys that turn out equal, the last wins. What no longer
/// fits the limits is let go (told and closed) as a store would.
pub(super) fn restore<'py>(
    slf: &Bound<'py, FlexCachePy>,
    entries: Vec<Snapshotted<'py>>,
) -> PyResult<()> {
    let mut parsed = Vec::with_capacity(entries.len());
    for entry in entries {
        // User code (a key's `__hash__`, a value's `close` lookup), before
        // the cache is borrowed.
        let key = Key::from_object(&entry.key)?;
        let needs_close = callbacks::needs_close(&entry.value)?;
        parsed.push((key, entry, needs_close));
    }
    let parsed = without_repeated_keys(parsed, |(key, _, _)| key, true)?;
    let refused = FlexCachePy::with_engine(slf, TimeRule::Clock, |engine, time, released| {
        let batch = parsed
            .iter()
            .map(|(key, entry, needs_close)| {
                let deadline = entry
                    .remaining
                    .map_or(NEVER, |remaining| deadline_after(time.now, remaining));
                RestoredEntry {
                    entry: key.new_entry(&entry.value, entry.size, *needs_close, deadline),
                    uses: entry.uses,
                }
            })
            .collect();
        engine
            .restore(batch, time.now, released)
            .err()
            .map(|batch| {
                for refused in batch {
                    // Dropped as `Bound`, at once: `parsed` holds both.
                    let entry = refused.entry;
                    drop((
                        entry.key.into_bound(slf.py()),
                        entry.value.into_bound(slf.py()),
                    ));
                }
            })
    })?;
    match refused {
        None => Ok(()),
        Some(()) => Err(PyRuntimeError::new_err(
            "entries are restored only into an empty cache",
        )),
    }
}
