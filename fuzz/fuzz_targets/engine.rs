//! The cache engine against its reference model: see `flexcache::engine::model::run`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| flexcache::engine::model::run(data));
