//! What auto-deps and the ABI guard read of an added file: an ELF file's interpreter,
//! needed libraries, search paths and symbol versions (needed and defined), or a script's
//! `#!` line; and the loader's configuration, read from an image whose `/etc/ld.so.conf`
//! (and each file it includes) holds the input.
#![no_main]

use bareboat_build::deps::search_paths;
use bareboat_elf::{FileKind, Tree, classify, ld_so_conf, version_definitions};
use libfuzzer_sys::fuzz_target;

/// A tree in which every file holds the input, and every directory lists a few names.
struct Same<'a>(&'a [u8]);

impl Tree for Same<'_> {
    fn read(&self, _path: &str) -> Option<Vec<u8>> {
        Some(self.0.to_vec())
    }

    fn list(&self, _dir: &str) -> Vec<String> {
        vec!["a.conf".into(), "b.conf".into(), "c".into()]
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = version_definitions(data);
    let conf = ld_so_conf(&Same(data));
    if let Ok(FileKind::Dynamic {
        needed,
        search,
        arch,
        ..
    }) = classify(data, "app/prog")
    {
        for soname in &needed {
            let _ = search_paths(soname, &search, &conf, &arch);
            let _ = bareboat_build::deps::name_candidates(soname);
        }
    }
});
