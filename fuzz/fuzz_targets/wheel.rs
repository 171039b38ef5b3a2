//! The timing wheel alone against a `BTreeSet`: see `flexcache::engine::model::run_wheel`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| flexcache::engine::model::run_wheel(data));
