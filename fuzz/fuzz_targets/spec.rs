//! `bareboat.toml`: parsing and every validation of a spec.
#![no_main]

use bareboat_spec::spec::Spec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Spec::parse(text, "fuzz.toml");
    }
});
