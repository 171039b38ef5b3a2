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

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple, PyType};

use super::args::type_name;
use super::bulk::without_repeated_keys;
use super::callbacks;
use super::key::{Key, Matcher, StoredKey};
use super::{FlexCachePy, ManualClockPy, TimeRule};
use crate::clock::Clock;
use crate::dumpfile::{self, Encoder, EntryRecord, PolicyForm, Settings, NEVER_WALL};
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

/// The refusal of a copy, dump or load under a policy written in Python:
/// the entries would come without the policy's own state, or with a copy
/// of it that no longer matches them (expired entries are left out), and
/// its next `victim()` could name an entry the cache does not hold.
fn python_policy_refused(what: &str) -> PyErr {
    PyTypeError::new_err(format!(
        "a FlexCache whose eviction_policy is an EvictionPolicy object cannot be {what}: the \
         policy's own state does not travel with the entries (make a new cache with a new \
         policy and set the entries into it)"
    ))
}

/// The constructor's keyword arguments that remake `slf`'s settings
/// (`_closer`, `flexcache.aio`'s private hook, is its owner's and stays).
pub(super) fn settings<'py>(slf: &Bound<'py, FlexCachePy>) -> PyResult<Bound<'py, PyDict>> {
    let py = slf.py();
    let this = slf.get();
    if this.python_policy.is_some() {
        return Err(python_policy_refused("copied or pickled"));
    }
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
    restore(slf, &entries, None).map(drop)
}

/// Files `entries` into `slf`, which must be empty, as `Cache::restore`
/// does: sizes as given (no `item_size()`, no weigher), each ttl counted
/// from `anchor` (a time on `slf`'s clock; `None`: now). Of keys that turn
/// out equal, the last wins: the earlier ones that compare in Rust are let
/// go as replaced (told and closed), and the positions of those only
/// Python compares, which were never filed, come back. What no longer fits
/// the limits is let go (told and closed) as a store would.
pub(super) fn restore<'py>(
    slf: &Bound<'py, FlexCachePy>,
    entries: &[Snapshotted<'py>],
    anchor: Option<Nanos>,
) -> PyResult<Vec<usize>> {
    let mut parsed = Vec::with_capacity(entries.len());
    for (position, entry) in entries.iter().enumerate() {
        // User code (a key's `__hash__`, a value's `close` lookup), before
        // the cache is borrowed.
        let key = Key::from_object(&entry.key)?;
        let needs_close = callbacks::needs_close(&entry.value)?;
        parsed.push((key, position, needs_close));
    }
    // The engine tells equal keys apart by the comparisons Rust can make;
    // those only Python can make (foreign keys) are settled here first,
    // with nothing borrowed.
    let mut superseded = Vec::new();
    if parsed.iter().any(|(key, _, _)| key.is_foreign()) {
        let count = parsed.len();
        parsed = without_repeated_keys(parsed, |(key, _, _)| key, true)?;
        if parsed.len() < count {
            let mut filed = vec![false; count];
            for (_, position, _) in &parsed {
                filed[*position] = true;
            }
            superseded.extend((0..count).filter(|&position| !filed[position]));
        }
    }
    let refused = FlexCachePy::with_engine(slf, TimeRule::Clock, |engine, time, released| {
        let from = anchor.unwrap_or(time.now);
        let batch = parsed
            .iter()
            .map(|(key, position, needs_close)| {
                let entry = &entries[*position];
                let deadline = entry
                    .remaining
                    .map_or(NEVER, |remaining| deadline_after(from, remaining));
                RestoredEntry {
                    entry: key.new_entry(&entry.value, entry.size, *needs_close, deadline),
                    uses: entry.uses,
                }
            })
            .collect();
        let eq = |position: usize, stored: &StoredKey| {
            Matcher::first(&parsed[position].0).compare(stored)
        };
        engine
            .restore(batch, eq, time.now, released)
            .err()
            .map(|batch| {
                for refused in batch {
                    // Dropped as `Bound`, at once: `entries` holds both.
                    let entry = refused.entry;
                    drop((
                        entry.key.into_bound(slf.py()),
                        entry.value.into_bound(slf.py()),
                    ));
                }
            })
    })?;
    match refused {
        None => Ok(superseded),
        Some(()) => Err(PyRuntimeError::new_err(
            "entries are restored only into an empty cache",
        )),
    }
}

/// How much of a dump is gathered before it goes to the file: large enough
/// that a write is rare, small enough not to double a large cache's memory.
const WRITE_CHUNK: usize = 1 << 20;

/// Numbers the temporary files of this process's dumps, so that two dumps
/// to one target at once never share one.
static TEMPS: AtomicU64 = AtomicU64::new(0);

/// Where a dump goes: a temporary file beside the target path, renamed
/// over it once complete and on disk, or a binary file object.
enum Sink<'py> {
    Path {
        file: File,
        temp: PathBuf,
        target: PathBuf,
    },
    Object(Bound<'py, PyAny>),
}

impl<'py> Sink<'py> {
    /// A file object (it has `write`) as it is; otherwise a path, whose
    /// temporary file is made now, before any serializer runs: a folder
    /// that cannot take it fails the dump with nothing written.
    fn open(target: &Bound<'py, PyAny>) -> PyResult<Self> {
        let py = target.py();
        if target.hasattr(intern!(py, "write"))? {
            return Ok(Sink::Object(target.clone()));
        }
        let target: PathBuf = target.extract()?;
        let name = target.file_name().ok_or_else(|| {
            PyValueError::new_err(format!(
                "dump() needs a file name, not {}",
                target.display()
            ))
        })?;
        let folder = match target.parent() {
            Some(folder) if !folder.as_os_str().is_empty() => folder.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut temp_name = OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(
            ".{}-{}.tmp",
            std::process::id(),
            TEMPS.fetch_add(1, Ordering::Relaxed)
        ));
        let temp = folder.join(temp_name);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        Ok(Sink::Path { file, temp, target })
    }

    fn write(&mut self, data: &[u8]) -> PyResult<()> {
        match self {
            Sink::Path { file, .. } => Ok(file.write_all(data)?),
            Sink::Object(object) => {
                let py = object.py();
                let mut rest = data;
                while !rest.is_empty() {
                    let written =
                        object.call_method1(intern!(py, "write"), (PyBytes::new(py, rest),))?;
                    // A raw file may take part of it (and say how much).
                    match written.extract::<usize>() {
                        Ok(count) if count > 0 && count < rest.len() => rest = &rest[count..],
                        _ => rest = &[],
                    }
                }
                Ok(())
            }
        }
    }

    /// Puts the complete dump in place: the temporary file flushed to disk,
    /// renamed over the target, and the rename itself made durable by a
    /// sync of the folder; a file object is flushed.
    fn commit(self) -> PyResult<()> {
        match self {
            Sink::Path { file, temp, target } => {
                let outcome = file.sync_all().and_then(|()| {
                    drop(file);
                    std::fs::rename(&temp, &target)
                });
                if let Err(error) = outcome {
                    let _ = std::fs::remove_file(&temp);
                    return Err(error.into());
                }
                let folder = match target.parent() {
                    Some(folder) if !folder.as_os_str().is_empty() => folder,
                    _ => Path::new("."),
                };
                File::open(folder)?.sync_all()?;
                Ok(())
            }
            Sink::Object(object) => {
                let py = object.py();
                if object.hasattr(intern!(py, "flush"))? {
                    object.call_method0(intern!(py, "flush"))?;
                }
                Ok(())
            }
        }
    }

    /// Gives up: the temporary file goes, the target was never touched.
    fn abandon(self) {
        if let Sink::Path { file, temp, .. } = self {
            drop(file);
            let _ = std::fs::remove_file(&temp);
        }
    }
}

/// `serializer(obj)`, which must be bytes.
fn serialized<'py>(
    serializer: &Bound<'py, PyAny>,
    obj: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let result = serializer.call1((obj,))?;
    result.cast_into::<PyBytes>().map_err(|error| {
        PyTypeError::new_err(format!(
            "serializer must return bytes, not {}",
            type_name(error.into_inner().as_any())
        ))
    })
}

/// The time `entry` has left to live at `wall_now` (`Some(None)`: it never
/// expires), or `None` when it has expired.
#[allow(
    clippy::option_option,
    reason = "expired, or a remaining time that may be none"
)]
fn live_for(entry: &EntryRecord<'_>, wall_now: i64) -> Option<Option<Nanos>> {
    if entry.wall_deadline == NEVER_WALL {
        return Some(None);
    }
    match entry.wall_deadline.checked_sub(wall_now) {
        Some(left) if left > 0 => Some(Some(left as u64)),
        _ => None,
    }
}

/// Seconds since the epoch as nanoseconds, saturating.
fn wall_nanos(seconds: f64) -> i64 {
    (seconds * 1e9) as i64
}

/// `cache.dump(target, *, serializer)`: every live entry and the settings,
/// in the format of `crate::dumpfile`; the number of entries written.
pub(super) fn dump<'py>(
    slf: &Bound<'py, FlexCachePy>,
    target: &Bound<'py, PyAny>,
    serializer: &Bound<'py, PyAny>,
) -> PyResult<u64> {
    let py = slf.py();
    let this = slf.get();
    if this.python_policy.is_some() {
        return Err(python_policy_refused("dumped"));
    }
    let entries = snapshot(slf)?;
    // The wall time the remaining ttls were counted at.
    let wall_now = wall_nanos(this.clock.wall_seconds());
    let (max_items, max_bytes) =
        FlexCachePy::with_engine(slf, TimeRule::Untimed, |engine, _, _| {
            (engine.config().max_items, engine.config().max_bytes)
        })?;
    let policy = slf.getattr(intern!(py, "eviction_policy"))?;
    let policy_bytes = match policy.cast::<PyString>() {
        Ok(name) => name.to_str()?.as_bytes().to_vec(),
        Err(_) => serialized(serializer, &policy)?.as_bytes().to_vec(),
    };
    let policy_form = if policy.is_instance_of::<PyString>() {
        PolicyForm::Name(&policy_bytes[..])
    } else {
        PolicyForm::Serialized(&policy_bytes[..])
    };
    let settings = Settings {
        policy: policy_form,
        scan_interval: this.scan_interval_seconds,
        max_items,
        max_bytes,
        thread_safe: this.engine.thread_safe(),
        background_scan: this.background_scan,
    };
    let too_large = |_| PyValueError::new_err("an entry too large for a dump record (4 GiB)");
    let mut encoder = Encoder::new(&settings).map_err(too_large)?;
    let mut sink = Sink::open(target)?;
    let mut write_all = || -> PyResult<u64> {
        for entry in &entries {
            // User code, with nothing borrowed; the snapshot holds its own
            // references, so a serializer that changes the cache changes
            // nothing here.
            let key = serialized(serializer, &entry.key)?;
            let value = serialized(serializer, &entry.value)?;
            let wall_deadline = entry.remaining.map_or(NEVER_WALL, |remaining| {
                wall_now.saturating_add(i64::try_from(remaining).unwrap_or(i64::MAX))
            });
            encoder
                .entry(&EntryRecord {
                    size: entry.size,
                    wall_deadline,
                    uses: entry.uses,
                    key: key.as_bytes(),
                    value: value.as_bytes(),
                })
                .map_err(too_large)?;
            if encoder.buffer().len() >= WRITE_CHUNK {
                sink.write(encoder.buffer())?;
                encoder.buffer().clear();
            }
        }
        let count = encoder.finish();
        sink.write(encoder.buffer())?;
        Ok(count)
    };
    match write_all() {
        Ok(count) => {
            sink.commit()?;
            Ok(count)
        }
        Err(error) => {
            sink.abandon();
            Err(error)
        }
    }
}

/// The bytes of a dump: a binary file object's `read()`, or a file's.
enum Source<'py> {
    Object(Bound<'py, PyBytes>),
    File(Vec<u8>),
}

impl Source<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Source::Object(bytes) => bytes.as_bytes(),
            Source::File(bytes) => bytes,
        }
    }
}

/// `FlexCache.load(source, *, deserializer, clock=None, **settings)`: a
/// new cache (made by `cls` with the dump's settings, `settings`
/// overriding them) holding the dump's entries that have not expired.
///
/// The whole dump is read and checked before the deserializer first runs,
/// so a corrupt one is a `ValueError` with nothing made. If the
/// deserializer (or a key it made) raises part-way, what it made is
/// closed, the new cache is stopped, and the error propagates.
pub(super) fn load<'py>(
    cls: &Bound<'py, PyType>,
    source: &Bound<'py, PyAny>,
    deserializer: &Bound<'py, PyAny>,
    clock: Option<&Bound<'py, PyAny>>,
    overrides: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = cls.py();
    let data = if source.hasattr(intern!(py, "read"))? {
        let read = source.call_method0(intern!(py, "read"))?;
        Source::Object(read.cast_into::<PyBytes>().map_err(|error| {
            PyTypeError::new_err(format!(
                "load() reads a binary file, whose read() returns bytes, not {}",
                type_name(error.into_inner().as_any())
            ))
        })?)
    } else {
        let path: PathBuf = source.extract()?;
        Source::File(std::fs::read(path)?)
    };
    // The wall time the cache's clock will read (`fill` reads it again, to
    // the nanosecond): what has expired by it is left out as the dump is
    // checked.
    let wall_now = wall_nanos(match clock.map(|clock| clock.cast::<ManualClockPy>()) {
        Some(Ok(manual)) => manual.get().inner.wall_seconds(),
        _ => Clock::monotonic().wall_seconds(),
    });
    let (settings, records) =
        dumpfile::decode_kept(data.bytes(), |entry| live_for(entry, wall_now).is_some())
            .map_err(|error| PyValueError::new_err(error.to_string()))?;
    let kwargs = PyDict::new(py);
    let policy = match settings.policy {
        PolicyForm::Name(name) => PyString::new(
            py,
            std::str::from_utf8(name).map_err(|_| {
                PyValueError::new_err("corrupt FlexCache dump (a policy name that is not UTF-8)")
            })?,
        )
        .into_any(),
        PolicyForm::Serialized(bytes) => deserializer.call1((PyBytes::new(py, bytes),))?,
    };
    kwargs.set_item(intern!(py, "eviction_policy"), policy)?;
    kwargs.set_item(intern!(py, "scan_interval"), settings.scan_interval)?;
    kwargs.set_item(intern!(py, "max_items"), settings.max_items)?;
    kwargs.set_item(intern!(py, "max_bytes"), settings.max_bytes)?;
    kwargs.set_item(intern!(py, "thread_safe"), settings.thread_safe)?;
    kwargs.set_item(intern!(py, "background_scan"), settings.background_scan)?;
    if let Some(overrides) = overrides {
        kwargs.update(overrides.as_mapping())?;
        if let Some(policy) = kwargs.get_item(intern!(py, "eviction_policy"))? {
            if super::policy::is_eviction_policy(&policy)? {
                return Err(python_policy_refused("loaded"));
            }
        }
    }
    kwargs.set_item(intern!(py, "clock"), clock)?;
    // The constructor's own checks, for the dump's settings and the
    // overrides alike.
    let cache = cls.call((), Some(&kwargs))?;
    let cache = cache.cast_into::<FlexCachePy>()?;
    let result = fill(&cache, &records, deserializer);
    if let Err(error) = result {
        FlexCachePy::stop_background_scan(&cache)?;
        return Err(error);
    }
    Ok(cache.into_any())
}

/// Deserializes the entries of `records` that are live by `cache`'s clock
/// and files them; on failure, closes what was made and not filed.
fn fill<'py>(
    cache: &Bound<'py, FlexCachePy>,
    records: &[EntryRecord<'_>],
    deserializer: &Bound<'py, PyAny>,
) -> PyResult<()> {
    let py = cache.py();
    let clock = &cache.get().clock;
    // One reading of both clocks: each remaining ttl is counted from it.
    let now = clock.now();
    let wall_now = wall_nanos(clock.wall_seconds());
    let mut entries = Vec::with_capacity(records.len());
    let mut made = || -> PyResult<()> {
        for record in records {
            // Expired: skipped, its bytes never deserialized.
            let Some(remaining) = live_for(record, wall_now) else {
                continue;
            };
            let key = deserializer.call1((PyBytes::new(py, record.key),))?;
            let value = deserializer.call1((PyBytes::new(py, record.value),))?;
            entries.push(Snapshotted {
                key,
                value,
                size: record.size,
                remaining,
                uses: record.uses,
            });
        }
        Ok(())
    };
    let outcome = made().and_then(|()| restore(cache, &entries, Some(now)));
    let unfiled: Vec<usize> = match &outcome {
        Ok(superseded) => superseded.clone(),
        Err(_) => (0..entries.len()).collect(),
    };
    let mut errors = 0;
    for position in unfiled {
        errors += callbacks::close_unheld(&entries[position].value);
    }
    if errors > 0 {
        FlexCachePy::count_close_errors(cache, errors);
    }
    outcome.map(drop)
}
