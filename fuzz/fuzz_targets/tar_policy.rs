//! A package's data archive, and a base image's layer, through the overlay engine and the
//! build's extraction policy: path normalisation, merged /usr, whiteouts, links that must
//! stay inside the tree, hard links to earlier entries, size and entry caps, and the layer
//! written from what was kept.
#![no_main]

use bareboat_rootfs::policy::Slicing;
use bareboat_rootfs::rootfs::Rootfs;
use bareboat_oci::overlay::Limits;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("temp dir");
    let limits = Limits {
        max_entries: 10_000,
        max_file_size: 1 << 20,
        max_size: 4 << 20,
    };
    let setuid = globset::GlobSet::empty();
    let Ok(mut tree) = Rootfs::new(dir.path(), Slicing::default(), setuid, limits) else {
        return;
    };
    let base = tree.push_layer();
    let _ = tree.add_image_layer(base, "fuzz base", data);
    let layer = tree.push_layer();
    if tree.add_package(layer, "fuzz", &[], data).is_ok() {
        let entries = tree.layer_entries(layer).expect("a package's contents are staged");
        for entry in entries {
            assert!(!entry.path.starts_with('/') && !entry.path.split('/').any(|c| c == ".."));
        }
    }
});
