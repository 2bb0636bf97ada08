//! Writing archives: deterministic (sorted entries, zero times, root-owned), into a
//! temporary file beside the destination renamed into place, with blobs streamed from any
//! source and checked as they go.

use std::collections::BTreeMap;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use oci_spec::image::{Descriptor, ImageManifest};
use serde_json::json;

use crate::Error;
use crate::attach::{Attachment, Outcome, Staged, check_subjects};
use crate::blob::Blob;
use crate::digest::Digest;
use crate::image::canonical_json;
use crate::layout::{REF_NAME, annotated, tag_of};
use crate::media::Kind;
use crate::reference::DockerName;
use crate::referrer::Referrers;
use crate::source::{BlobSource, reachable};

use super::{ATTACHED, Archive, CONTAINERD_NAME};

/// Writes the image (or index) `top`, tagged `tag`, as an OCI archive at `file`, with the
/// `referrers` of it that were followed.
pub fn write_oci(
    source: &dyn BlobSource,
    top: &Descriptor,
    tag: &str,
    referrers: &Referrers,
    file: &Path,
) -> Result<(), Error> {
    let contents = Contents {
        entries: vec![annotated(top, REF_NAME, tag)],
        annotations: BTreeMap::new(),
        attached: attached(referrers),
        extra: BTreeMap::new(),
    };
    write_archive(source, contents, file)
}

/// What an archive holds besides its blobs: the entries of `index.json` and its
/// annotations, what is attached to them, and the other files at its top (a docker
/// archive's `manifest.json`).
pub(super) struct Contents {
    pub(super) entries: Vec<Descriptor>,
    pub(super) annotations: BTreeMap<String, String>,
    pub(super) attached: Vec<Descriptor>,
    pub(super) extra: BTreeMap<String, Vec<u8>>,
}

impl Contents {
    /// Whether `d` is listed, in `index.json` or among what is attached.
    fn lists(&self, d: &Descriptor) -> bool {
        (self.entries.iter().chain(&self.attached)).any(|e| e.digest() == d.digest())
    }
}

/// The entries of an archive's index of attached things for `referrers`: artifacts
/// untagged, legacy images under their tags.
fn attached(referrers: &Referrers) -> Vec<Descriptor> {
    let artifacts = referrers.followed.iter().map(|r| r.artifact.clone());
    let legacy = (referrers.legacy.iter()).map(|l| annotated(&l.image, REF_NAME, &l.tag));
    artifacts.chain(legacy).collect()
}

/// Attaches each of `attachments` to the image it names in the archive at `file` (the one
/// tagged `tag`, or its only one), rewriting the archive beside itself unless all were there
/// already. Its `index.json` and other files are kept as they were. The archive is locked
/// meanwhile, so that two attaching at once each keep the other's.
pub fn attach(
    file: &Path,
    tag: Option<&str>,
    attachments: &[Attachment],
) -> Result<Vec<Outcome>, Error> {
    let _lock = lock(file)?;
    let (archive, _) = Archive::open(file, tag)?;
    check_subjects(attachments, &archive.name(), |d| Ok(archive.holds(d)))?;
    let mut contents = archive.contents()?;
    let mut staged = Staged::over(Some(&archive));
    let mut outcomes = Vec::new();
    for attachment in attachments {
        let outcome = match attachment {
            Attachment::Referrer(artifact) => {
                let d = staged.artifact(artifact)?;
                if contents.lists(&d) {
                    Outcome::Present
                } else {
                    contents.attached.push(d);
                    Outcome::Written
                }
            }
            Attachment::Tagged(t) => {
                let tag = t.tag();
                let held = contents
                    .attached
                    .iter()
                    .position(|d| tag_of(d) == Some(&tag));
                let before = held.map(|i| contents.attached[i].clone());
                match staged.legacy(before.as_ref(), std::slice::from_ref(&t.layer))? {
                    None => Outcome::Present,
                    Some(d) => {
                        if let Some(i) = held {
                            contents.attached.remove(i);
                        }
                        contents.attached.push(annotated(&d, REF_NAME, &tag));
                        Outcome::Written
                    }
                }
            }
        };
        outcomes.push(outcome);
    }
    if outcomes.contains(&Outcome::Written) {
        write_archive(&staged, contents, file)?;
    }
    Ok(outcomes)
}

/// The archive `file` opened and locked: the one at its path once the lock is had, since
/// another writer renames a new archive over the one it locked.
fn lock(file: &Path) -> Result<std::fs::File, Error> {
    use std::os::unix::fs::MetadataExt;
    loop {
        let locked = crate::blob::open_regular(file).map_err(|e| Error::io(file, e))?;
        locked.lock().map_err(|e| Error::io(file, e))?;
        let held = locked.metadata().map_err(|e| Error::io(file, e))?;
        let now = std::fs::symlink_metadata(file).map_err(|e| Error::io(file, e))?;
        if (held.dev(), held.ino()) == (now.dev(), now.ino()) {
            return Ok(locked);
        }
    }
}

/// Writes the single-platform image `manifest` as a docker archive at `file`, named `name`
/// (a normalised `REPOSITORY:TAG`) when given.
pub fn write_docker(
    source: &dyn BlobSource,
    manifest: &Descriptor,
    name: Option<&DockerName>,
    referrers: &Referrers,
    file: &Path,
) -> Result<(), Error> {
    if Kind::of(manifest.media_type().as_ref()) != Kind::Manifest {
        return Err(Error::SeveralPlatforms {
            index: manifest.digest().to_string(),
        });
    }
    let doc: ImageManifest =
        serde_json::from_slice(&source.read_described(manifest)?).map_err(|error| {
            Error::BadDocument {
                what: format!("manifest {}", manifest.digest()),
                error,
            }
        })?;
    let blob = |d: &Descriptor| format!("blobs/sha256/{}", d.digest().digest());
    let mut entry = manifest.clone();
    let mut extra = BTreeMap::new();
    let mut docker_manifest = json!({
        "Config": blob(doc.config()),
        "RepoTags": [],
        "Layers": doc.layers().iter().map(blob).collect::<Vec<_>>(),
    });
    if let Some(name) = name {
        entry = annotated(
            &annotated(&entry, CONTAINERD_NAME, &name.full()),
            REF_NAME,
            &name.tag,
        );
        docker_manifest["RepoTags"] = json!([name.familiar()]);
        let top_layer = doc.layers().last().map(|l| l.digest().digest().to_string());
        let repositories = json!({ name.familiar_repository(): { &name.tag: top_layer } });
        extra.insert("repositories".to_string(), canonical_json(&repositories)?);
    }
    extra.insert(
        "manifest.json".to_string(),
        canonical_json(&json!([docker_manifest]))?,
    );
    let contents = Contents {
        entries: vec![entry],
        annotations: BTreeMap::new(),
        attached: attached(referrers),
        extra,
    };
    write_archive(source, contents, file)
}

/// The blobs of `source` the index entries and attached things reach, the index of those
/// attached, and the entries and extra files of an archive, tarred into `file`.
fn write_archive(source: &dyn BlobSource, contents: Contents, file: &Path) -> Result<(), Error> {
    let Contents {
        entries,
        mut annotations,
        attached,
        mut extra,
    } = contents;
    let mut index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries,
    });
    let mut own = BTreeMap::new();
    if !attached.is_empty() {
        let listing = canonical_json(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": attached,
        }))?;
        let digest = Digest::of(&listing);
        annotations.insert(ATTACHED.to_string(), digest.to_string());
        own.insert(digest.hex().to_string(), listing);
    }
    if !annotations.is_empty() {
        index["annotations"] = json!(annotations);
    }
    extra.insert("index.json".to_string(), canonical_json(&index)?);
    extra.insert(
        "oci-layout".to_string(),
        br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
    );
    let dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-archive-")
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    let io_err = |e| Error::io(file, e);
    let mut tar = tar::Builder::new(BufWriter::new(tmp.as_file()));
    let mut blobs = BTreeMap::new();
    for entry in entries.iter().chain(&attached) {
        for blob in reachable(source, entry)? {
            blobs.insert(blob.descriptor.digest().digest().to_string(), blob);
        }
    }
    let mut names: Vec<(String, Member)> = extra
        .into_iter()
        .map(|(name, bytes)| (name, Member::Bytes(bytes)))
        .collect();
    names.push(("blobs/".into(), Member::Dir));
    names.push(("blobs/sha256/".into(), Member::Dir));
    for (hex, blob) in blobs {
        names.push((format!("blobs/sha256/{hex}"), Member::Blob(Box::new(blob))));
    }
    for (hex, bytes) in own {
        names.push((format!("blobs/sha256/{hex}"), Member::Bytes(bytes)));
    }
    names.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, member) in names {
        let mut header = tar::Header::new_ustar();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        match member {
            Member::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                tar.append_data(&mut header, &name, io::empty())
                    .map_err(io_err)?;
            }
            Member::Bytes(bytes) => {
                header.set_mode(0o644);
                header.set_size(bytes.len() as u64);
                tar.append_data(&mut header, &name, &bytes[..])
                    .map_err(io_err)?;
            }
            Member::Blob(blob) => {
                // Checked as it streams: a blob that fails leaves no archive behind.
                let content = source.open_blob(&blob)?;
                header.set_mode(0o644);
                header.set_size(blob.descriptor.size());
                tar.append_data(&mut header, &name, content)
                    .map_err(|e| Error::from_stream(file, e))?;
            }
        }
    }
    tar.into_inner()
        .and_then(|mut w| w.flush())
        .map_err(io_err)?;
    // Readable like any other file written here (a temporary file starts private).
    let readable = std::os::unix::fs::PermissionsExt::from_mode(0o644);
    tmp.as_file().set_permissions(readable).map_err(io_err)?;
    tmp.as_file().sync_data().map_err(io_err)?;
    tmp.persist(file).map_err(|e| Error::io(file, e.error))?;
    Ok(())
}

enum Member {
    Dir,
    Bytes(Vec<u8>),
    Blob(Box<Blob>),
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use oci_spec::image::MediaType;

    use super::*;
    use crate::attach::{Artifact, LegacyLayer, TaggedLayer};
    use crate::layout::Layout;

    /// A layout holding one image of one plain tar layer; returns its manifest.
    fn image(layout: &Layout) -> Descriptor {
        let tar = b"a tar stream, as far as this test goes";
        let layer = layout.put_json(MediaType::ImageLayer, tar).unwrap();
        let config =
            json!({ "rootfs": { "type": "layers", "diff_ids": [Digest::of(tar).to_string()] } });
        let config = layout
            .put_json(MediaType::ImageConfig, config.to_string().as_bytes())
            .unwrap();
        let manifest = json!({ "schemaVersion": 2, "config": config, "layers": [layer] });
        layout
            .put_json(MediaType::ImageManifest, manifest.to_string().as_bytes())
            .unwrap()
    }

    fn attachments(subject: &Descriptor) -> Vec<Attachment> {
        let artifact = Artifact {
            subject: subject.clone(),
            artifact_type: "application/spdx+json".into(),
            content: b"{}".to_vec(),
            annotations: BTreeMap::new(),
        };
        let layer = LegacyLayer {
            media_type: "application/vnd.dev.cosign.simplesigning.v1+json".into(),
            content: b"{\"payload\":1}".to_vec(),
            annotations: BTreeMap::from([("sig".to_string(), "a".to_string())]),
        };
        vec![
            Attachment::Referrer(Box::new(artifact)),
            Attachment::Tagged(TaggedLayer {
                subject: Digest::named(subject.digest().as_ref()).unwrap(),
                suffix: "sig",
                layer,
            }),
        ]
    }

    #[test]
    fn what_is_attached_rides_inside_an_archive_that_lists_one_image() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(&dir.path().join("layout")).unwrap();
        let top = image(&layout);
        let file = dir.path().join("app.tar");
        write_oci(&layout, &top, "app", &Referrers::default(), &file).unwrap();
        let attached = attachments(&top);
        let outcomes = attach(&file, None, &attached).unwrap();
        assert_eq!(outcomes, [Outcome::Written, Outcome::Written]);

        let (archive, opened) = Archive::open(&file, None).unwrap();
        assert_eq!(opened, annotated(&top, REF_NAME, "app"));
        let contents = archive.contents().unwrap();
        assert_eq!(
            contents.entries.len(),
            1,
            "index.json still lists one image"
        );
        let found =
            crate::referrer::of_image(&archive, &top, crate::referrer::Follow::Known).unwrap();
        assert_eq!(found.followed.len(), 1);
        assert_eq!(found.legacy.len(), 1);
        assert_eq!(found.legacy[0].tag, legacy_tag(&top));

        // Attached again: nothing is written.
        let before = std::fs::read(&file).unwrap();
        assert_eq!(
            attach(&file, None, &attached).unwrap(),
            [Outcome::Present; 2]
        );
        assert_eq!(std::fs::read(&file).unwrap(), before);

        // An index.json that names another listing than the archive's is refused.
        let member = dir.path().join("unpacked");
        std::fs::create_dir(&member).unwrap();
        let status = std::process::Command::new("tar")
            .args([
                "-xf",
                file.to_str().unwrap(),
                "-C",
                member.to_str().unwrap(),
            ])
            .status()
            .unwrap();
        assert!(status.success());
        let mut index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(member.join("index.json")).unwrap()).unwrap();
        assert!(index["annotations"][ATTACHED].is_string(), "{index}");
        index["annotations"][ATTACHED] = Digest::of(b"not the listing").to_string().into();
        std::fs::write(member.join("index.json"), index.to_string()).unwrap();
        let tampered = dir.path().join("tampered.tar");
        let status = std::process::Command::new("tar")
            .args([
                "-cf",
                tampered.to_str().unwrap(),
                "-C",
                member.to_str().unwrap(),
                ".",
            ])
            .status()
            .unwrap();
        assert!(status.success());
        let e = Archive::open(&tampered, None).err().unwrap().to_string();
        assert!(e.contains("which the archive lacks"), "{e}");
    }

    fn legacy_tag(top: &Descriptor) -> String {
        crate::attach::legacy_tag(&Digest::named(top.digest().as_ref()).unwrap(), "sig")
    }

    #[test]
    fn two_attaching_to_one_archive_at_once_keep_both() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(&dir.path().join("layout")).unwrap();
        let top = image(&layout);
        let file = dir.path().join("app.tar");
        write_oci(&layout, &top, "app", &Referrers::default(), &file).unwrap();
        let layered = |signature: &str| {
            let Attachment::Tagged(mut t) = attachments(&top).remove(1) else {
                unreachable!("the second is a legacy layer")
            };
            t.layer.annotations.insert("sig".into(), signature.into());
            vec![Attachment::Tagged(t)]
        };
        let (a, b) = (layered("a"), layered("b"));
        std::thread::scope(|s| {
            let first = s.spawn(|| attach(&file, None, &a).unwrap());
            let second = s.spawn(|| attach(&file, None, &b).unwrap());
            first.join().unwrap();
            second.join().unwrap();
        });
        let (archive, _) = Archive::open(&file, None).unwrap();
        let found =
            crate::referrer::of_image(&archive, &top, crate::referrer::Follow::Known).unwrap();
        let layers = crate::attach::legacy_layers(&archive, &found.legacy[0].image).unwrap();
        let signatures: Vec<&str> = layers
            .iter()
            .map(|l| l.annotations["sig"].as_str())
            .collect();
        assert_eq!(signatures.len(), 2, "{signatures:?}");
        assert!(signatures.contains(&"a") && signatures.contains(&"b"));
    }
}
