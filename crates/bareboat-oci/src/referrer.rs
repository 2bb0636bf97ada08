//! OCI 1.1 referrers: artifacts, such as an image's SBOMs, that point at an image through
//! their manifest's `subject`.
//!
//! An artifact is a manifest with an `artifactType`, the empty config `{}`, and its content
//! as the one layer. A layout lists its artifacts in `index.json` without a tag; a registry
//! lists them through the referrers API or, where it has none (docker-registry 2.8), in an
//! index under the tag `sha256-<hex of the subject>` (see [`crate::registry`]).
//!
//! Whatever the source, its referrers are read through [`of_image`], which checks each one
//! it follows against its listing and bounds how many, and how many bytes, it follows.

use oci_spec::image::{Descriptor, ImageManifest};
use serde::Serialize;

use crate::Error;
use crate::attach::{LEGACY_SUFFIXES, legacy_manifest, legacy_tag};
use crate::digest::Digest;
use crate::media::{KNOWN_ARTIFACTS, Kind};
use crate::source::BlobSource;

/// The annotation that dates an artifact.
pub const CREATED: &str = "org.opencontainers.image.created";

/// The most referrers of one manifest that bareboat follows. A real image has a handful:
/// an SBOM or two, a signature and some attestations per signing; 64 leaves room for many
/// signings while a listing of thousands (a referrers index of 4 MiB lists about 25,000)
/// is refused before any is fetched.
pub const MAX_REFERRERS: usize = 64;

/// The most bytes (manifests, configs and contents, as their descriptors give them) of the
/// referrers of one manifest that bareboat follows: sixteen documents at the 4 MiB cap of
/// a manifest, where real referrers (SBOMs, signatures) are far smaller.
pub const MAX_REFERRER_BYTES: u64 = 64 << 20;

/// An artifact listed as referring to one of an image's manifests.
#[derive(Clone, Debug, Serialize)]
pub struct Referrer {
    /// The digest of the manifest it is listed as referring to.
    pub subject: String,
    /// The artifact's manifest as the source lists it, with its artifact type.
    pub artifact: Descriptor,
}

/// A legacy image (cosign's signatures or attestations) under the tag `sha256-<hex>.sig`
/// (or `.att`) of one of an image's manifests.
#[derive(Clone, Debug, Serialize)]
pub struct LegacyImage {
    /// The digest of the manifest it is about.
    pub subject: String,
    /// Its tag.
    pub tag: String,
    /// Its manifest.
    pub image: Descriptor,
}

/// An image's referrers, as [`of_image`] finds them.
#[derive(Debug, Default)]
pub struct Referrers {
    /// The legacy tagged images of its manifests, when the [`Follow`] takes the types
    /// bareboat knows (or all), each checked to be one manifest within the bounds.
    pub legacy: Vec<LegacyImage>,
    /// Those followed, each checked to be an artifact manifest that names its subject and
    /// has the artifact type it is listed with.
    pub followed: Vec<Referrer>,
    /// Those not followed for their type (with [`Follow::Known`], the types bareboat does
    /// not know), so that what is left behind can be named.
    pub left_behind: Vec<Referrer>,
}

/// Which of an image's referrers to follow: to copy, push or read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Follow<'a> {
    /// None: the image alone, as a build takes its base.
    None,
    /// Those of the artifact types bareboat knows ([`KNOWN_ARTIFACTS`]).
    Known,
    /// Every artifact manifest, whatever its type.
    All,
    /// Those of one artifact type.
    Only(&'a str),
}

impl Follow<'_> {
    /// Whether the artifact a source lists as `listed` is followed. An index that refers to
    /// an image is never: nothing bareboat reads is one.
    fn follows(self, listed: &Descriptor) -> bool {
        if Kind::of(listed.media_type().as_ref()) != Kind::Manifest {
            return false;
        }
        let listed = listed.artifact_type().as_ref().map(ToString::to_string);
        match self {
            Follow::None => false,
            Follow::Known => listed.is_some_and(|t| KNOWN_ARTIFACTS.contains(&t.as_str())),
            Follow::All => true,
            Follow::Only(wanted) => listed.as_deref() == Some(wanted),
        }
    }

    /// Whether cosign's legacy tagged images are followed: with the types bareboat knows.
    fn follows_legacy(self) -> bool {
        matches!(self, Follow::Known | Follow::All)
    }

    /// The referrers it follows, as errors name them.
    fn which(self) -> String {
        match self {
            Follow::None | Follow::All => "of any type".into(),
            Follow::Known => "of the types bareboat carries".into(),
            Follow::Only(wanted) => format!("of type {wanted}"),
        }
    }
}

/// The most artifacts a layout's or archive's index may list, each read to find its
/// subject. A real one lists a few per image; a listing past this is refused before any is
/// read, so that an index of 4 MiB cannot make bareboat read thousands of documents.
pub const MAX_LISTED_ARTIFACTS: usize = 1024;

/// The distinct artifacts among `listed` (the untagged manifests of a layout's or archive's
/// index, each listing read once however often it repeats), refused past
/// [`MAX_LISTED_ARTIFACTS`].
pub fn listed(source: &dyn BlobSource, listed: Vec<Descriptor>) -> Result<Vec<Descriptor>, Error> {
    let mut seen = std::collections::HashSet::new();
    let distinct: Vec<Descriptor> = listed
        .into_iter()
        .filter(|d| seen.insert(d.digest().to_string()))
        .collect();
    if distinct.len() > MAX_LISTED_ARTIFACTS {
        return Err(Error::TooManyArtifacts {
            origin: source.name(),
            count: distinct.len(),
        });
    }
    Ok(distinct)
}

/// The artifacts among `candidates` (manifests a layout or archive holds, see [`listed`])
/// whose manifests name one of `subjects` as their subject.
pub fn naming(
    source: &dyn BlobSource,
    candidates: Vec<Descriptor>,
    subjects: &[Descriptor],
) -> Result<Vec<Referrer>, Error> {
    let mut out = Vec::new();
    for artifact in listed(source, candidates)? {
        if Kind::of(artifact.media_type().as_ref()) != Kind::Manifest {
            continue;
        }
        let named = artifact_manifest(source, &artifact)?
            .subject()
            .as_ref()
            .map(|s| s.digest().to_string());
        if let Some(subject) = named.filter(|s| subjects.iter().any(|d| d.digest().as_ref() == s)) {
            out.push(Referrer { subject, artifact });
        }
    }
    Ok(out)
}

/// The referrers `source` lists of the image (or index) `top` and its platform manifests,
/// those `follow` asks for checked. The only way bareboat reads referrers, whatever the
/// source: of each manifest, at most [`MAX_REFERRERS`] are followed, holding at most
/// [`MAX_REFERRER_BYTES`], and each must be an artifact manifest that names that manifest
/// as its subject and has the artifact type it is listed with. Past a bound, or on an
/// artifact that is not what it is listed as, nothing is followed and the error says so.
pub fn of_image(
    source: &dyn BlobSource,
    top: &Descriptor,
    follow: Follow,
) -> Result<Referrers, Error> {
    let mut found = Referrers::default();
    if follow == Follow::None {
        return Ok(found);
    }
    let subjects = subjects(source, top)?;
    let listed = source.referrers(&subjects)?;
    for subject in &subjects {
        let one = of_subject(source, subject, &listed, follow)?;
        found.followed.extend(one.followed);
        found.left_behind.extend(one.left_behind);
        found.legacy.extend(one.legacy);
    }
    Ok(found)
}

/// The referrers of the one manifest (or index) `subject`, and not of the manifests an
/// index lists, read as [`of_image`] reads them.
pub fn of_manifest(
    source: &dyn BlobSource,
    subject: &Descriptor,
    follow: Follow,
) -> Result<Referrers, Error> {
    if follow == Follow::None {
        return Ok(Referrers::default());
    }
    let listed = source.referrers(std::slice::from_ref(subject))?;
    of_subject(source, subject, &listed, follow)
}

/// Those of `listed` that refer to `subject`, checked within the bounds, with the legacy
/// images of `subject` when `follow` takes them.
fn of_subject(
    source: &dyn BlobSource,
    subject: &Descriptor,
    listed: &[Referrer],
    follow: Follow,
) -> Result<Referrers, Error> {
    let subject = subject.digest().to_string();
    let (followed, left_behind): (Vec<&Referrer>, Vec<&Referrer>) = listed
        .iter()
        .filter(|r| r.subject == subject)
        .partition(|r| follow.follows(&r.artifact));
    if followed.len() > MAX_REFERRERS {
        return Err(Error::TooManyReferrers {
            image: source.name(),
            subject,
            count: followed.len(),
            which: follow.which(),
        });
    }
    let mut bytes = 0u64;
    let mut charge = |add: u64| {
        bytes = bytes.saturating_add(add);
        if bytes <= MAX_REFERRER_BYTES {
            return Ok(());
        }
        Err(Error::ReferrersTooLarge {
            image: source.name(),
            subject: subject.clone(),
            which: follow.which(),
        })
    };
    for r in &followed {
        // A manifest counts before it is fetched, and what it points at before that
        // is: no more than one document is read past the bound.
        charge(r.artifact.size())?;
        charge(checked(source, r)?)?;
    }
    let legacy = match follow.follows_legacy() {
        true => legacy_images(source, &subject)?,
        false => Vec::new(),
    };
    Ok(Referrers {
        followed: followed.into_iter().cloned().collect(),
        left_behind: left_behind.into_iter().cloned().collect(),
        legacy,
    })
}

/// The legacy images tagged for `subject` in `source`, each checked by
/// [`legacy_manifest`].
fn legacy_images(source: &dyn BlobSource, subject: &str) -> Result<Vec<LegacyImage>, Error> {
    let digest = Digest::named(subject)?;
    let mut out = Vec::new();
    for suffix in LEGACY_SUFFIXES {
        let tag = legacy_tag(&digest, suffix);
        let Some(image) = source.tagged(&tag)? else {
            continue;
        };
        legacy_manifest(source, &image)?;
        out.push(LegacyImage {
            subject: subject.to_string(),
            tag,
            image,
        });
    }
    Ok(out)
}

/// Checks that the referrer `r` of `source` is what it is listed as: an artifact manifest
/// that names `r.subject` as its subject and has the artifact type it is listed with (its
/// `artifactType`, else its config's media type, as the referrers API lists it). Returns
/// the bytes its config and layers hold, as their descriptors give them.
fn checked(source: &dyn BlobSource, r: &Referrer) -> Result<u64, Error> {
    let manifest = artifact_manifest(source, &r.artifact)?;
    let not_one = |reason: String| Error::NotReferrer {
        image: source.name(),
        artifact: r.artifact.digest().to_string(),
        subject: r.subject.clone(),
        reason,
    };
    match manifest.subject().as_ref().map(|s| s.digest().to_string()) {
        Some(named) if named == r.subject => {}
        Some(named) => {
            return Err(not_one(format!(
                "its manifest names {named} as its subject"
            )));
        }
        None => return Err(not_one("its manifest names no subject".into())),
    }
    let actual = manifest
        .artifact_type()
        .as_ref()
        .unwrap_or(manifest.config().media_type());
    if let Some(listed) = r.artifact.artifact_type().as_ref().filter(|t| *t != actual) {
        return Err(not_one(format!(
            "it is listed as {listed} and its manifest says {actual}"
        )));
    }
    let blobs = std::iter::once(manifest.config()).chain(manifest.layers());
    Ok(blobs.map(Descriptor::size).fold(0, u64::saturating_add))
}

/// The manifest of the artifact `d` in `source`, read whole and checked against its digest.
fn artifact_manifest(source: &dyn BlobSource, d: &Descriptor) -> Result<ImageManifest, Error> {
    serde_json::from_slice(&source.read_described(d)?).map_err(|error| Error::BadDocument {
        what: format!("artifact {}", d.digest()),
        error,
    })
}

/// The manifests an image (or index) `top` consists of: itself, and for an index each
/// platform's manifest, each once however often the index lists it. Referrers point at
/// any of them.
pub fn subjects(source: &dyn BlobSource, top: &Descriptor) -> Result<Vec<Descriptor>, Error> {
    let mut out = vec![top.clone()];
    if Kind::of(top.media_type().as_ref()) == Kind::Index {
        let index = crate::model::Index::open(source, top)?;
        let mut seen = std::collections::HashSet::from([top.digest().to_string()]);
        for m in index.manifests() {
            if seen.insert(m.digest().to_string()) {
                out.push(m.clone());
            }
        }
    }
    Ok(out)
}

/// The content of an artifact in `source`: its one layer, checked against its digest.
pub fn content(source: &dyn BlobSource, artifact: &Descriptor) -> Result<Vec<u8>, Error> {
    let manifest = artifact_manifest(source, artifact)?;
    let [layer] = manifest.layers().as_slice() else {
        return Err(Error::ArtifactLayers {
            digest: artifact.digest().to_string(),
            layers: manifest.layers().len(),
        });
    };
    source.read_described(layer)
}

/// The newest of `referrers` by its `created` annotation: the SBOM a build attached last,
/// say.
pub fn newest(referrers: &[Referrer]) -> Option<&Descriptor> {
    let created = |d: &&Descriptor| {
        let created = d.annotations().as_ref().and_then(|a| a.get(CREATED));
        created.cloned().unwrap_or_default()
    };
    referrers.iter().map(|r| &r.artifact).max_by_key(created)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attach::{Artifact, Attachment};
    use crate::layout::Layout;
    use oci_spec::image::MediaType;

    /// Attaches an artifact of `artifact_type` holding `content` to `subject` in `layout`,
    /// and returns its descriptor as the layout lists it.
    fn write_artifact(
        layout: &Layout,
        subject: &Descriptor,
        artifact_type: &str,
        content: &[u8],
    ) -> Descriptor {
        let artifact = Artifact {
            subject: subject.clone(),
            artifact_type: artifact_type.into(),
            content: content.to_vec(),
            annotations: [(CREATED.to_string(), "t".to_string())].into(),
        };
        layout
            .attach(&[Attachment::Referrer(Box::new(artifact))])
            .unwrap();
        let listed = layout.untagged().unwrap();
        let found = listed.iter().rev().find(|d| {
            d.artifact_type()
                .as_ref()
                .map(ToString::to_string)
                .as_deref()
                == Some(artifact_type)
        });
        found.unwrap().clone()
    }

    #[test]
    fn artifacts_are_listed_and_found_by_subject() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let image = layout
            .put_json(MediaType::ImageManifest, br#"{"schemaVersion":2}"#)
            .unwrap();
        let other = layout
            .put_json(MediaType::ImageManifest, br#"{"schemaVersion":2,"x":1}"#)
            .unwrap();
        let a = write_artifact(&layout, &image, "application/spdx+json", b"{\"a\":1}");
        write_artifact(&layout, &other, "application/spdx+json", b"{}");
        layout.tag(&image, &["latest".into()]).unwrap();
        let found: Vec<Descriptor> = of_image(&layout, &image, Follow::Known)
            .unwrap()
            .followed
            .into_iter()
            .map(|r| {
                assert_eq!(r.subject, image.digest().to_string());
                r.artifact
            })
            .collect();
        assert_eq!(found, std::slice::from_ref(&a));
        assert_eq!(
            found[0].artifact_type().as_ref().map(ToString::to_string),
            Some("application/spdx+json".to_string())
        );
        assert_eq!(content(&layout, &a).unwrap(), b"{\"a\":1}");
        // Written again, the artifact is the same and listed once.
        write_artifact(&layout, &image, "application/spdx+json", b"{\"a\":1}");
        assert_eq!(layout.untagged().unwrap().len(), 2);
    }

    #[test]
    fn only_the_types_asked_for_are_followed_and_each_must_be_as_listed() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let image = layout
            .put_json(MediaType::ImageManifest, br#"{"schemaVersion":2}"#)
            .unwrap();
        let sbom = write_artifact(&layout, &image, "application/spdx+json", b"{}");
        let other = write_artifact(&layout, &image, "application/x-other", b"{}");
        let digests = |rs: &[Referrer]| -> Vec<String> {
            rs.iter().map(|r| r.artifact.digest().to_string()).collect()
        };
        let known = of_image(&layout, &image, Follow::Known).unwrap();
        assert_eq!(digests(&known.followed), [sbom.digest().to_string()]);
        assert_eq!(digests(&known.left_behind), [other.digest().to_string()]);
        let all = of_image(&layout, &image, Follow::All).unwrap();
        assert_eq!(all.followed.len(), 2);
        assert!(all.left_behind.is_empty());

        // Listed as an SBOM, the other artifact is refused for what its manifest says.
        let path = dir.path().join("index.json");
        let mut index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        for m in index["manifests"].as_array_mut().unwrap() {
            if m["artifactType"] == "application/x-other" {
                m["artifactType"] = "application/spdx+json".into();
            }
        }
        std::fs::write(&path, index.to_string()).unwrap();
        let err = of_image(&layout, &image, Follow::Known).unwrap_err();
        assert!(
            err.to_string().contains(
                "is listed as application/spdx+json and its manifest says application/x-other"
            ),
            "{err}"
        );
    }
}
