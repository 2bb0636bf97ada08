//! What a media type says a blob is, told once, from the exact names OCI and Docker give
//! their documents and layers; and the artifact types bareboat carries as referrers.

/// The artifact types of the referrers bareboat knows and carries with an image: its SBOMs,
/// cosign's signatures and attestations (a Sigstore bundle, a DSSE envelope, a legacy
/// simple-signing payload) and OpenVEX documents. Others are left behind unless asked for.
pub const KNOWN_ARTIFACTS: &[&str] = &[
    "application/spdx+json",
    "application/vnd.cyclonedx+json",
    "application/vnd.dev.sigstore.bundle.v0.3+json",
    "application/vnd.dsse.envelope.v1+json",
    "application/vnd.dev.cosign.simplesigning.v1+json",
    "application/openvex+json",
];

/// The kind of blob a media type names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An image index: OCI's, or Docker's manifest list.
    Index,
    /// An image manifest: OCI's, or Docker's schema 2.
    Manifest,
    /// An image config: OCI's or Docker's.
    Config,
    /// A layer, compressed so.
    Layer(Compression),
    /// Anything else: an artifact's config or content, say.
    Other,
}

/// How a layer is compressed: read from its media type, and chosen for the layers
/// bareboat writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    /// An uncompressed tar.
    None,
    /// Gzip, which every runtime reads; the default.
    #[default]
    Gzip,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// The OCI media type of a layer compressed so.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }
}

impl std::fmt::Display for Compression {
    /// As `--compression` names it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        })
    }
}

impl std::str::FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Compression::None),
            "gzip" => Ok(Compression::Gzip),
            "zstd" => Ok(Compression::Zstd),
            _ => Err(format!("unknown compression {s:?}: use gzip, zstd or none")),
        }
    }
}

impl Kind {
    /// The kind of blob `media_type` names.
    pub fn of(media_type: &str) -> Kind {
        match media_type {
            "application/vnd.oci.image.index.v1+json"
            | "application/vnd.docker.distribution.manifest.list.v2+json" => Kind::Index,
            "application/vnd.oci.image.manifest.v1+json"
            | "application/vnd.docker.distribution.manifest.v2+json" => Kind::Manifest,
            "application/vnd.oci.image.config.v1+json"
            | "application/vnd.docker.container.image.v1+json" => Kind::Config,
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar" => Kind::Layer(Compression::None),
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => {
                Kind::Layer(Compression::Gzip)
            }
            "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
            | "application/vnd.docker.image.rootfs.diff.tar.zstd" => Kind::Layer(Compression::Zstd),
            _ => Kind::Other,
        }
    }

    /// Whether it is a manifest or an index: a document that points at other blobs.
    pub fn is_document(self) -> bool {
        matches!(self, Kind::Index | Kind::Manifest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oci_and_docker_names_are_told_apart_exactly() {
        assert_eq!(
            Kind::of("application/vnd.docker.distribution.manifest.list.v2+json"),
            Kind::Index
        );
        assert_eq!(
            Kind::of("application/vnd.oci.image.manifest.v1+json"),
            Kind::Manifest
        );
        assert_eq!(
            Kind::of("application/vnd.docker.container.image.v1+json"),
            Kind::Config
        );
        assert_eq!(
            Kind::of("application/vnd.docker.image.rootfs.diff.tar.gzip"),
            Kind::Layer(Compression::Gzip)
        );
        assert_eq!(
            Kind::of("application/vnd.oci.image.layer.v1.tar+zstd"),
            Kind::Layer(Compression::Zstd)
        );
        // A suffix alone is not a name.
        assert_eq!(Kind::of("application/x-evil.tar+gzip"), Kind::Other);
        assert_eq!(Kind::of("application/spdx+json"), Kind::Other);
        // What bareboat writes, it reads back as the same compression.
        for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
            assert_eq!(Kind::of(c.media_type()), Kind::Layer(c));
        }
    }
}
