//! The bulk calls: `get_many`, `set_many`, `put_many` and `delete_many`.
//!
//! Each reads and checks all of its input first (iterating the caller's
//! iterable, hashing every key, calling every `item_size()` or the
//! weigher: user code, before the cache is borrowed), then crosses into
//! the engine once for the whole batch. Keys whose comparison needs Python
//! (see `key`) are settled with the borrow released, as single-key calls
//! settle theirs.

use hashbrown::HashTable;
use pyo3::exceptions::{PyKeyError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};
use smallvec::SmallVec;

use super::args::{self, type_name};
use super::callbacks::ReleasedObjects;
use super::key::{Key, Matcher, StoredKey};
use super::policy;
use super::{Engine, FlexCachePy, Time, TimeRule, SETTLE_TRIES};
use crate::engine::{BatchError, ReleaseReason};

/// `{key: value}` for the live entries among `keys`, in their order.
pub(super) fn get_many<'py>(
    slf: &Bound<'py, FlexCachePy>,
    keys: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = slf.py();
    let keys = parse_keys(keys)?;
    let found = with_keys(slf, &keys, |engine, time, released, matchers| {
        keys.iter()
            .zip(matchers)
            .map(|(key, matcher)| {
                let eq = |stored: &StoredKey| matcher.compare(stored);
                engine
                    .get(key.hash, eq, time.now, released)
                    .ok()
                    .flatten()
                    .map(|value| value.bind(py).clone())
            })
            .collect::<Vec<_>>()
    })?;
    let result = dict_for(py, keys.len())?;
    for (key, value) in keys.iter().zip(found) {
        if let Some(value) = value {
            result.set_item(&key.object, value)?;
            FlexCachePy::tell_accessed(slf, &key.object);
        }
    }
    Ok(result.into_any())
}

/// An empty dict with room for `len` items: growing one from empty
/// re-inserts everything at each doubling, which cost a `get_many` a third
/// of its time (CPython has no public call for this; the private one has
/// been exported, unchanged, by every version this module builds for).
#[cfg(not(any(Py_LIMITED_API, PyPy, GraalPy)))]
#[allow(unsafe_code, reason = "a CPython call pyo3 does not declare")]
fn dict_for(py: Python<'_>, len: usize) -> PyResult<Bound<'_, PyDict>> {
    extern "C" {
        fn _PyDict_NewPresized(minused: pyo3::ffi::Py_ssize_t) -> *mut pyo3::ffi::PyObject;
    }
    let len = pyo3::ffi::Py_ssize_t::try_from(len).unwrap_or(0);
    // SAFETY: attached to the interpreter (`py`); the call takes a size and
    // returns a new reference to a dict, or NULL with an exception set,
    // which `from_owned_ptr_or_err` turns into the error.
    let dict = unsafe { Bound::from_owned_ptr_or_err(py, _PyDict_NewPresized(len))? };
    Ok(dict.cast_into::<PyDict>()?)
}

#[cfg(any(Py_LIMITED_API, PyPy, GraalPy))]
fn dict_for(py: Python<'_>, _len: usize) -> PyResult<Bound<'_, PyDict>> {
    Ok(PyDict::new(py))
}

/// Deletes each of `keys`, closing their values; how many were live.
pub(super) fn delete_many(
    slf: &Bound<'_, FlexCachePy>,
    keys: &Bound<'_, PyAny>,
) -> PyResult<usize> {
    let keys = parse_keys(keys)?;
    with_keys(slf, &keys, |engine, time, released, matchers| {
        // Every key may release an entry: one allocation, not a doubling
        // series of them.
        released.reserve(keys.len());
        let mut removed = 0;
        for (key, matcher) in keys.iter().zip(matchers) {
            let eq = |stored: &StoredKey| matcher.compare(stored);
            if let Ok(Some(entry)) = engine.remove(key.hash, eq, time.now, released) {
                removed += usize::from(entry.reason == ReleaseReason::Deleted);
                released.push(entry);
            }
        }
        removed
    })
}

/// Runs `call`, one engine call for the whole of `keys`, with a comparison
/// for each key that decides (never `Unknown`): when a first look (which
/// changes nothing) meets a key that only Python can compare, the
/// candidates of every key are compared with the borrow released, and the
/// call runs with their verdicts, unless the cache changed meanwhile. So a
/// raising `__eq__` leaves the cache as it was.
fn with_keys<'py, R>(
    slf: &Bound<'py, FlexCachePy>,
    keys: &[Key<'py>],
    mut call: impl FnMut(&mut Engine, Time<'_>, &mut ReleasedObjects, &[Matcher<'_, 'py>]) -> R,
) -> PyResult<R> {
    let mut winners: Vec<Option<Bound<'py, PyAny>>> = Vec::new();
    let mut generation = None;
    for _ in 0..=SETTLE_TRIES {
        let matchers: Vec<Matcher<'_, 'py>> = match generation {
            None => keys.iter().map(Matcher::first).collect(),
            Some(_) => keys
                .iter()
                .zip(&winners)
                .map(|(key, winner)| Matcher::settled(key, winner.as_ref()))
                .collect(),
        };
        let outcome = FlexCachePy::with_engine(slf, TimeRule::Lookup, |engine, time, released| {
            match generation {
                Some(generation) if engine.generation() != generation => return None,
                Some(_) => {}
                // Only a foreign key can leave a comparison undecided.
                None if !keys.iter().any(Key::is_foreign) => {}
                None => {
                    let undecided = keys.iter().zip(&matchers).any(|(key, matcher)| {
                        let eq = |stored: &StoredKey| matcher.compare(stored);
                        engine.peek(key.hash, eq, time.now).is_err()
                    });
                    if undecided {
                        return None;
                    }
                }
            }
            Some(call(engine, time, released, &matchers))
        })?;
        if let Some(result) = outcome {
            return Ok(result);
        }
        let (found, now) = settle_batch(slf, keys.iter())?;
        winners = found;
        generation = Some(now);
    }
    Err(changed_on_every_try())
}

fn changed_on_every_try() -> PyErr {
    PyRuntimeError::new_err(format!(
        "the cache changed while the batch's keys were being compared, on each of \
         {SETTLE_TRIES} tries (does a key's __eq__ change the cache?)"
    ))
}

/// One entry of a batch, read and measured.
struct Pending<'py> {
    key: Key<'py>,
    value: Bound<'py, PyAny>,
    size: u64,
    needs_close: bool,
}

/// `set_many` (`replace` false) and `put_many` (true).
pub(super) fn store_many<'py>(
    slf: &Bound<'py, FlexCachePy>,
    entries: &Bound<'py, PyAny>,
    ttl: Option<&Bound<'py, PyAny>>,
    replace: bool,
) -> PyResult<()> {
    let py = slf.py();
    let ttl = args::ttl(ttl)?;
    let from_dict = entries.is_exact_instance_of::<PyDict>();
    let pairs = parse_pairs(entries)?;
    let mut batch = Vec::with_capacity(pairs.len());
    for (key, value) in pairs {
        batch.push(Pending {
            key: Key::from_object(&key)?,
            value,
            size: 0,
            needs_close: false,
        });
    }
    // A dict's keys are distinct under its `==`, which is the cache's for
    // exact str, int, float, bool, bytes and None.
    if !(from_dict && batch.iter().all(|pending| pending.key.compares_as_dict())) {
        batch = without_repeats(batch, replace)?;
    }
    for pending in &mut batch {
        // User code, before the cache is borrowed; only for what is stored.
        (pending.size, pending.needs_close) =
            FlexCachePy::measure(slf, &pending.key.object, &pending.value)?;
    }
    let mut winners: Vec<Option<Bound<'py, PyAny>>> = Vec::new();
    let mut generation = None;
    let mut tries = 0;
    let mut kept = Vec::new();
    while tries <= SETTLE_TRIES {
        let matchers: Vec<Matcher<'_, 'py>> = match generation {
            None => batch
                .iter()
                .map(|pending| Matcher::first(&pending.key))
                .collect(),
            Some(_) => batch
                .iter()
                .zip(&winners)
                .map(|(pending, winner)| Matcher::settled(&pending.key, winner.as_ref()))
                .collect(),
        };
        let outcome =
            FlexCachePy::with_engine(slf, TimeRule::storing(ttl), |engine, time, released| {
                if generation.is_some_and(|generation| engine.generation() != generation) {
                    return Err(BatchError::Undecided);
                }
                let entries = batch
                    .iter()
                    .map(|pending| {
                        let deadline = ttl.deadline(time.now, time.clock);
                        let key = &pending.key;
                        key.new_entry(&pending.value, pending.size, pending.needs_close, deadline)
                    })
                    .collect();
                let eq = |position: usize, stored: &StoredKey| matchers[position].compare(stored);
                if !engine.is_empty() {
                    // Each entry may replace or evict one (see `delete_many`).
                    released.reserve(batch.len());
                }
                match engine.store_batch(entries, eq, replace, time.now, released) {
                    Ok(()) => {
                        if replace {
                            keep_restored_values(py, released, &batch, &mut kept);
                        }
                        Ok(())
                    }
                    Err((error, refused)) => {
                        for new in refused {
                            // Dropped as `Bound`, at once; the caller holds both.
                            drop((new.key.into_bound(py), new.value.into_bound(py)));
                        }
                        Err(error)
                    }
                }
            })?;
        match outcome {
            Ok(()) => {
                tell_batch_stored(slf, &kept, &batch);
                return Ok(());
            }
            Err(BatchError::NeedsRoom) => {
                let keys: Vec<&Key<'py>> = batch.iter().map(|pending| &pending.key).collect();
                FlexCachePy::evict_for_policy(slf, &keys)?;
                // The eviction changed the cache: the keys' comparisons
                // are made again.
                generation = None;
            }
            Err(
                refusal @ (BatchError::Occupied(_)
                | BatchError::TooLarge(_)
                | BatchError::DoesNotFit),
            ) => {
                return Err(batch_refused(slf, refusal, &batch)?);
            }
            Err(BatchError::Undecided) => {
                let (found, now) = settle_batch(slf, batch.iter().map(|pending| &pending.key))?;
                winners = found;
                generation = Some(now);
                tries += 1;
            }
        }
    }
    Err(changed_on_every_try())
}

/// The exception for a batch the engine refused as it stands.
fn batch_refused(
    slf: &Bound<'_, FlexCachePy>,
    refusal: BatchError,
    batch: &[Pending<'_>],
) -> PyResult<PyErr> {
    Ok(match refusal {
        BatchError::Occupied(position) => {
            PyKeyError::new_err((batch[position].key.object.clone().unbind(),))
        }
        BatchError::TooLarge(position) => FlexCachePy::too_large(slf, batch[position].size)?,
        BatchError::DoesNotFit | BatchError::NeedsRoom | BatchError::Undecided => {
            let total: u128 = batch.iter().map(|pending| u128::from(pending.size)).sum();
            PyValueError::new_err(format!(
                "a batch of {} entries of total size {total} does not fit in the cache's \
                 limits on its own",
                batch.len()
            ))
        }
    })
}

/// Tells the Python policy, if any, of a batch stored: first of the
/// entries whose very value was stored again (`kept`), told of no release
/// though their old entries left, then of every entry stored.
fn tell_batch_stored(
    slf: &Bound<'_, FlexCachePy>,
    kept: &[Bound<'_, PyAny>],
    batch: &[Pending<'_>],
) {
    let Some(policy) = FlexCachePy::python_policy(slf) else {
        return;
    };
    for key in kept {
        policy::on_remove(policy, key);
    }
    for pending in batch {
        policy::on_insert(policy, &pending.key.object);
    }
}

/// Compares each batch key with its candidates (user code, no borrow
/// held): the stored key found equal to each, and the generation the
/// candidates were read at.
fn settle_batch<'a, 'py: 'a>(
    slf: &Bound<'py, FlexCachePy>,
    keys: impl Iterator<Item = &'a Key<'py>> + Clone,
) -> PyResult<(Vec<Option<Bound<'py, PyAny>>>, u64)> {
    let py = slf.py();
    let (candidates, generation) =
        FlexCachePy::with_engine(slf, TimeRule::Untimed, |engine, _, _| {
            let candidates: Vec<SmallVec<[Bound<'py, PyAny>; 1]>> = keys
                .clone()
                .map(|key| {
                    let mut found = SmallVec::new();
                    engine.candidates(
                        key.hash,
                        |stored| key.compare(stored),
                        |stored| found.push(stored.bind(py).clone()),
                    );
                    found
                })
                .collect();
            (candidates, engine.generation())
        })?;
    let mut winners = Vec::with_capacity(candidates.len());
    for (key, candidates) in keys.zip(candidates) {
        let mut winner = None;
        for candidate in candidates {
            if key.equals(&candidate)? {
                winner = Some(candidate);
                break;
            }
        }
        winners.push(winner);
    }
    Ok((winners, generation))
}

/// A batch with each key once: a repeat is a `KeyError` (`set_many`), or
/// the last one wins (`put_many`, as `dict.update`). Keys are compared as
/// the cache compares them (a str subclass by its text), user code run for
/// foreign keys, no borrow held. The positions seen so far are filed by
/// key hash in a table that compares only on a hash match (a `HashMap`
/// with its keyed hasher cost a batch more per key than storing it did).
fn without_repeats(batch: Vec<Pending<'_>>, last_wins: bool) -> PyResult<Vec<Pending<'_>>> {
    without_repeated_keys(batch, |pending| &pending.key, last_wins)
}

/// [`without_repeats`] for any batch whose items have a key (`key_of`).
pub(super) fn without_repeated_keys<'py, T>(
    batch: Vec<T>,
    key_of: impl Fn(&T) -> &Key<'py>,
    last_wins: bool,
) -> PyResult<Vec<T>> {
    // Python's hashes of small ints are the ints: spread them over the
    // bits the table reads.
    let table_hash = |position: usize| {
        key_of(&batch[position])
            .hash
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
    };
    let mut seen: HashTable<usize> = HashTable::with_capacity(batch.len());
    let mut superseded: Option<Vec<bool>> = None;
    for position in 0..batch.len() {
        let hash = table_hash(position);
        let key = key_of(&batch[position]);
        let mut holder = None;
        for &earlier in seen.iter_hash(hash) {
            let other = key_of(&batch[earlier]);
            if other.hash == key.hash && key.equals(&other.object)? {
                holder = Some(earlier);
                break;
            }
        }
        let Some(earlier) = holder else {
            seen.insert_unique(hash, position, |&other| table_hash(other));
            continue;
        };
        if !last_wins {
            return Err(PyKeyError::new_err((key.object.clone().unbind(),)));
        }
        superseded.get_or_insert_with(|| vec![false; batch.len()])[earlier] = true;
        if let Some(slot) = seen.iter_hash_mut(hash).find(|slot| **slot == earlier) {
            *slot = position;
        }
    }
    let Some(superseded) = superseded else {
        return Ok(batch);
    };
    Ok(batch
        .into_iter()
        .zip(superseded)
        .filter_map(|(entry, superseded)| (!superseded).then_some(entry))
        .collect())
}

/// After a `put_many`: as `keep_restored_value` after a `put`, for every
/// replaced entry that held the very value its key is now stored with.
fn keep_restored_values<'py>(
    py: Python<'py>,
    released: &mut ReleasedObjects,
    batch: &[Pending<'py>],
    kept: &mut Vec<Bound<'py, PyAny>>,
) {
    if !released
        .iter()
        .any(|entry| entry.reason == ReleaseReason::Replaced)
    {
        return;
    }
    // The stored value of each key object of the batch, by address (the
    // released entry of a replacement carries the batch's key object).
    let address_hash = |address: usize| (address as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut values: HashTable<(usize, usize)> = HashTable::with_capacity(batch.len());
    for pending in batch {
        let key = pending.key.object.as_ptr() as usize;
        let value = pending.value.as_ptr() as usize;
        values.insert_unique(address_hash(key), (key, value), |&(key, _)| {
            address_hash(key)
        });
    }
    let mut all = std::mem::take(released);
    released.reserve(all.len());
    for entry in all.drain(..) {
        let key = entry.key.as_ptr() as usize;
        let restored = entry.reason == ReleaseReason::Replaced
            && values
                .find(address_hash(key), |&(stored, _)| stored == key)
                .is_some_and(|&(_, value)| value == entry.value.as_ptr() as usize);
        if restored {
            // The caller holds both objects: these drops only decrement.
            let (key, value) = (entry.key.into_bound(py), entry.value.into_bound(py));
            kept.push(key);
            drop(value);
        } else {
            released.push(entry);
        }
    }
}

/// The keys of an iterable, each hashed and classified.
fn parse_keys<'py>(keys: &Bound<'py, PyAny>) -> PyResult<Vec<Key<'py>>> {
    if keys.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(
            "keys must be an iterable of keys, not a str (wrap a single key in a list)",
        ));
    }
    // A list or tuple is read by index, skipping the iterator protocol
    // (its two calls a key were a sixth of a `delete_many`). The list is
    // read afresh at each step, as its own iterator does: a `__hash__` run
    // meanwhile may change it.
    if let Ok(list) = keys.cast_exact::<PyList>() {
        let mut parsed = Vec::with_capacity(list.len());
        for key in list.iter() {
            parsed.push(Key::from_object(&key)?);
        }
        return Ok(parsed);
    }
    if let Ok(tuple) = keys.cast_exact::<PyTuple>() {
        let mut parsed = Vec::with_capacity(tuple.len());
        for key in tuple.iter() {
            parsed.push(Key::from_object(&key)?);
        }
        return Ok(parsed);
    }
    let mut parsed = Vec::new();
    for key in keys.try_iter()? {
        parsed.push(Key::from_object(&key?)?);
    }
    Ok(parsed)
}

/// The `(key, value)` pairs of a mapping or of an iterable of pairs, read
/// as `dict.update` reads them.
fn parse_pairs<'py>(
    entries: &Bound<'py, PyAny>,
) -> PyResult<Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)>> {
    let py = entries.py();
    if let Ok(dict) = entries.cast_exact::<PyDict>() {
        let mut pairs = Vec::with_capacity(dict.len());
        pairs.extend(dict.iter());
        return Ok(pairs);
    }
    let mut pairs = Vec::new();
    if entries.hasattr(intern!(py, "keys"))? {
        for key in entries.call_method0(intern!(py, "keys"))?.try_iter()? {
            let key = key?;
            let value = entries.get_item(&key)?;
            pairs.push((key, value));
        }
        return Ok(pairs);
    }
    for (position, item) in entries.try_iter()?.enumerate() {
        let item = item?;
        let Ok(parts) = item.try_iter() else {
            return Err(PyTypeError::new_err(format!(
                "entries element #{position} ({}) is not a (key, value) pair",
                type_name(&item)
            )));
        };
        let parts = parts.collect::<PyResult<SmallVec<[Bound<'py, PyAny>; 2]>>>()?;
        let [key, value]: [Bound<'py, PyAny>; 2] = parts.into_inner().map_err(|parts| {
            PyValueError::new_err(format!(
                "entries element #{position} has length {}; 2 is required",
                parts.len()
            ))
        })?;
        pairs.push((key, value));
    }
    Ok(pairs)
}
