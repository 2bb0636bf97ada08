//! Writing archives: deterministic (sorted entries, zero times, root-owned), into a
//! temporary file beside the destination renamed into place, with blobs streamed from any
//! source and checked as they go.

use std::collections::BTreeMap;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use oci_spec::image::{Descriptor, ImageManifest};
use serde_json::json;

use crate::Error;
use crate::blob::Blob;
use crate::image::canonical_json;
use crate::layout::{REF_NAME, annotated};
use crate::media::Kind;
use crate::reference::DockerName;
use crate::source::{BlobSource, reachable};

use super::CONTAINERD_NAME;

/// Writes the image (or index) `top`, tagged `tag`, as an OCI archive at `file`.
/// The archive holds the image alone, not its referrers: skopeo and podman read an
/// archive of one image without being told which (its SBOMs are the files beside it).
pub fn write_oci(
    source: &dyn BlobSource,
    top: &Descriptor,
    tag: &str,
    file: &Path,
) -> Result<(), Error> {
    write_archive(
        source,
        &[annotated(top, REF_NAME, tag)],
        BTreeMap::new(),
        file,
    )
}

/// Writes the single-platform image `manifest` as a docker archive at `file`, named `name`
/// (a normalised `REPOSITORY:TAG`) when given.
pub fn write_docker(
    source: &dyn BlobSource,
    manifest: &Descriptor,
    name: Option<&DockerName>,
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
    write_archive(source, &[entry], extra, file)
}

/// The blobs of `source` the index entries reach, the entries and extra files of an
/// archive, tarred into `file`.
fn write_archive(
    source: &dyn BlobSource,
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
    let mut blobs = BTreeMap::new();
    for entry in index_entries {
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
