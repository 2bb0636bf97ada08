//! OCI 1.1 referrers: artifacts, such as an image's SBOMs, that point at an image through
//! their manifest's `subject`.
//!
//! An artifact is a manifest with an `artifactType`, the empty config `{}`, and its content
//! as the one layer. A layout lists its artifacts in `index.json` without a tag; a registry
//! lists them through the referrers API or, where it has none (docker-registry 2.8), in an
//! index under the tag `sha256-<hex of the subject>` (see [`crate::registry`]).

use std::collections::HashMap;

use oci_spec::image::{Descriptor, ImageManifest, ImageManifestBuilder, MediaType};

use crate::Error;
use crate::image::canonical_json;
use crate::layout::Layout;
use crate::media::Kind;
use crate::source::BlobSource;

/// The config of an artifact that needs none.
const EMPTY_CONFIG: &[u8] = b"{}";

/// The annotation that dates an artifact.
const CREATED: &str = "org.opencontainers.image.created";

/// Writes an artifact of `artifact_type` holding `content` into `layout`, referring to
/// `subject`, and lists it in the layout's `index.json`. Returns its descriptor as a
/// referrers index lists it: with its artifact type and annotations.
pub fn write_artifact(
    layout: &Layout,
    subject: &Descriptor,
    artifact_type: &str,
    content: &[u8],
    created: &str,
) -> Result<Descriptor, Error> {
    let config = layout.put_json(MediaType::EmptyJSON, EMPTY_CONFIG)?;
    let layer = layout.put_json(MediaType::Other(artifact_type.to_string()), content)?;
    let annotations = HashMap::from([(CREATED.to_string(), created.to_string())]);
    let mut subject = subject.clone();
    subject.set_platform(None);
    subject.set_annotations(None);
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .artifact_type(MediaType::Other(artifact_type.to_string()))
        .config(config)
        .layers(vec![layer])
        .subject(subject)
        .annotations(annotations.clone())
        .build()?;
    let mut d = layout.put_json(MediaType::ImageManifest, &canonical_json(&manifest)?)?;
    d.set_artifact_type(Some(MediaType::Other(artifact_type.to_string())));
    d.set_annotations(Some(annotations));
    layout.add_untagged(&d)?;
    Ok(d)
}

/// The digest of the manifest that the manifest `d` in `source` refers to, if any.
pub fn subject_of(source: &dyn BlobSource, d: &Descriptor) -> Result<Option<String>, Error> {
    if Kind::of(d.media_type().as_ref()) != Kind::Manifest {
        return Ok(None);
    }
    let manifest: ImageManifest =
        serde_json::from_slice(&source.read_described(d)?).map_err(|error| Error::BadDocument {
            what: format!("manifest {}", d.digest()),
            error,
        })?;
    Ok(manifest.subject().as_ref().map(|s| s.digest().to_string()))
}

/// The artifacts `source` lists that refer to the image (or index) `top` or to one of its
/// platform manifests, each with the digest it refers to.
pub fn of_image(
    source: &dyn BlobSource,
    top: &Descriptor,
) -> Result<Vec<(String, Descriptor)>, Error> {
    let subjects: Vec<String> = subjects(source, top)?
        .iter()
        .map(|d| d.digest().to_string())
        .collect();
    let mut out = Vec::new();
    for artifact in source.artifacts()? {
        if let Some(subject) = subject_of(source, &artifact)?.filter(|s| subjects.contains(s)) {
            out.push((subject, artifact));
        }
    }
    Ok(out)
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
    let manifest: ImageManifest = serde_json::from_slice(&source.read_described(artifact)?)
        .map_err(|error| Error::BadDocument {
            what: format!("artifact {}", artifact.digest()),
            error,
        })?;
    let [layer] = manifest.layers().as_slice() else {
        return Err(Error::ArtifactLayers {
            digest: artifact.digest().to_string(),
            layers: manifest.layers().len(),
        });
    };
    source.read_described(layer)
}

/// The newest of `referrers` (by its `created` annotation) of `artifact_type`: the SBOM a
/// build attached last, say.
pub fn newest(referrers: &[Descriptor], artifact_type: &str) -> Option<Descriptor> {
    referrers
        .iter()
        .filter(|d| {
            d.artifact_type()
                .as_ref()
                .is_some_and(|t| t.to_string() == artifact_type)
        })
        .max_by_key(|d| {
            let created = d.annotations().as_ref().and_then(|a| a.get(CREATED));
            created.cloned().unwrap_or_default()
        })
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let a =
            write_artifact(&layout, &image, "application/spdx+json", b"{\"a\":1}", "t").unwrap();
        write_artifact(&layout, &other, "application/spdx+json", b"{}", "t").unwrap();
        layout.tag(&image, &["latest".into()]).unwrap();
        let found: Vec<Descriptor> = of_image(&layout, &image)
            .unwrap()
            .into_iter()
            .map(|(subject, d)| {
                assert_eq!(subject, image.digest().to_string());
                d
            })
            .collect();
        assert_eq!(found, std::slice::from_ref(&a));
        assert_eq!(
            found[0].artifact_type().as_ref().map(ToString::to_string),
            Some("application/spdx+json".to_string())
        );
        assert_eq!(content(&layout, &a).unwrap(), b"{\"a\":1}");
        // Written again, the artifact is the same and listed once.
        write_artifact(&layout, &image, "application/spdx+json", b"{\"a\":1}", "t").unwrap();
        assert_eq!(layout.untagged().unwrap().len(), 2);
    }
}
