//! The dump decoder on any bytes: it never panics, and what it accepts
//! encodes back to a dump it reads the same (see `flexcache::dumpfile`).
#![no_main]

use flexcache::dumpfile::{decode, Encoder, PolicyForm, Settings};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok((settings, entries)) = decode(data) else {
        return;
    };
    let policy = match settings.policy {
        PolicyForm::Name(name) => PolicyForm::Name(name),
        PolicyForm::Serialized(bytes) => PolicyForm::Serialized(bytes),
    };
    let mut encoder = Encoder::new(&Settings {
        policy,
        ..settings.clone()
    })
    .expect("it was read");
    for entry in &entries {
        encoder.entry(entry).expect("it was read");
    }
    assert_eq!(encoder.finish(), entries.len() as u64);
    let again = std::mem::take(encoder.buffer());
    let (settings_again, entries_again) = decode(&again).expect("an encoded dump decodes");
    assert_eq!(entries_again, entries);
    assert_eq!(settings_again.policy, settings.policy);
    assert_eq!(settings_again.max_items, settings.max_items);
    assert_eq!(settings_again.max_bytes, settings.max_bytes);
    assert_eq!(settings_again.thread_safe, settings.thread_safe);
    assert_eq!(
        settings_again.scan_interval.to_bits(),
        settings.scan_interval.to_bits()
    );
    assert_eq!(
        settings_again.background_scan.map(f64::to_bits),
        settings.background_scan.map(f64::to_bits)
    );
});
