//! What is attached to an image after it is written (signatures, attestations, SBOMs), in
//! the two schemes registries hold them:
//!
//! - an OCI 1.1 referrer ([`Artifact`]): a manifest with an `artifactType`, the empty config,
//!   its content as the one layer, and `subject` naming the image; listed by the referrers
//!   API, else under the tag `sha256-<hex>`, and by a layout or archive without a tag;
//! - a layer of cosign's legacy image ([`TaggedLayer`]) under the tag `sha256-<hex>.sig`
//!   (or `.att`), one layer per signature, the image rewritten with each signing.
//!
//! Every sink attaches both ([`crate::sink::Sink::attach`]), as containers/image's
//! `PutSignatures` does: what is already there (the same artifact, a layer of the same
//! bytes and annotations) is not written again. The documents are made here once, into a
//! [`Staged`] source, and each sink writes them as it writes any image.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read};

use oci_spec::image::{Descriptor, ImageManifest, ImageManifestBuilder, MediaType};

use crate::Error;
use crate::digest::Digest;
use crate::image::canonical_json;
use crate::layout::MAX_DOCUMENT;
use crate::media::Kind;
use crate::referrer::{MAX_REFERRER_BYTES, MAX_REFERRERS};
use crate::source::BlobSource;

/// The suffixes of cosign's legacy tags: signatures, attestations.
pub const LEGACY_SUFFIXES: &[&str] = &["sig", "att"];

/// The config of an artifact that needs none.
const EMPTY_CONFIG: &[u8] = b"{}";

/// The tag of the legacy image of `subject` with `suffix` (`sig`, `att`).
pub fn legacy_tag(subject: &Digest, suffix: &str) -> String {
    format!("sha256-{}.{suffix}", subject.hex())
}

/// Something to attach to an image.
#[derive(Clone, Debug)]
pub enum Attachment {
    /// An OCI 1.1 referrer.
    Referrer(Box<Artifact>),
    /// A layer of a legacy tagged image.
    Tagged(TaggedLayer),
}

impl Attachment {
    /// The manifest (or index) it is attached to.
    pub fn subject(&self) -> Result<Digest, Error> {
        match self {
            Attachment::Referrer(a) => Digest::named(a.subject.digest().as_ref()),
            Attachment::Tagged(t) => Ok(t.subject.clone()),
        }
    }
}

/// Checks, before anything is written, that `place` holds the subject of each of
/// `attachments`, as `holds` tells.
pub(crate) fn check_subjects(
    attachments: &[Attachment],
    place: &str,
    holds: impl Fn(&Digest) -> Result<bool, Error>,
) -> Result<(), Error> {
    for attachment in attachments {
        let subject = attachment.subject()?;
        if !holds(&subject)? {
            return Err(Error::Image {
                what: place.to_string(),
                reason: format!(
                    "it does not hold {subject}, so nothing can be attached to it\n  hint: write the image there first"
                ),
            });
        }
    }
    Ok(())
}

/// An OCI 1.1 artifact that refers to an image.
#[derive(Clone, Debug)]
pub struct Artifact {
    /// The manifest (or index) it refers to.
    pub subject: Descriptor,
    /// Its artifact type, which is also its one layer's media type.
    pub artifact_type: String,
    /// Its content.
    pub content: Vec<u8>,
    /// The annotations of its manifest, which a referrers listing repeats.
    pub annotations: BTreeMap<String, String>,
}

/// One layer of the legacy image under the tag `sha256-<hex of subject>.<suffix>`.
#[derive(Clone, Debug)]
pub struct TaggedLayer {
    /// The manifest (or index) it is about.
    pub subject: Digest,
    /// `sig` or `att`.
    pub suffix: &'static str,
    /// The layer.
    pub layer: LegacyLayer,
}

impl TaggedLayer {
    /// The tag it goes under.
    pub fn tag(&self) -> String {
        legacy_tag(&self.subject, self.suffix)
    }
}

/// A layer of a legacy image: its media type, bytes and annotations (a signature's is in
/// its annotation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegacyLayer {
    /// Its media type.
    pub media_type: String,
    /// Its bytes.
    pub content: Vec<u8>,
    /// Its annotations.
    pub annotations: BTreeMap<String, String>,
}

impl LegacyLayer {
    /// Whether the layer `d` lists is this one: the same bytes, and this one's annotations
    /// among its own (cosign may add others, such as a certificate).
    pub(crate) fn is(&self, d: &Descriptor) -> bool {
        let theirs = d.annotations().clone().unwrap_or_default();
        d.digest().as_ref() == Digest::of(&self.content).to_string()
            && (self.annotations.iter()).all(|(k, v)| theirs.get(k) == Some(v))
    }

    fn descriptor(&self) -> Result<Descriptor, Error> {
        let mut d = describe(MediaType::Other(self.media_type.clone()), &self.content)?;
        if !self.annotations.is_empty() {
            d.set_annotations(Some(self.annotations.clone().into_iter().collect()));
        }
        Ok(d)
    }
}

/// What attaching one attachment did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It was written.
    Written,
    /// It was there already, and nothing was written.
    Present,
}

/// Documents and small blobs held in memory, to be written by a sink; blobs they point at
/// that are not held are read from `under` (the image a legacy tag held before, say).
pub struct Staged<'a> {
    blobs: HashMap<String, Vec<u8>>,
    under: Option<&'a dyn BlobSource>,
}

impl<'a> Staged<'a> {
    /// Nothing staged yet, over `under`.
    pub fn over(under: Option<&'a dyn BlobSource>) -> Staged<'a> {
        Staged {
            blobs: HashMap::new(),
            under,
        }
    }

    /// Holds `bytes`, of `media_type`, and returns their descriptor.
    pub fn put(&mut self, media_type: MediaType, bytes: Vec<u8>) -> Result<Descriptor, Error> {
        let d = describe(media_type, &bytes)?;
        self.blobs.insert(d.digest().to_string(), bytes);
        Ok(d)
    }

    /// Stages `artifact` and returns its manifest's descriptor as a listing gives it: with
    /// its artifact type and annotations.
    pub fn artifact(&mut self, artifact: &Artifact) -> Result<Descriptor, Error> {
        let kind = MediaType::Other(artifact.artifact_type.clone());
        let config = self.put(MediaType::EmptyJSON, EMPTY_CONFIG.to_vec())?;
        let layer = self.put(kind.clone(), artifact.content.clone())?;
        let mut subject = artifact.subject.clone();
        subject.set_platform(None);
        subject.set_annotations(None);
        subject.set_artifact_type(None);
        let annotations: HashMap<String, String> =
            artifact.annotations.clone().into_iter().collect();
        let mut builder = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .artifact_type(kind.clone())
            .config(config)
            .layers(vec![layer])
            .subject(subject);
        if !annotations.is_empty() {
            builder = builder.annotations(annotations.clone());
        }
        let manifest = canonical_json(&builder.build()?)?;
        let mut d = self.put(MediaType::ImageManifest, manifest)?;
        d.set_artifact_type(Some(kind));
        if !annotations.is_empty() {
            d.set_annotations(Some(annotations));
        }
        Ok(d)
    }

    /// Stages an artifact that refers to no image: `content` (of `media_type`) as its first
    /// layer, then the blobs `listed` (held by `under`), which a registry keeps as long as
    /// the artifact is there. Returns its manifest's descriptor.
    pub fn listing(
        &mut self,
        artifact_type: &str,
        media_type: &str,
        content: Vec<u8>,
        listed: Vec<Descriptor>,
    ) -> Result<Descriptor, Error> {
        let config = self.put(MediaType::EmptyJSON, EMPTY_CONFIG.to_vec())?;
        let first = self.put(MediaType::Other(media_type.to_string()), content)?;
        let kind = MediaType::Other(artifact_type.to_string());
        let manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .artifact_type(kind.clone())
            .config(config)
            .layers(std::iter::once(first).chain(listed).collect::<Vec<_>>())
            .build()?;
        let mut d = self.put(MediaType::ImageManifest, canonical_json(&manifest)?)?;
        d.set_artifact_type(Some(kind));
        Ok(d)
    }

    /// Stages the legacy image that holds the layers of `existing` (staged already, or
    /// read from `under`), if any, then each of `layers` it lacks; `None` when it lacks
    /// none, and nothing need be written.
    pub fn legacy(
        &mut self,
        existing: Option<&Descriptor>,
        layers: &[LegacyLayer],
    ) -> Result<Option<Descriptor>, Error> {
        let mut listed = match existing {
            Some(d) => legacy_manifest(self, d)?.layers().clone(),
            None => Vec::new(),
        };
        let mut added = false;
        for layer in layers {
            if !listed.iter().any(|d| layer.is(d)) {
                let d = layer.descriptor()?;
                self.blobs
                    .insert(d.digest().to_string(), layer.content.clone());
                listed.push(d);
                added = true;
            }
        }
        if !added {
            return Ok(None);
        }
        // As go-containerregistry writes an image of appended layers, which cosign reads:
        // each layer's diff_id is its digest, with a history entry each.
        let zero = "0001-01-01T00:00:00Z";
        let config = serde_json::json!({
            "architecture": "",
            "config": {},
            "created": zero,
            "history": listed.iter().map(|_| serde_json::json!({"created": zero})).collect::<Vec<_>>(),
            "os": "",
            "rootfs": {
                "type": "layers",
                "diff_ids": listed.iter().map(|d| d.digest().to_string()).collect::<Vec<_>>(),
            },
        });
        let config = self.put(MediaType::ImageConfig, canonical_json(&config)?)?;
        let manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(config)
            .layers(listed)
            .build()?;
        let manifest = canonical_json(&manifest)?;
        Ok(Some(self.put(MediaType::ImageManifest, manifest)?))
    }
}

impl BlobSource for Staged<'_> {
    fn name(&self) -> String {
        match self.under {
            Some(under) => under.name(),
            None => "what bareboat attaches".into(),
        }
    }

    fn stored(&self, d: &Descriptor) -> Result<Box<dyn Read + Send>, Error> {
        match (self.blobs.get(d.digest().as_ref()), self.under) {
            (Some(bytes), _) => Ok(Box::new(io::Cursor::new(bytes.clone()))),
            (None, Some(under)) => under.stored(d),
            (None, None) => Err(Error::Blob {
                digest: d.digest().to_string(),
                reason: "it is not among the blobs being attached".into(),
            }),
        }
    }

    fn check_present(&self, d: &Descriptor) -> Result<(), Error> {
        match (self.blobs.contains_key(d.digest().as_ref()), self.under) {
            (true, _) => Ok(()),
            (false, Some(under)) => under.check_present(d),
            (false, None) => self.stored(d).map(drop),
        }
    }

    fn origin(&self, d: &Descriptor) -> Option<crate::reference::DockerName> {
        match self.blobs.contains_key(d.digest().as_ref()) {
            true => None,
            false => self.under?.origin(d),
        }
    }

    fn concurrency(&self) -> usize {
        self.under.map_or(1, |u| u.concurrency())
    }
}

/// The manifest of the legacy image `d` in `source`: one manifest (not an index) of at most
/// [`MAX_REFERRERS`] layers (a signing each) holding at most [`MAX_REFERRER_BYTES`], each
/// small enough to be a document.
pub fn legacy_manifest(source: &dyn BlobSource, d: &Descriptor) -> Result<ImageManifest, Error> {
    let not_one = |reason: String| Error::Image {
        what: format!("legacy signature image {} in {}", d.digest(), source.name()),
        reason,
    };
    if Kind::of(d.media_type().as_ref()) != Kind::Manifest {
        return Err(not_one(format!(
            "it is a {}, not a manifest",
            d.media_type()
        )));
    }
    let manifest: ImageManifest =
        serde_json::from_slice(&source.read_described(d)?).map_err(|error| Error::BadDocument {
            what: format!("legacy signature image {}", d.digest()),
            error,
        })?;
    if manifest.layers().len() > MAX_REFERRERS {
        return Err(not_one(format!(
            "it has {} layers; bareboat reads at most {MAX_REFERRERS}, one a signing",
            manifest.layers().len()
        )));
    }
    let blobs = std::iter::once(manifest.config()).chain(manifest.layers());
    if blobs.map(Descriptor::size).fold(0, u64::saturating_add) > MAX_REFERRER_BYTES {
        return Err(not_one(format!(
            "its layers hold more than {} MiB, the most bareboat reads",
            MAX_REFERRER_BYTES >> 20
        )));
    }
    if let Some(big) = manifest.layers().iter().find(|l| l.size() > MAX_DOCUMENT) {
        return Err(not_one(format!(
            "its layer {} is {} bytes; a signature or attestation layer may have at most {MAX_DOCUMENT}",
            big.digest(),
            big.size()
        )));
    }
    Ok(manifest)
}

/// The layers of the legacy image `d` in `source`, each read whole and checked.
pub fn legacy_layers(source: &dyn BlobSource, d: &Descriptor) -> Result<Vec<LegacyLayer>, Error> {
    legacy_manifest(source, d)?
        .layers()
        .iter()
        .map(|l| {
            Ok(LegacyLayer {
                media_type: l.media_type().to_string(),
                content: source.read_described(l)?,
                annotations: l
                    .annotations()
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .collect(),
            })
        })
        .collect()
}

/// The descriptor of `bytes` of `media_type`.
fn describe(media_type: MediaType, bytes: &[u8]) -> Result<Descriptor, Error> {
    Ok(Descriptor::new(
        media_type,
        bytes.len() as u64,
        oci_spec::image::Digest::try_from(Digest::of(bytes).to_string())?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(signature: &str) -> LegacyLayer {
        LegacyLayer {
            media_type: "application/vnd.dev.cosign.simplesigning.v1+json".into(),
            content: b"{\"payload\":1}".to_vec(),
            annotations: BTreeMap::from([(
                "dev.cosignproject.cosign/signature".to_string(),
                signature.to_string(),
            )]),
        }
    }

    #[test]
    fn a_legacy_image_gains_only_the_layers_it_lacks() {
        let mut first = Staged::over(None);
        let one = first.legacy(None, &[layer("a")]).unwrap().unwrap();
        let manifest = legacy_manifest(&first, &one).unwrap();
        assert_eq!(manifest.layers().len(), 1);
        // The same layer again adds nothing; another signature of the same payload does.
        let mut again = Staged::over(Some(&first));
        assert!(again.legacy(Some(&one), &[layer("a")]).unwrap().is_none());
        let two = again
            .legacy(Some(&one), &[layer("a"), layer("b")])
            .unwrap()
            .unwrap();
        let layers = legacy_layers(&again, &two).unwrap();
        assert_eq!(layers, [layer("a"), layer("b")]);
        let config: serde_json::Value = serde_json::from_slice(
            &again
                .read_described(legacy_manifest(&again, &two).unwrap().config())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
    }
}
