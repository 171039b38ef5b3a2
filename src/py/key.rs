//! Keys: any hashable object, with a dict's notion of sameness (identity
//! first, then equal hashes and `==`), and str keys on a fast path.
//!
//! A key is classified once, when an operation receives it:
//! - an exact `str` (the fast path): Python's own hash, read from the str
//!   object where CPython cached it, and compared by text;
//! - a *plain* key: a str subclass, an exact `int`, `float`, `bool`,
//!   `bytes`, `None`, or a tuple of plain keys. Plain keys compare in Rust
//!   without running any user code, so they compare while the engine is
//!   borrowed. A str subclass is identified by its text wherever it
//!   appears (alone or in a tuple): its own `__hash__`/`__eq__` are never
//!   called, so it finds the entry stored under the equal plain str;
//! - a *foreign* key: anything else (or a plain-looking key that holds a
//!   foreign one). Its `__hash__` runs when it is classified, before the
//!   engine is touched; its `==` may run user code that re-enters the
//!   cache, so it never runs under the engine's borrow. The engine answers
//!   [`KeyMatch::Unknown`] for such a comparison and changes nothing, and
//!   the binding compares the candidates with the borrow released and
//!   tries again (`FlexCachePy::with_key`).
//!
//! Hashes are Python's (`1`, `1.0` and `True` hash alike and compare equal,
//! so they are one key), except that a tuple is hashed here, with CPython's
//! own tuple algorithm over the element hashes this module computes: that
//! is what lets `('a', 1)` and `(MyStr('a'), 1)` be one key. Never encoded
//! to UTF-8: lone surrogates are ordinary keys.

#![allow(unsafe_code)]

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyFloat, PyInt, PyString, PyTuple};
use pyo3::{intern, PyTypeInfo};

use super::args::discard;
use crate::engine::time::Nanos;
use crate::engine::{KeyMatch, NewEntry};

/// How a stored key is kept: the object the caller first stored it with.
pub(crate) type StoredKey = Py<PyAny>;

/// Tuples nested deeper than this are treated as foreign keys (hashed and
/// compared by Python itself), which bounds the recursion here.
const MAX_TUPLE_DEPTH: u32 = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// An exact str.
    Str,
    /// Compares in Rust (see the module docs).
    Plain,
    /// Compares only through Python's `==`.
    Foreign,
}

/// A key an operation was given, with its hash, classified.
pub(crate) struct Key<'py> {
    pub(crate) object: Bound<'py, PyAny>,
    pub(crate) hash: u64,
    kind: Kind,
}

impl<'py> Key<'py> {
    /// Hashes and classifies `obj`. For a foreign key this runs its
    /// `__hash__`, before any borrow of the cache.
    ///
    /// # Errors
    /// `TypeError` for an unhashable key; whatever a `__hash__` raises.
    #[inline(always)]
    pub(crate) fn from_object(obj: &Bound<'py, PyAny>) -> PyResult<Self> {
        if let Ok(text) = obj.cast_exact::<PyString>() {
            // Python's str hash, cast bit for bit: only equality of hashes
            // matters.
            let hash = match cached_hash(text) {
                Some(hash) => hash,
                None => obj.hash()?,
            };
            return Ok(Key {
                object: obj.clone(),
                hash: hash as u64,
                kind: Kind::Str,
            });
        }
        if obj.is_exact_instance_of::<PyInt>() {
            // The next commonest key, hashed by CPython (no user code).
            return Ok(Key {
                object: obj.clone(),
                hash: obj.hash()? as u64,
                kind: Kind::Plain,
            });
        }
        Self::from_other(obj)
    }

    #[inline(never)]
    fn from_other(obj: &Bound<'py, PyAny>) -> PyResult<Self> {
        let (hash, class) = key_hash(obj, 0)?;
        let kind = if class == Class::Foreign {
            Kind::Foreign
        } else {
            Kind::Plain
        };
        Ok(Key {
            object: obj.clone(),
            hash: hash as u64,
            kind,
        })
    }

    /// Whether a dict's `==` and the cache's agree on this key: an exact
    /// str, int, float, bool, bytes or None (a str subclass or a tuple
    /// holding one may define `==` otherwise, a foreign key anything).
    pub(crate) fn compares_as_dict(&self) -> bool {
        self.kind == Kind::Str
            || (self.kind == Kind::Plain
                && matches!(
                    class_of(&self.object, 0),
                    Class::Number | Class::Bytes | Class::None
                ))
    }

    /// Whether only Python's `==` compares this key.
    #[inline]
    pub(crate) fn is_foreign(&self) -> bool {
        self.kind == Kind::Foreign
    }

    /// Compares a stored key with this one without running user code:
    /// `Unknown` when only Python's `==` can tell.
    ///
    /// Identity, what most hits come down to, is tested inline; the rest
    /// is out of line, so that the index's probe loop stays small.
    #[inline(always)]
    pub(crate) fn compare(&self, stored: &StoredKey) -> KeyMatch {
        if stored.is(&self.object) {
            return KeyMatch::Same;
        }
        self.compare_other(stored.bind(self.object.py()))
    }

    #[inline(never)]
    fn compare_other(&self, stored: &Bound<'py, PyAny>) -> KeyMatch {
        match self.kind {
            Kind::Str if stored.is_exact_instance_of::<PyString>() => {
                KeyMatch::from(exact_text_equal(stored, &self.object))
            }
            Kind::Foreign => KeyMatch::Unknown,
            Kind::Str | Kind::Plain => plain_match(stored, &self.object, 0),
        }
    }

    /// The engine entry that stores `value` under this key (the key object
    /// as the caller gave it).
    #[inline(always)]
    pub(crate) fn new_entry(
        &self,
        value: &Bound<'py, PyAny>,
        size: u64,
        needs_close: bool,
        deadline: Nanos,
    ) -> NewEntry<StoredKey, Py<PyAny>> {
        NewEntry {
            hash: self.hash,
            key: self.object.clone().unbind(),
            value: value.clone().unbind(),
            size,
            deadline,
            needs_close,
        }
    }

    /// Compares a stored key with this one, running Python's `==` where the
    /// key needs it. Call only with the cache not borrowed.
    ///
    /// # Errors
    /// Whatever an `__eq__` raises.
    pub(crate) fn equals(&self, stored: &Bound<'py, PyAny>) -> PyResult<bool> {
        python_equal(stored, &self.object, 0)
    }
}

/// The comparison an engine call runs: [`Key::compare`] on a first try;
/// after the binding compared the candidates itself (settled), the one it
/// found equal (if any) is the match and the rest are not.
#[derive(Clone, Copy)]
pub(crate) struct Matcher<'k, 'py> {
    key: &'k Key<'py>,
    verdict: Verdict,
}

#[derive(Clone, Copy)]
enum Verdict {
    /// Not compared yet: what needs Python is `Unknown`.
    Pending,
    /// Compared in Python: this stored key object (if any) is the match.
    Settled(Option<*mut ffi::PyObject>),
}

impl<'k, 'py> Matcher<'k, 'py> {
    #[inline(always)]
    pub(crate) fn first(key: &'k Key<'py>) -> Self {
        Matcher {
            key,
            verdict: Verdict::Pending,
        }
    }

    pub(crate) fn settled(key: &'k Key<'py>, winner: Option<&Bound<'py, PyAny>>) -> Self {
        Matcher {
            key,
            verdict: Verdict::Settled(winner.map(Bound::as_ptr)),
        }
    }

    #[inline(always)]
    pub(crate) fn compare(&self, stored: &StoredKey) -> KeyMatch {
        match self.verdict {
            Verdict::Pending => self.key.compare(stored),
            Verdict::Settled(winner) => self.compare_settled(stored, winner),
        }
    }

    #[inline(never)]
    fn compare_settled(&self, stored: &StoredKey, winner: Option<*mut ffi::PyObject>) -> KeyMatch {
        if winner == Some(stored.as_ptr()) {
            return KeyMatch::Same;
        }
        match self.key.compare(stored) {
            // Compared in Python, with nothing changed since: not equal.
            KeyMatch::Unknown => KeyMatch::Different,
            decided => decided,
        }
    }
}

/// What a key is, for hashing and comparing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// A str or a str subclass: compared by text.
    Text,
    /// An exact int, float or bool: compared by value across the three.
    Number,
    Bytes,
    None,
    /// An exact tuple, up to [`MAX_TUPLE_DEPTH`].
    Tuple,
    Foreign,
}

#[inline]
fn class_of(obj: &Bound<'_, PyAny>, depth: u32) -> Class {
    if obj.is_instance_of::<PyString>() {
        Class::Text
    } else if obj.is_exact_instance_of::<PyInt>()
        || obj.is_exact_instance_of::<PyFloat>()
        || obj.is_exact_instance_of::<PyBool>()
    {
        Class::Number
    } else if obj.is_exact_instance_of::<PyBytes>() {
        Class::Bytes
    } else if obj.is_none() {
        Class::None
    } else if obj.is_exact_instance_of::<PyTuple>() && depth < MAX_TUPLE_DEPTH {
        Class::Tuple
    } else {
        Class::Foreign
    }
}

/// The hash of a key and its class (`Foreign` when anything in it is).
fn key_hash(obj: &Bound<'_, PyAny>, depth: u32) -> PyResult<(isize, Class)> {
    let class = class_of(obj, depth);
    let hash = match class {
        Class::Text if !obj.is_exact_instance_of::<PyString>() => {
            // `str.__hash__` hashes the text alone, whatever the subclass
            // overrides.
            let py = obj.py();
            PyString::type_object(py)
                .getattr(intern!(py, "__hash__"))?
                .call1((obj,))?
                .extract()?
        }
        Class::Tuple => return tuple_hash(obj.cast::<PyTuple>()?, depth),
        // Builtin hashes, or the key's own `__hash__` for a foreign key.
        _ => obj.hash()?,
    };
    Ok((hash, class))
}

/// [`key_hash`] of a tuple's item, the commonest two (an exact str whose
/// hash is cached, an exact int) inline: through the recursive call, a
/// tuple key paid a call frame per item, about a tenth of its lookup.
#[inline(always)]
fn item_hash(item: &Bound<'_, PyAny>, depth: u32) -> PyResult<(isize, Class)> {
    if let Ok(text) = item.cast_exact::<PyString>() {
        if let Some(hash) = cached_hash(text) {
            return Ok((hash, Class::Text));
        }
    } else if item.is_exact_instance_of::<PyInt>() {
        return Ok((item.hash()?, Class::Number));
    }
    key_hash(item, depth)
}

/// CPython's tuple hash (xxHash-based, `Objects/tupleobject.c`, 3.8 on)
/// over the element hashes of [`key_hash`], so that a tuple of builtins
/// hashes as `hash()` does.
fn tuple_hash(tuple: &Bound<'_, PyTuple>, depth: u32) -> PyResult<(isize, Class)> {
    const PRIME_1: u64 = 11_400_714_785_074_694_791;
    const PRIME_2: u64 = 14_029_467_366_897_019_727;
    const PRIME_5: u64 = 2_870_177_450_012_600_261;
    let mut class = Class::Tuple;
    let mut acc = PRIME_5;
    // Borrowed: the tuple holds its items, and a reference count taken and
    // dropped per item cost a tuple key's lookup a tenth of its time.
    for item in tuple.iter_borrowed() {
        let (lane, item_class) = item_hash(&item, depth + 1)?;
        if item_class == Class::Foreign {
            class = Class::Foreign;
        }
        acc = acc.wrapping_add((lane as u64).wrapping_mul(PRIME_2));
        acc = acc.rotate_left(31);
        acc = acc.wrapping_mul(PRIME_1);
    }
    acc = acc.wrapping_add(tuple.len() as u64 ^ (PRIME_5 ^ 0x0035_D373));
    if acc == u64::MAX {
        acc = 1_546_275_796;
    }
    // A hash is bits: the cast keeps all 64 of them.
    #[allow(clippy::cast_possible_wrap)]
    let hash = acc as isize;
    Ok((hash, class))
}

/// Whether two keys are equal, decided without user code, or `Unknown`.
fn plain_match(a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>, depth: u32) -> KeyMatch {
    if a.is(b) {
        return KeyMatch::Same;
    }
    match (class_of(a, depth), class_of(b, depth)) {
        (Class::Foreign, _) | (_, Class::Foreign) => KeyMatch::Unknown,
        (Class::Text, Class::Text) => KeyMatch::from(text_equal(a, b)),
        // int, float and bool compare by value (`1 == 1.0 == True`); bytes
        // with bytes. Both sides are exact builtins, so `==` runs CPython's
        // own comparison and no user code.
        (Class::Number, Class::Number) | (Class::Bytes, Class::Bytes) => {
            KeyMatch::from(builtin_equal(a, b))
        }
        (Class::Tuple, Class::Tuple) => {
            let (a, b) = (a.cast::<PyTuple>(), b.cast::<PyTuple>());
            let (Ok(a), Ok(b)) = (a, b) else {
                return KeyMatch::Different;
            };
            if a.len() != b.len() {
                return KeyMatch::Different;
            }
            let mut outcome = KeyMatch::Same;
            for (x, y) in a.iter().zip(b.iter()) {
                match plain_match(&x, &y, depth + 1) {
                    KeyMatch::Same => {}
                    KeyMatch::Different => return KeyMatch::Different,
                    KeyMatch::Unknown => outcome = KeyMatch::Unknown,
                }
            }
            outcome
        }
        // Keys of different classes are never equal (None is a singleton,
        // so two Nones were the same object above).
        _ => KeyMatch::Different,
    }
}

/// Whether a stored key `stored` equals `key`, calling Python's `==` for
/// the foreign parts (the stored key's `__eq__` first, as a dict does).
fn python_equal(stored: &Bound<'_, PyAny>, key: &Bound<'_, PyAny>, depth: u32) -> PyResult<bool> {
    if stored.is(key) {
        return Ok(true);
    }
    match (class_of(stored, depth), class_of(key, depth)) {
        (Class::Foreign, _) | (_, Class::Foreign) => stored.eq(key),
        (Class::Tuple, Class::Tuple) => {
            let (stored, key) = (stored.cast::<PyTuple>()?, key.cast::<PyTuple>()?);
            if stored.len() != key.len() {
                return Ok(false);
            }
            for (x, y) in stored.iter().zip(key.iter()) {
                if !python_equal(&x, &y, depth + 1)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        _ => Ok(plain_match(stored, key, depth) == KeyMatch::Same),
    }
}

/// `a == b` for two exact strs (CPython's comparison; no user code).
#[inline(always)]
fn exact_text_equal(a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>) -> bool {
    builtin_equal(a, b)
}

/// Whether two strs, either of them maybe a subclass, hold the same text,
/// compared by CPython's str comparison so that no method a subclass
/// overrides runs.
fn text_equal(a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>) -> bool {
    if a.is_exact_instance_of::<PyString>() && b.is_exact_instance_of::<PyString>() {
        return exact_text_equal(a, b);
    }
    // SAFETY: both objects are live str instances (their class was checked
    // by the caller) and the thread is attached (`a` is a `Bound`).
    // `PyUnicode_Compare` reads their text only, and fails (-1 with an
    // error set) only for an argument that is not a str.
    unsafe { ffi::PyUnicode_Compare(a.as_ptr(), b.as_ptr()) == 0 }
}

/// `a == b` for two exact builtins whose comparison runs no user code.
#[inline(always)]
fn builtin_equal(a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>) -> bool {
    match a.eq(b) {
        Ok(equal) => equal,
        // Comparing two builtins does not fail; were it to, the error is
        // dropped as the rule of the fast bodies says.
        Err(error) => {
            discard(error);
            false
        }
    }
}

/// The hash CPython caches in a str object, once computed. Reading the field
/// skips `PyObject_Hash`'s indirect call, a measurable part of a cache hit
/// (bench/README.md).
#[cfg(not(any(Py_LIMITED_API, PyPy, GraalPy, Py_GIL_DISABLED)))]
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
