//! Hand-written `METH_FASTCALL` entry points for `get`, `set` and `delete`.
//!
//! pyo3's generated wrapper parses every call through its general argument
//! parser, a good part of what a `get` hit costs beyond `dict.get`
//! (bench/README.md has the profile). These entries take the calls that
//! matter (positional arguments, and `set`'s `ttl=` keyword) straight to
//! the same method bodies pyo3 calls; every other shape of call (other
//! keywords, a wrong count) goes to pyo3's wrapper, so the signature, the
//! error messages and the docstrings stay pyo3's.
//!
//! `install` swaps the entries in after pyo3 has built the class: it copies
//! pyo3's `PyMethodDef` (name, flags, docstring and text signature), keeps
//! its function as the fallback, and puts a method descriptor for the copy
//! into the class dict.
//!
//! The entries are thin: they decode the call, borrow `self` and the
//! arguments, and run the method body with `Python::assume_attached`. What
//! pyo3's trampoline would add (about 75 instructions a call, +16% on a
//! `get` hit) they leave out, except what CPython and pyo3 require:
//! - a panic is caught and becomes `PanicException`;
//! - an error is restored inside `Python::attach`, which counts the thread
//!   (so restoring a lazy error drops its `Py` parts at once) and, attaching
//!   from a thread pyo3 does not count, drains pyo3's deferred pool.
//!
//! **The rule the fast bodies live by.** pyo3 does not count the thread as
//! attached while a body runs (`assume_attached` does not count it), and
//! pyo3 releases a `Py` dropped on an uncounted thread only later, through
//! its deferred reference pool. So a fast body (`FlexCachePy::get`, `set`
//! and `delete`, and everything they call: `key`, `args::ttl`,
//! `callbacks::measure` and `close_released`, `with_engine`, and
//! `names_only_ttl` here) drops no `Py` and no `PyErr` itself:
//! - an object it lets go is dropped as `Bound`, which releases it at once
//!   whatever pyo3 counts (`callbacks::close_one`, the refused entry in
//!   `set`);
//! - an error it handles rather than returns goes to [`discard`], which
//!   drops it inside `Python::attach`; that call is cold, out of the paths
//!   the benchmarks measure;
//! - an error it returns is restored by the entry, inside `Python::attach`;
//! - a `CastError` (a failed `cast`) holds only a `Borrowed` and a `Bound`,
//!   and may be dropped as it is.
//!
//! A `Py` or `PyErr` dropped against the rule is not freed until some
//! later call through pyo3's wrapper drains the pool: 100k calls leave
//! 100k objects. `tests/test_memory.py` counts allocated blocks over such
//! runs, and `tests/test_call_paths.py` checks that what a call lets go is
//! released before it returns, behind the fast entry and behind pyo3's
//! wrapper alike.

#![allow(unsafe_code)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use pyo3::exceptions::PyRuntimeError;
use pyo3::ffi;
use pyo3::intern;
use pyo3::panic::PanicException;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyTuple, PyType};
use pyo3::Borrowed;

use super::args::discard;
use super::FlexCachePy;

type Fastcall = ffi::PyCFunctionFastWithKeywords;

/// pyo3's wrappers, which serve every call the fast entries do not take.
static GET_WRAPPER: OnceLock<Fastcall> = OnceLock::new();
static SET_WRAPPER: OnceLock<Fastcall> = OnceLock::new();
static DELETE_WRAPPER: OnceLock<Fastcall> = OnceLock::new();

/// Replaces the `get`, `set` and `delete` methods of `class` (pyo3's
/// `FlexCachePy`) with the fast entries.
pub(super) fn install(class: &Bound<'_, PyType>) -> PyResult<()> {
    install_entry(class, "get", GET_ENTRY, &GET_WRAPPER)?;
    install_entry(class, "set", SET_ENTRY, &SET_WRAPPER)?;
    install_entry(class, "delete", DELETE_ENTRY, &DELETE_WRAPPER)
}

fn install_entry(
    class: &Bound<'_, PyType>,
    name: &str,
    entry: Fastcall,
    wrapper: &OnceLock<Fastcall>,
) -> PyResult<()> {
    let py = class.py();
    let generated = class.getattr(name)?;
    // Only the address of the static type object is taken.
    let descriptor_type = &raw mut ffi::PyMethodDescr_Type;
    if !std::ptr::eq(generated.get_type().as_type_ptr(), descriptor_type) {
        return Err(PyRuntimeError::new_err(format!(
            "FlexCache.{name} is not a method descriptor"
        )));
    }
    // SAFETY: `generated` is an exact `method_descriptor` (checked above),
    // so its object is a `PyMethodDescrObject` whose `d_method` points to
    // pyo3's `PyMethodDef`, which pyo3 keeps for the life of the process.
    let generated_def = unsafe {
        let descriptor = generated.as_ptr().cast::<ffi::PyMethodDescrObject>();
        *(*descriptor).d_method
    };
    if generated_def.ml_flags != ffi::METH_FASTCALL | ffi::METH_KEYWORDS {
        return Err(PyRuntimeError::new_err(format!(
            "FlexCache.{name} is not a METH_FASTCALL | METH_KEYWORDS method"
        )));
    }
    // SAFETY: the flags say which member of the union pyo3 wrote.
    let generated_fn = unsafe { generated_def.ml_meth.PyCFunctionFastWithKeywords };
    // pyo3's wrapper is one function for the life of the process, so a
    // second interpreter finds the same one already recorded.
    wrapper.get_or_init(|| generated_fn);
    // The descriptor keeps a raw pointer to its `PyMethodDef`, so the copy
    // must live as long as the class may: leaked, once per module import.
    let entry_def: &'static mut ffi::PyMethodDef = Box::leak(Box::new(ffi::PyMethodDef {
        ml_meth: ffi::PyMethodDefPointer {
            PyCFunctionFastWithKeywords: entry,
        },
        ..generated_def
    }));
    // SAFETY: the class is a live type object, `entry_def` is valid for
    // 'static, and the call returns a new reference or NULL with an error.
    let descriptor = unsafe {
        Bound::from_owned_ptr_or_err(py, ffi::PyDescr_NewMethod(class.as_type_ptr(), entry_def))?
    };
    // pyo3 marks its classes immutable, which forbids `setattr`; the class
    // dict itself can still be written while the module is being built,
    // which is how CPython fills the dicts of its own types.
    // SAFETY: a fully built class has a non-null `tp_dict`, a dict it owns;
    // a new reference to it is taken for the call.
    let class_dict = unsafe {
        Bound::from_borrowed_ptr(py, (*class.as_type_ptr()).tp_dict).cast_into::<PyDict>()?
    };
    class_dict.set_item(name, descriptor)?;
    // SAFETY: the class is a live type object; this drops any method lookup
    // CPython cached for it before the swap.
    unsafe { ffi::PyType_Modified(class.as_type_ptr()) };
    Ok(())
}

/// What CPython passed to an entry, as it passed it.
#[derive(Clone, Copy)]
struct RawCall {
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
}

/// The argument values of a call an entry takes: the positional ones,
/// then the value of `set`'s `ttl=`.
struct Args<'a, 'py> {
    py: Python<'py>,
    values: &'a [*mut ffi::PyObject],
}

impl<'a, 'py> Args<'a, 'py> {
    /// The argument at `index`, when the call passed one there.
    #[inline(always)]
    fn get(&self, index: usize) -> Option<Borrowed<'a, 'py, PyAny>> {
        let object = *self.values.get(index)?;
        // SAFETY: `values` holds only argument objects of the call, which
        // CPython keeps alive until the entry returns, so for `'a`.
        Some(unsafe { Borrowed::from_ptr(self.py, object) })
    }

    /// The argument at `index`, which the entry's arity rule guarantees.
    #[inline(always)]
    fn required(&self, index: usize) -> Borrowed<'a, 'py, PyAny> {
        self.get(index).expect("the arity rule counted it")
    }
}

/// How many argument values a call of this shape passes (`nargs`
/// positional, then one per name in `kwnames`), or `None` for a shape the
/// entry does not take.
///
/// # Safety
/// `kwnames` is CPython's: NULL or a live tuple of str, and the thread is
/// attached.
type Arity = unsafe fn(Python<'_>, usize, *mut ffi::PyObject) -> Option<usize>;

/// The prologue every entry shares: decodes the argument count, asks
/// `arity` how many argument values a call of that shape passes (`None`: a
/// shape the entry does not take, handed to pyo3's wrapper unchanged), and
/// runs `body` with `self` and the values; then turns the outcome into what
/// CPython expects of a `METH_FASTCALL` function, a new reference or NULL
/// with an error set (see [`raise`]).
///
/// # Safety
/// `call` is what CPython passed to an entry that `install` made together
/// with `wrapper`: `slf` is a live `FlexCache` (the method descriptor
/// checked its type), `args` holds `nargs` live positional arguments then
/// one per name in `kwnames`, and the calling thread holds the GIL (pyo3
/// does not count it as attached: `body` keeps the rule of the module
/// docs). `arity` answers at least 1, and only counts of values that
/// `args` holds.
#[inline(always)]
unsafe fn enter(
    call: RawCall,
    wrapper: &OnceLock<Fastcall>,
    arity: Arity,
    body: impl for<'a, 'py> FnOnce(
        &Bound<'py, FlexCachePy>,
        &Args<'a, 'py>,
    ) -> PyResult<*mut ffi::PyObject>,
) -> *mut ffi::PyObject {
    // SAFETY: CPython passes the vectorcall count here, flags included.
    let nargs = unsafe { ffi::PyVectorcall_NARGS(call.nargsf as usize) };
    // SAFETY: the GIL is held for the whole call (this function's
    // contract); pyo3 does not count the thread, which the rule of the
    // module docs allows for.
    let py = unsafe { Python::assume_attached() };
    // SAFETY: `kwnames` is CPython's and the thread is attached.
    let count = unsafe { arity(py, nargs as usize, call.kwnames) };
    let Some(count) = count else {
        let wrapper = wrapper.get().expect("installed with the entry");
        // SAFETY: the function CPython would have called before `install`,
        // with the caller's own arguments; it returns a new reference, or
        // NULL with an error set, either passed on as it is.
        return unsafe { wrapper(call.slf, call.args, call.nargsf, call.kwnames) };
    };
    // SAFETY: CPython's method descriptor checked that `slf` is an instance
    // of the class it was made for, FlexCache, which has no subclasses; so
    // the object is pyo3's `FlexCachePy` cell, alive for the call.
    let slf = unsafe { Borrowed::from_ptr(py, call.slf).cast_unchecked::<FlexCachePy>() };
    // SAFETY: `args` points to at least `count` (>= 1) argument pointers
    // (this function's contract), which stay valid until the entry returns.
    let values = unsafe { std::slice::from_raw_parts(call.args, count) };
    let failure = match catch_unwind(AssertUnwindSafe(|| body(&slf, &Args { py, values }))) {
        Ok(Ok(result)) => return result,
        Ok(Err(error)) => Ok(error),
        Err(payload) => Err(payload),
    };
    raise(failure)
}

/// Sets the error a body returned (`Ok`), or a `PanicException` for a
/// panic (`Err`, its payload), as the current exception, and returns the
/// NULL that tells CPython so. Inside `Python::attach`, which counts the
/// thread: restoring a lazy error drops the `Py` parts it builds, and those
/// drops are then immediate (attaching from an uncounted thread also
/// drains pyo3's deferred pool).
#[cold]
#[inline(never)]
fn raise(failure: Result<PyErr, Box<dyn std::any::Any + Send>>) -> *mut ffi::PyObject {
    Python::attach(|py| {
        let error = failure.unwrap_or_else(|payload| {
            let message = payload
                .downcast_ref::<&str>()
                .map(|text| (*text).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic in flexcache".to_owned());
            PanicException::new_err(message)
        });
        error.restore(py);
    });
    std::ptr::null_mut()
}

/// Defines the fast entry `$entry`: an `extern "C"` function that runs
/// [`enter`] with the entry's wrapper, arity rule and body.
macro_rules! fast_entry {
    ($(#[$doc:meta])* $entry:ident($wrapper:ident, $arity:path, $body:path)) => {
        $(#[$doc])*
        const $entry: Fastcall = {
            /// # Safety
            /// Called only by CPython through the method descriptor
            /// `install` made: `slf` is a live `FlexCache` (the descriptor
            /// checks the type), `args` holds `nargs` live positional
            /// arguments followed by one per name in `kwnames`, and the
            /// calling thread holds the GIL.
            unsafe extern "C" fn entry(
                slf: *mut ffi::PyObject,
                args: *const *mut ffi::PyObject,
                nargsf: ffi::Py_ssize_t,
                kwnames: *mut ffi::PyObject,
            ) -> *mut ffi::PyObject {
                let call = RawCall {
                    slf,
                    args,
                    nargsf,
                    kwnames,
                };
                // SAFETY: this function's contract is `enter`'s, and the
                // entry's arity rule answers only counts `args` holds.
                unsafe { enter(call, &$wrapper, $arity, $body) }
            }
            entry
        };
    };
}

fast_entry! {
    /// `FlexCache.get(key)` and `FlexCache.get(key, default)`.
    GET_ENTRY(GET_WRAPPER, get_arity, get_body)
}

fn get_arity(_py: Python<'_>, nargs: usize, kwnames: *mut ffi::PyObject) -> Option<usize> {
    (kwnames.is_null() && (1..=2).contains(&nargs)).then_some(nargs)
}

#[inline(always)]
fn get_body<'py>(
    slf: &Bound<'py, FlexCachePy>,
    args: &Args<'_, 'py>,
) -> PyResult<*mut ffi::PyObject> {
    let default = args.get(1).map(Borrowed::to_owned);
    FlexCachePy::get(slf, &args.required(0), default).map(Bound::into_ptr)
}

fast_entry! {
    /// `FlexCache.set(key, value)`, `FlexCache.set(key, value, ttl)` and
    /// `FlexCache.set(key, value, ttl=ttl)`.
    SET_ENTRY(SET_WRAPPER, set_arity, set_body)
}

/// # Safety
/// As for [`Arity`].
unsafe fn set_arity(py: Python<'_>, nargs: usize, kwnames: *mut ffi::PyObject) -> Option<usize> {
    match (nargs, kwnames.is_null()) {
        (2 | 3, true) => Some(nargs),
        // SAFETY: `kwnames`, not NULL here, is a live tuple (the function's
        // contract); the value of `ttl=` follows the two positional ones.
        (2, false) if unsafe { names_only_ttl(py, kwnames) } => Some(3),
        _ => None,
    }
}

#[inline(always)]
fn set_body<'py>(
    slf: &Bound<'py, FlexCachePy>,
    args: &Args<'_, 'py>,
) -> PyResult<*mut ffi::PyObject> {
    let ttl = args.get(2);
    FlexCachePy::set(slf, &args.required(0), &args.required(1), ttl.as_deref())?;
    Ok(slf.py().None().into_ptr())
}

fast_entry! {
    /// `FlexCache.delete(key)`.
    DELETE_ENTRY(DELETE_WRAPPER, delete_arity, delete_body)
}

fn delete_arity(_py: Python<'_>, nargs: usize, kwnames: *mut ffi::PyObject) -> Option<usize> {
    (kwnames.is_null() && nargs == 1).then_some(nargs)
}

#[inline(always)]
fn delete_body<'py>(
    slf: &Bound<'py, FlexCachePy>,
    args: &Args<'_, 'py>,
) -> PyResult<*mut ffi::PyObject> {
    let removed = FlexCachePy::delete(slf, &args.required(0))?;
    Ok(PyBool::new(slf.py(), removed).to_owned().into_ptr())
}

/// Whether the keyword names of a call are exactly `("ttl",)`.
///
/// # Safety
/// `kwnames` is a live tuple and the thread is attached.
unsafe fn names_only_ttl(py: Python<'_>, kwnames: *mut ffi::PyObject) -> bool {
    // SAFETY: the caller's contract.
    let names = unsafe { Borrowed::from_ptr(py, kwnames) };
    let Ok(names) = names.cast::<PyTuple>() else {
        return false;
    };
    if names.len() != 1 {
        return false;
    }
    let name = match names.get_borrowed_item(0) {
        Ok(name) => name,
        Err(error) => {
            discard(error);
            return false;
        }
    };
    let ttl = intern!(py, "ttl");
    // CPython interns keyword names, so the identity test nearly always
    // decides; equality covers names built at run time.
    name.is(ttl)
        || match name.eq(ttl) {
            Ok(equal) => equal,
            Err(error) => {
                discard(error);
                false
            }
        }
}
