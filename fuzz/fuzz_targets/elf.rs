//! What auto-deps reads of an added file: an ELF file's interpreter, needed libraries and
//! search paths, or a script's `#!` line.
#![no_main]

use bareboat_build::deps::{FileKind, classify, search_paths};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(FileKind::Dynamic {
        needed,
        search,
        arch,
        ..
    }) = classify(data, "app/prog")
    {
        for soname in &needed {
            let _ = search_paths(soname, &search, &arch);
            let _ = bareboat_build::deps::name_candidates(soname);
        }
    }
});
