//! Control paragraphs as apt reads them: a Packages index, a Release file, and the relation
//! fields of each package.
#![no_main]

use bareboat_apt::index::PackageIndex;
use bareboat_apt::relation::{SourceRef, parse_provides, parse_relations};
use bareboat_apt::release::Release;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Release::parse(text, "fuzz");
    if let Ok(index) = PackageIndex::parse_text(text, "fuzz") {
        for p in index.iter() {
            for field in [p.depends(), p.pre_depends(), p.conflicts(), p.breaks()] {
                let _ = field.map(parse_relations);
            }
            let _ = p.provides().map(parse_provides);
            let _ = SourceRef::parse(p.source(), p.name());
            let _ = index.named(p.name()).count();
        }
    }
    let _ = PackageIndex::parse_installed(text, "fuzz");
});
