//! Image archives.
//!
//! `oci-archive:FILE` is a tar of an OCI layout. `docker-archive:FILE` is what `docker save`
//! writes since Docker 25, which docker, podman, skopeo and trivy all load: the OCI layout
//! plus `manifest.json` (the config and layer paths, and the repository tags) and
//! `repositories`. Both keep the image's blobs, so digests survive.
//!
//! Archives are written deterministically (sorted entries, zero times, root-owned) into a
//! temporary file beside the destination and renamed into place, with blobs streamed from
//! the layout. Reading an archive streams each member into a layout's blob store and checks
//! it against its digest; member names are never used as paths.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use oci_spec::image::{Descriptor, ImageManifest, MediaType};
use serde_json::{Value, json};

use crate::Error;
use crate::digest::{Digest, HashingWriter};
use crate::image::canonical_json;
use crate::layout::{Layout, REF_NAME, annotated};
use crate::reference::DockerName;
use crate::referrer;

/// The annotation containerd and Docker give an image's full name in `index.json`.
const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// Writes the image (or index) `top`, tagged `tag`, as an OCI archive at `file`.
/// The archive holds the image alone, not its referrers: skopeo and podman read an
/// archive of one image without being told which (its SBOMs are the files beside it).
pub fn write_oci(layout: &Layout, top: &Descriptor, tag: &str, file: &Path) -> Result<(), Error> {
    write_archive(
        layout,
        &[annotated(top, REF_NAME, tag)],
        BTreeMap::new(),
        file,
    )
}

/// Writes the single-platform image `manifest` as a docker archive at `file`, named `name`
/// (a normalised `REPOSITORY:TAG`) when given.
pub fn write_docker(
    layout: &Layout,
    manifest: &Descriptor,
    name: Option<&DockerName>,
    file: &Path,
) -> Result<(), Error> {
    if !manifest
        .media_type()
        .to_string()
        .ends_with("manifest.v1+json")
    {
        return Err(Error::Spec(
            "a docker archive holds one platform's image, and this is a multi-platform index\n  hint: choose one with --arch".into(),
        ));
    }
    let doc: ImageManifest = serde_json::from_slice(&layout.read_described(manifest)?)
        .map_err(|e| Error::Spec(format!("manifest {}: {e}", manifest.digest())))?;
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
    write_archive(layout, &[entry], extra, file)
}

/// The layout, index entries and extra files of an archive, tarred into `file`.
fn write_archive(
    layout: &Layout,
    index_entries: &[Descriptor],
    mut extra: BTreeMap<String, Vec<u8>>,
    file: &Path,
) -> Result<(), Error> {
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": index_entries,
    });
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
    let mut blobs = Vec::new();
    for entry in index_entries {
        blobs.extend(layout.reachable(entry)?);
    }
    blobs.sort_by(|a, b| a.hex().cmp(b.hex()));
    blobs.dedup();
    let mut names: Vec<(String, Member)> = extra
        .into_iter()
        .map(|(name, bytes)| (name, Member::Bytes(bytes)))
        .collect();
    names.push(("blobs/".into(), Member::Dir));
    names.push(("blobs/sha256/".into(), Member::Dir));
    for d in blobs {
        names.push((format!("blobs/sha256/{}", d.hex()), Member::Blob(d)));
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
            Member::Blob(digest) => {
                let path = layout.blob_path(&digest);
                let f = File::open(&path).map_err(|e| Error::io(&path, e))?;
                header.set_mode(0o644);
                header.set_size(f.metadata().map_err(|e| Error::io(&path, e))?.len());
                tar.append_data(&mut header, &name, f).map_err(io_err)?;
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
    Blob(Digest),
}

/// Reads the archive at `file` into `layout` (checking every blob) and returns the image
/// it holds: the one tagged `tag` when given, else its only image. Referrers of that image
/// that the archive lists (as other tools write them) are listed in `layout` too. A docker archive without
/// an OCI layout (as older Docker and podman write) is converted: its layers and config
/// become blobs under a new OCI manifest.
pub fn read(file: &Path, layout: &Layout, tag: Option<&str>) -> Result<Descriptor, Error> {
    let bad = |reason: String| Error::BadLayout {
        path: file.to_path_buf(),
        reason,
    };
    let f = File::open(file).map_err(|e| Error::io(file, e))?;
    let mut archive = tar::Archive::new(io::BufReader::new(f));
    // Small documents by name; every regular member's digest by name.
    let mut documents: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut members: BTreeMap<String, Digest> = BTreeMap::new();
    for entry in archive.entries().map_err(|e| Error::io(file, e))? {
        let mut entry = entry.map_err(|e| Error::io(file, e))?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let name = String::from_utf8_lossy(&entry.path_bytes())
            .trim_start_matches("./")
            .to_string();
        if matches!(
            name.as_str(),
            "index.json" | "oci-layout" | "manifest.json" | "repositories"
        ) {
            let mut bytes = Vec::new();
            (&mut entry)
                .take(16 << 20)
                .read_to_end(&mut bytes)
                .map_err(|e| Error::io(file, e))?;
            documents.insert(name, bytes);
            continue;
        }
        let digest = store_blob(layout, &mut entry).map_err(|e| Error::io(file, e))?;
        if let Some(hex) = name.strip_prefix("blobs/sha256/")
            && hex != digest.hex()
        {
            let _ = std::fs::remove_file(layout.blob_path(&digest));
            return Err(bad(format!(
                "{name} does not match its digest (its content hashes to {digest}): the archive is corrupt or was tampered with"
            )));
        }
        members.insert(name, digest);
    }
    if let Some(index) = documents.get("index.json") {
        let index: Value =
            serde_json::from_slice(index).map_err(|e| bad(format!("index.json: {e}")))?;
        let entries: Vec<Descriptor> = serde_json::from_value(index["manifests"].clone())
            .map_err(|e| bad(format!("index.json: {e}")))?;
        let (artifacts, images): (Vec<Descriptor>, Vec<Descriptor>) = entries
            .into_iter()
            .partition(|d| d.artifact_type().is_some());
        let chosen = pick(&images, tag).ok_or_else(|| bad(not_found(&images, tag)))?;
        // Every blob the image reaches must be there (and was checked on the way in).
        layout.reachable(&chosen)?;
        // The image's referrers come along.
        let subjects: Vec<String> = referrer::subjects(layout, &chosen)?
            .iter()
            .map(|d| d.digest().to_string())
            .collect();
        for artifact in artifacts {
            if layout.reachable(&artifact).is_ok()
                && referrer::subject_of(layout, &artifact)?.is_some_and(|s| subjects.contains(&s))
            {
                layout.add_untagged(&artifact)?;
            }
        }
        return Ok(chosen);
    }
    let manifest = documents
        .get("manifest.json")
        .ok_or_else(|| bad("neither index.json nor manifest.json: not an image archive".into()))?;
    convert_legacy(layout, manifest, &members, tag).map_err(bad)
}

/// The index entry tagged `tag` (by its OCI or containerd name), or the only one.
fn pick(entries: &[Descriptor], tag: Option<&str>) -> Option<Descriptor> {
    let Some(tag) = tag else {
        return (entries.len() == 1).then(|| entries[0].clone());
    };
    entries
        .iter()
        .find(|d| {
            let a = d.annotations().clone().unwrap_or_default();
            a.get(REF_NAME).is_some_and(|t| t == tag)
                || a.get(CONTAINERD_NAME).is_some_and(|n| {
                    n == tag || tag.parse::<DockerName>().is_ok_and(|t| *n == t.full())
                })
        })
        .cloned()
}

fn not_found(entries: &[Descriptor], tag: Option<&str>) -> String {
    let names: Vec<String> = entries
        .iter()
        .filter_map(|d| d.annotations().as_ref()?.get(REF_NAME).cloned())
        .collect();
    match tag {
        Some(t) => format!("no image tagged {t:?}; it holds {names:?}"),
        None => format!(
            "it holds {} images ({names:?}): name one, as FILE:TAG",
            entries.len()
        ),
    }
}

/// An OCI manifest for the image a legacy `manifest.json` describes.
fn convert_legacy(
    layout: &Layout,
    manifest: &[u8],
    members: &BTreeMap<String, Digest>,
    tag: Option<&str>,
) -> Result<Descriptor, String> {
    let images: Vec<Value> =
        serde_json::from_slice(manifest).map_err(|e| format!("manifest.json: {e}"))?;
    let chosen = match tag {
        None if images.len() == 1 => &images[0],
        None => return Err(format!("it holds {} images: name one", images.len())),
        Some(t) => images
            .iter()
            .find(|i| {
                i["RepoTags"].as_array().into_iter().flatten().any(|r| {
                    r.as_str().is_some_and(|r| {
                        r == t || r.parse::<DockerName>().ok() == t.parse::<DockerName>().ok()
                    })
                })
            })
            .ok_or_else(|| format!("no image tagged {t:?}"))?,
    };
    let member = |name: &Value| -> Result<(Digest, u64), String> {
        let name = name
            .as_str()
            .ok_or("manifest.json: a path is not a string")?;
        let digest = members
            .get(name)
            .ok_or_else(|| format!("manifest.json names {name}, which the archive lacks"))?;
        let size = std::fs::metadata(layout.blob_path(digest))
            .map_err(|e| e.to_string())?
            .len();
        Ok((digest.clone(), size))
    };
    let descriptor = |media_type: &str, (digest, size): (Digest, u64)| json!({ "mediaType": media_type, "digest": digest.to_string(), "size": size });
    let config = member(&chosen["Config"])?;
    let mut layers = Vec::new();
    for l in chosen["Layers"].as_array().into_iter().flatten() {
        let (digest, size) = member(l)?;
        let media_type = if is_gzip(&layout.blob_path(&digest)) {
            "application/vnd.oci.image.layer.v1.tar+gzip"
        } else {
            "application/vnd.oci.image.layer.v1.tar"
        };
        layers.push(descriptor(media_type, (digest, size)));
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": descriptor("application/vnd.oci.image.config.v1+json", config),
        "layers": layers,
    });
    let bytes = canonical_json(&manifest).map_err(|e| e.to_string())?;
    layout
        .put_json(MediaType::ImageManifest, &bytes)
        .map_err(|e| e.to_string())
}

fn is_gzip(path: &Path) -> bool {
    let mut magic = [0u8; 2];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == [0x1f, 0x8b]
}

/// Streams a member into the layout's blob store under the digest of its content.
fn store_blob(layout: &Layout, content: &mut impl Read) -> io::Result<Digest> {
    let tmp = layout.temp_blob().map_err(io::Error::other)?;
    let mut writer = HashingWriter::new(BufWriter::new(tmp.reopen()?));
    io::copy(content, &mut writer)?;
    let (mut file, digest, _) = writer.finish();
    file.flush()?;
    layout.commit_blob(tmp, &digest).map_err(io::Error::other)?;
    Ok(digest)
}
