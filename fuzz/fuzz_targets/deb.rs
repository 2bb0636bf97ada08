//! The `ar` container of a `.deb`, its control archive, and its data archive read entry by
//! entry, as a build unpacks a package.
#![no_main]

use std::io::Read;

use bareboat_apt::deb::Deb;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(deb) = Deb::open(std::io::Cursor::new(data), std::path::Path::new("fuzz.deb")) else {
        return;
    };
    let _ = deb.control();
    let _ = deb.md5sums();
    let _ = deb.field("Package");
    let mut archive = tar::Archive::new(bareboat_oci::tar_bounds::BoundedTar::new(deb.data_stream()));
    let Ok(entries) = archive.entries() else {
        return;
    };
    for entry in entries {
        let Ok(mut entry) = entry else { return };
        let _ = entry.path();
        let _ = entry.link_name();
        // Bounded: a header may claim any size.
        let mut sink = Vec::new();
        let _ = (&mut entry).take(1 << 20).read_to_end(&mut sink);
    }
});
