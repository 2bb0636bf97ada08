//! What auto-deps and the ABI guard read of an added file: an ELF file's interpreter,
//! needed libraries, search paths and symbol versions (needed and defined), or a script's
//! `#!` line.
#![no_main]

use bareboat_build::deps::search_paths;
use bareboat_elf::{FileKind, classify, version_definitions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = version_definitions(data);
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
