//! Manifest, index and config JSON as a layout holds them: each input is stored as a blob and
//! read as a manifest and as an index, its graph walked (each digest once) and its platforms
//! picked.
#![no_main]

use bareboat_oci::layout::Layout;
use bareboat_oci::model::{Image, Index};
use bareboat_oci::source::{BlobSource, reachable};
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
        let _ = reachable(&layout, &top);
        let _ = Index::pick(&layout, &top, "amd64");
        let _ = Image::open(&layout, &top, "amd64");
        let _ = layout.read_described(&top);
    }
});
