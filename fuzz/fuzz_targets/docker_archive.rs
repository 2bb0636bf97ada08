//! An image archive as `docker save`, podman or another tool writes it: `manifest.json`,
//! `index.json`, link members, legacy layouts, read into a layout.
#![no_main]

use bareboat_oci::layout::Layout;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("image.tar");
    std::fs::write(&file, data).expect("write the input");
    let Ok(layout) = Layout::create(&dir.path().join("layout")) else {
        return;
    };
    if let Ok(top) = bareboat_oci::archive::read(&file, &layout, None) {
        let _ = layout.blobs(&top);
    }
});
