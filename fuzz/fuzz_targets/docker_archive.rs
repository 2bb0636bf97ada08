//! An image archive as `docker save`, podman or another tool writes it: `manifest.json`,
//! `index.json`, link members, legacy layouts, opened in place and its image's blobs read.
#![no_main]

use bareboat_oci::archive::Archive;
use bareboat_oci::source::{BlobSource, reachable};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("image.tar");
    std::fs::write(&file, data).expect("write the input");
    if let Ok((archive, top)) = Archive::open(&file, None)
        && let Ok(blobs) = reachable(&archive, &top)
    {
        for blob in blobs {
            let _ = archive.verify(&blob);
        }
    }
});
