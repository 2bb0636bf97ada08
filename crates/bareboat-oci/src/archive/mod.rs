//! Image archives.
//!
//! `oci-archive:FILE` is a tar of an OCI layout. `docker-archive:FILE` is what `docker save`
//! writes since Docker 25, which docker, podman, skopeo and trivy all load: the OCI layout
//! plus `manifest.json` (the config and layer paths, and the repository tags) and
//! `repositories`. Both keep the image's blobs, so digests survive.
//!
//! What refers to the image (SBOMs, signatures, attestations) rides in the archive too,
//! out of sight of the tools that load it: podman and skopeo refuse an `index.json` that
//! lists more than one manifest when no tag is named. The archive's blobs hold an index of
//! its own listing the artifacts (untagged) and cosign's legacy images (under their tags,
//! by `org.opencontainers.image.ref.name`), and `index.json` names it by its digest in the
//! annotation [`ATTACHED`]; loaders ignore both.
//!
//! Archives are written deterministically (sorted entries, zero times, root-owned) into a
//! temporary file beside the destination and renamed into place, with blobs streamed from
//! any source. An archive is read in place ([`Archive`]): its members are found in
//! one pass over their headers, and each blob is read, when it is needed, by seeking to it
//! and checking it against its digest as it streams; member names are never used as paths.

mod read;
mod write;

pub use read::Archive;
pub use write::{attach, write_docker, write_oci};

/// The annotation of an archive's `index.json` that names the index of what is attached to
/// its image.
pub const ATTACHED: &str = "dev.bareboat.attached";

/// The annotation containerd and Docker give an image's full name in `index.json`.
const CONTAINERD_NAME: &str = "io.containerd.image.name";
