//! Image archives.
//!
//! `oci-archive:FILE` is a tar of an OCI layout. `docker-archive:FILE` is what `docker save`
//! writes since Docker 25, which docker, podman, skopeo and trivy all load: the OCI layout
//! plus `manifest.json` (the config and layer paths, and the repository tags) and
//! `repositories`. Both keep the image's blobs, so digests survive.
//!
//! Archives are written deterministically (sorted entries, zero times, root-owned) into a
//! temporary file beside the destination and renamed into place, with blobs streamed from
//! any source. An archive is read in place ([`Archive`]): its members are found in
//! one pass over their headers, and each blob is read, when it is needed, by seeking to it
//! and checking it against its digest as it streams; member names are never used as paths.

mod read;
mod write;

pub use read::Archive;
pub use write::{write_docker, write_oci};

/// The annotation containerd and Docker give an image's full name in `index.json`.
const CONTAINERD_NAME: &str = "io.containerd.image.name";
