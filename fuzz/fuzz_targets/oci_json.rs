//! Manifest, index and config JSON as a layout holds them: each input is stored as a blob and
//! read as a manifest and as an index, its graph walked (each digest once) and its platforms
//! picked.
#![no_main]

use bareboat_oci::layout::Layout;
use libfuzzer_sys::fuzz_target;
use oci_spec::image::MediaType;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("temp dir");
    let Ok(layout) = Layout::create(&dir.path().join("layout")) else {
        return;
    };
    for media_type in [MediaType::ImageManifest, MediaType::ImageIndex] {
        let Ok(top) = layout.put_json(media_type, data) else {
            return;
        };
        let _ = layout.blobs(&top);
        let _ = layout.platform_manifest(&top, "amd64");
        let _ = layout.read_described(&top);
    }
});
