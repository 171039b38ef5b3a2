//! With the `python` feature, tells rustc which Python the binding is built
//! for (`Py_3_13` and friends), so that `src/py` can use the C API each
//! version offers. The engine alone needs nothing.

fn main() {
    #[cfg(feature = "python")]
    pyo3_build_config::use_pyo3_cfgs();
}
