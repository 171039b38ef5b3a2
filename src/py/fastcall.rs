//! Hand-written `METH_FASTCALL` entry points for `get`, `set` and `delete`.
//!
//! pyo3's generated wrapper parses every call through its general argument
//! parser and trampoline, a good part of what a `get` hit costs beyond
//! `dict.get` (bench/README.md has the profile). These entries
//! take the calls that matter (positional arguments, and `set`'s `ttl=`
//! keyword) straight to the same method bodies pyo3 calls; every other
//! shape of call (other keywords, a wrong count) goes to pyo3's wrapper, so
//! the signature, the error messages and the docstrings stay pyo3's.
//!
//! `install` swaps the entries in after pyo3 has built the class: it copies
//! pyo3's `PyMethodDef` (name, flags, docstring and text signature), keeps
//! its function as the fallback, and puts a method descriptor for the copy
//! into the class dict.
//!
//! What pyo3's trampoline did that these entries must do themselves:
//! - catch panics: a panic becomes `PanicException`;
//! - count the thread as attached for pyo3's `Py` drops: the bodies drop no
//!   `Py` on their success path (`close_released` drops through `Bound`),
//!   and an error is restored inside `Python::attach`, so pyo3's deferred
//!   reference pool is never needed.

#![allow(unsafe_code)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use pyo3::exceptions::PyRuntimeError;
use pyo3::ffi;
use pyo3::intern;
use pyo3::panic::PanicException;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple, PyType};
use pyo3::Borrowed;

use super::FlexCachePy;

type Fastcall = ffi::PyCFunctionFastWithKeywords;

/// pyo3's wrappers, which serve every call the fast entries do not take.
static GET_WRAPPER: OnceLock<Fastcall> = OnceLock::new();
static SET_WRAPPER: OnceLock<Fastcall> = OnceLock::new();
static DELETE_WRAPPER: OnceLock<Fastcall> = OnceLock::new();

/// Replaces the `get`, `set` and `delete` methods of `class` (pyo3's
/// `FlexCachePy`) with the fast entries.
pub(super) fn install(class: &Bound<'_, PyType>) -> PyResult<()> {
    install_entry(class, "get", get_entry, &GET_WRAPPER)?;
    install_entry(class, "set", set_entry, &SET_WRAPPER)?;
    install_entry(class, "delete", delete_entry, &DELETE_WRAPPER)
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

/// Runs a method body for an entry, doing what pyo3's trampoline would:
/// catches a panic (it becomes `PanicException`) and turns the outcome into
/// what CPython expects of a `METH_FASTCALL` function, a new reference or
/// NULL with an error set.
///
/// # Safety
/// `slf` is the `self` CPython passed to an entry that `install` made, and
/// the calling thread holds the GIL.
unsafe fn run_body<'py, T>(
    py: Python<'py>,
    slf: *mut ffi::PyObject,
    body: impl FnOnce(&Bound<'py, FlexCachePy>) -> PyResult<T>,
    convert: impl FnOnce(T) -> *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython's method descriptor checked that `slf` is an instance
    // of the class it was made for, FlexCache, which has no subclasses; so
    // the object is pyo3's `FlexCachePy` cell, alive for the call.
    let slf = unsafe { Borrowed::from_ptr(py, slf).cast_unchecked::<FlexCachePy>() };
    let error = match catch_unwind(AssertUnwindSafe(|| body(&slf))) {
        Ok(Ok(value)) => return convert(value),
        Ok(Err(error)) => error,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|text| (*text).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic in flexcache".to_owned());
            PanicException::new_err(message)
        }
    };
    // Attached through pyo3 so that restoring the error drops its `Py`
    // parts at once rather than into pyo3's deferred pool.
    Python::attach(|py| error.restore(py));
    std::ptr::null_mut()
}

/// Hands a call an entry does not take to pyo3's wrapper, unchanged.
///
/// # Safety
/// The arguments are those CPython passed to an entry that `install` made
/// together with `wrapper`.
unsafe fn to_wrapper(
    wrapper: &OnceLock<Fastcall>,
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    let wrapper = wrapper.get().expect("installed with the entry");
    // SAFETY: the function CPython would have called before `install`,
    // with the caller's own arguments.
    unsafe { wrapper(slf, args, nargsf, kwnames) }
}

/// A new reference to `True`, `False` or `None`.
fn new_ref_to(singleton: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: the singletons are static objects that live as long as the
    // interpreter; `Py_NewRef` adds the reference CPython will take over.
    unsafe { ffi::Py_NewRef(singleton) }
}

/// `FlexCache.get(key)` and `FlexCache.get(key, default)`.
///
/// # Safety
/// Called only by CPython through the method descriptor `install` made:
/// `slf` is a live `FlexCache` (the descriptor checks the type), `args`
/// holds `nargs` live positional arguments followed by one per name in
/// `kwnames`, and the calling thread holds the GIL.
unsafe extern "C" fn get_entry(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython passes the vectorcall count here, flags included.
    let nargs = unsafe { ffi::PyVectorcall_NARGS(nargsf as usize) };
    if !kwnames.is_null() || !(1..=2).contains(&nargs) {
        // SAFETY: the function's contract.
        return unsafe { to_wrapper(&GET_WRAPPER, slf, args, nargsf, kwnames) };
    }
    // SAFETY: the function's contract: the GIL is held for the whole call,
    // and the `nargs` arguments stay alive while borrowed.
    unsafe {
        let py = Python::assume_attached();
        let key = Borrowed::from_ptr(py, *args);
        let default = (nargs == 2).then(|| Borrowed::from_ptr(py, *args.add(1)));
        run_body(
            py,
            slf,
            |slf| FlexCachePy::get(slf, &key, default.map(|d| d.to_owned())),
            Bound::into_ptr,
        )
    }
}

/// `FlexCache.set(key, value)`, `FlexCache.set(key, value, ttl)` and
/// `FlexCache.set(key, value, ttl=ttl)`.
///
/// # Safety
/// As for `get_entry`.
unsafe extern "C" fn set_entry(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython passes the vectorcall count here, flags included.
    let nargs = unsafe { ffi::PyVectorcall_NARGS(nargsf as usize) };
    // SAFETY: as in `get_entry`.
    let py = unsafe { Python::assume_attached() };
    let ttl_given = match (nargs, kwnames.is_null()) {
        (2, true) => false,
        (3, true) => true,
        // SAFETY: `kwnames`, when not NULL, is a live tuple of str whose
        // values follow the positional arguments in `args`.
        (2, false) if unsafe { names_only_ttl(py, kwnames) } => true,
        // SAFETY: the function's contract.
        _ => return unsafe { to_wrapper(&SET_WRAPPER, slf, args, nargsf, kwnames) },
    };
    // SAFETY: as in `get_entry`; with `ttl_given` there are three values
    // in `args`, positional or `ttl=`.
    unsafe {
        let key = Borrowed::from_ptr(py, *args);
        let value = Borrowed::from_ptr(py, *args.add(1));
        let ttl = ttl_given.then(|| Borrowed::from_ptr(py, *args.add(2)));
        run_body(
            py,
            slf,
            |slf| FlexCachePy::set(slf, &key, &value, ttl.as_deref()),
            |()| new_ref_to(ffi::Py_None()),
        )
    }
}

/// Whether the keyword names of a call are exactly `("ttl",)`.
///
/// # Safety
/// `kwnames` is a live tuple and the GIL is held.
unsafe fn names_only_ttl(py: Python<'_>, kwnames: *mut ffi::PyObject) -> bool {
    // SAFETY: the caller's contract.
    let names = unsafe { Borrowed::from_ptr(py, kwnames) };
    let Ok(names) = names.cast::<PyTuple>() else {
        return false;
    };
    let ttl = intern!(py, "ttl");
    // CPython interns keyword names, so the identity test nearly always
    // decides; equality covers names built at run time.
    names.len() == 1
        && names
            .get_borrowed_item(0)
            .is_ok_and(|name| name.is(ttl) || name.eq(ttl).unwrap_or(false))
}

/// `FlexCache.delete(key)`.
///
/// # Safety
/// As for `get_entry`.
unsafe extern "C" fn delete_entry(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython passes the vectorcall count here, flags included.
    let nargs = unsafe { ffi::PyVectorcall_NARGS(nargsf as usize) };
    if !kwnames.is_null() || nargs != 1 {
        // SAFETY: the function's contract.
        return unsafe { to_wrapper(&DELETE_WRAPPER, slf, args, nargsf, kwnames) };
    }
    // SAFETY: as in `get_entry`.
    unsafe {
        let py = Python::assume_attached();
        let key = Borrowed::from_ptr(py, *args);
        run_body(
            py,
            slf,
            |slf| FlexCachePy::delete(slf, &key),
            |removed| {
                new_ref_to(if removed {
                    ffi::Py_True()
                } else {
                    ffi::Py_False()
                })
            },
        )
    }
}
