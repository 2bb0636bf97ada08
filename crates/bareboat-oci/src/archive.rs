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
use crate::blob::Blob;
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
    let mut blobs = BTreeMap::new();
    for entry in index_entries {
        for blob in layout.blobs(entry)? {
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
                let content = layout.open_blob(&blob)?;
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

/// Reads the archive at `file` into `layout` (checking every blob) and returns the image
/// it holds: the one tagged `tag` when given, else its only image. Referrers of that image
/// that the archive lists (as other tools write them) are listed in `layout` too. A docker archive without
/// an OCI layout (as older Docker and podman write) is converted: its layers and config
/// become blobs under a new OCI manifest.
///
/// A symlink or hard link member that leads, within the archive, to a regular member
/// stands for that member: `docker save` of images that share a layer writes the layer
/// once and links to it from each other image's directory. A link that leaves the
/// archive, leads to a missing or non-regular member, or through more than a few links,
/// is refused: under `blobs/` always, elsewhere when the image names it.
pub fn read(file: &Path, layout: &Layout, tag: Option<&str>) -> Result<Descriptor, Error> {
    let bad = |reason: String| Error::BadLayout {
        path: file.to_path_buf(),
        reason,
    };
    let f = File::open(file).map_err(|e| Error::io(file, e))?;
    let mut archive = tar::Archive::new(io::BufReader::new(f));
    // Small documents by name; every regular member's digest by name; link members and
    // the other kinds of member, to resolve links once every member has been seen
    // (`docker save` may write a link before the member it names).
    let mut documents: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut members: BTreeMap<String, Digest> = BTreeMap::new();
    let mut links: BTreeMap<String, LinkMember> = BTreeMap::new();
    let mut others: BTreeMap<String, &'static str> = BTreeMap::new();
    for entry in archive.entries().map_err(|e| Error::io(file, e))? {
        let mut entry = entry.map_err(|e| Error::io(file, e))?;
        let name = String::from_utf8_lossy(&entry.path_bytes())
            .trim_start_matches("./")
            .to_string();
        let kind = entry.header().entry_type();
        let is_document = matches!(
            name.as_str(),
            "index.json" | "oci-layout" | "manifest.json" | "repositories"
        );
        if kind != tar::EntryType::Regular {
            if is_document {
                return Err(bad(format!(
                    "{name} is a {}, not a regular file",
                    kind_name(kind)
                )));
            }
            if kind.is_symlink() || kind.is_hard_link() {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .unwrap_or_default();
                links.insert(
                    name,
                    LinkMember {
                        symbolic: kind.is_symlink(),
                        target,
                    },
                );
            } else {
                others.insert(name.trim_end_matches('/').to_string(), kind_name(kind));
            }
            continue;
        }
        if is_document {
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
    // A link stands for the regular member it leads to; one that leads nowhere in the
    // archive is kept with the reason, for the error when the image needs it.
    let mut broken: BTreeMap<String, String> = BTreeMap::new();
    let mut resolved: BTreeMap<String, Digest> = BTreeMap::new();
    for name in links.keys() {
        match resolve_link(name, &links, &members, &documents, &others) {
            Ok(digest) => {
                if let Some(hex) = name.strip_prefix("blobs/sha256/")
                    && hex != digest.hex()
                {
                    return Err(bad(format!(
                        "{name} links to content that hashes to {digest}: the archive is corrupt or was tampered with"
                    )));
                }
                resolved.insert(name.clone(), digest);
            }
            Err(reason) => {
                broken.insert(name.clone(), reason);
            }
        }
    }
    // Only now: a resolved link must not shorten another link's chain.
    members.extend(resolved);
    if let Some(index) = documents.get("index.json") {
        // The layout's blobs are the archive's: a blob that is a broken link is refused
        // whether or not the image reaches it, as a regular blob would be checked.
        if let Some(reason) = broken
            .iter()
            .find_map(|(name, reason)| name.starts_with("blobs/").then_some(reason))
        {
            return Err(bad(reason.clone()));
        }
        let index: Value =
            serde_json::from_slice(index).map_err(|e| bad(format!("index.json: {e}")))?;
        let entries: Vec<Descriptor> = serde_json::from_value(index["manifests"].clone())
            .map_err(|e| bad(format!("index.json: {e}")))?;
        let (artifacts, images): (Vec<Descriptor>, Vec<Descriptor>) = entries
            .into_iter()
            .partition(|d| d.artifact_type().is_some());
        let chosen = pick(&images, tag).ok_or_else(|| bad(not_found(&images, tag)))?;
        // Every blob the image reaches must be there (and was checked on the way in), and
        // its config must give each layer a diff_id.
        layout.blobs(&chosen)?;
        // The image's referrers come along.
        let subjects: Vec<String> = referrer::subjects(layout, &chosen)?
            .iter()
            .map(|d| d.digest().to_string())
            .collect();
        for artifact in artifacts {
            if layout.blobs(&artifact).is_ok()
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
    convert_legacy(layout, manifest, &members, &broken, tag).map_err(bad)
}

/// How many links in a row may lead to a regular member: Docker writes one; a longer chain
/// is a loop or an archive made to waste time.
const MAX_LINK_HOPS: usize = 4;

/// A symlink or hard link member, with the target as the archive spells it.
struct LinkMember {
    symbolic: bool,
    target: String,
}

/// The digest of the regular member the link member `name` leads to, within the archive:
/// a symlink's target is relative to the link's own directory, a hard link's to the
/// archive's root, and neither may leave the archive.
fn resolve_link(
    name: &str,
    links: &BTreeMap<String, LinkMember>,
    members: &BTreeMap<String, Digest>,
    documents: &BTreeMap<String, Vec<u8>>,
    others: &BTreeMap<String, &'static str>,
) -> Result<Digest, String> {
    let mut current = name.to_string();
    for _ in 0..MAX_LINK_HOPS {
        let link = &links[&current];
        // Name the member the image needs, and the link of the chain that fails.
        let what = if current == name {
            format!("{name} is a link")
        } else {
            format!("{name} leads to {current}, a link")
        };
        let base = match current.rsplit_once('/') {
            Some((dir, _)) if link.symbolic => dir,
            _ => "",
        };
        let target = within_archive(base, &link.target)
            .ok_or_else(|| format!("{what} to {:?}, outside the archive", link.target))?;
        if let Some(digest) = members.get(&target) {
            return Ok(digest.clone());
        }
        if documents.contains_key(&target) {
            return Err(format!("{what} to {target}, which is not an image blob"));
        }
        if let Some(kind) = others.get(&target) {
            return Err(format!(
                "{what} to {target}, a {kind}, not a regular member"
            ));
        }
        if !links.contains_key(&target) {
            return Err(format!("{what} to {target}, which the archive lacks"));
        }
        current = target;
    }
    Err(format!(
        "{name} is a chain of more than {MAX_LINK_HOPS} links (or a loop)"
    ))
}

/// `target` taken from the directory `base` of the archive, as a member name; `None` when
/// it is absolute or climbs above the archive's root.
fn within_archive(base: &str, target: &str) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

fn kind_name(kind: tar::EntryType) -> &'static str {
    match kind {
        tar::EntryType::Directory => "directory",
        tar::EntryType::Symlink => "symlink",
        tar::EntryType::Link => "hard link",
        tar::EntryType::Char => "character device",
        tar::EntryType::Block => "block device",
        tar::EntryType::Fifo => "fifo",
        _ => "special member",
    }
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
    broken: &BTreeMap<String, String>,
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
        let digest = members.get(name).ok_or_else(|| match broken.get(name) {
            Some(reason) => format!("manifest.json names {name}: {reason}"),
            None => format!("manifest.json names {name}, which the archive lacks"),
        })?;
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

#[cfg(test)]
mod tests {
    use super::*;

    enum M {
        File(Vec<u8>),
        Symlink(&'static str),
        Hardlink(String),
        Dir,
        Fifo,
    }

    fn file(bytes: &[u8]) -> M {
        M::File(bytes.to_vec())
    }

    /// A tar of `members`, in that order, in a new directory under `dir`.
    fn tar_of(dir: &Path, members: Vec<(String, M)>) -> std::path::PathBuf {
        let new = tempfile::tempdir_in(dir).unwrap().keep();
        let path = new.join("archive.tar");
        let mut tar = tar::Builder::new(File::create(&path).unwrap());
        for (name, member) in members {
            let mut header = tar::Header::new_gnu();
            header.set_mode(0o644);
            header.set_size(0);
            let kind = match &member {
                M::File(_) => tar::EntryType::Regular,
                M::Symlink(_) => tar::EntryType::Symlink,
                M::Hardlink(_) => tar::EntryType::Link,
                M::Dir => tar::EntryType::Directory,
                M::Fifo => tar::EntryType::Fifo,
            };
            header.set_entry_type(kind);
            match member {
                M::File(bytes) => {
                    header.set_size(bytes.len() as u64);
                    tar.append_data(&mut header, &name, &bytes[..]).unwrap();
                }
                M::Symlink(target) => tar.append_link(&mut header, &name, target).unwrap(),
                M::Hardlink(target) => tar.append_link(&mut header, &name, target).unwrap(),
                M::Dir | M::Fifo => tar.append_data(&mut header, &name, io::empty()).unwrap(),
            }
        }
        tar.finish().unwrap();
        path
    }

    fn digest_of(bytes: &[u8]) -> Digest {
        let mut w = HashingWriter::new(io::sink());
        w.write_all(bytes).unwrap();
        w.finish().1
    }

    const LAYER: &[u8] = b"the shared layer's bytes";
    /// The config of an image whose one layer is [`LAYER`], stored as a plain tar.
    fn config() -> Vec<u8> {
        let rootfs = json!({ "type": "layers", "diff_ids": [digest_of(LAYER).to_string()] });
        serde_json::to_vec(&json!({ "architecture": "amd64", "os": "linux", "rootfs": rootfs }))
            .unwrap()
    }

    /// The members of a legacy docker archive of one image, `app:1`, whose layers are at
    /// `layers`, followed by `more`.
    fn legacy(layers: &[&str], more: Vec<(&str, M)>) -> Vec<(String, M)> {
        let manifest = json!([{
            "Config": "config.json",
            "RepoTags": ["app:1"],
            "Layers": layers,
        }]);
        let mut members = vec![
            ("config.json".to_string(), M::File(config())),
            (
                "manifest.json".to_string(),
                M::File(serde_json::to_vec(&manifest).unwrap()),
            ),
        ];
        members.extend(more.into_iter().map(|(n, m)| (n.to_string(), m)));
        members
    }

    /// The layer digests of `app:1` read from the archive at `path` into a new layout,
    /// each layer checked to hold [`LAYER`].
    fn read_layers(path: &Path) -> Result<Vec<String>, Error> {
        let layout = Layout::create(&path.with_extension("layout"))?;
        let top = read(path, &layout, Some("app:1"))?;
        let manifest: ImageManifest =
            serde_json::from_slice(&layout.read_described(&top)?).unwrap();
        for l in manifest.layers() {
            assert_eq!(layout.read_described(l)?, LAYER, "the layer's content");
        }
        Ok(manifest
            .layers()
            .iter()
            .map(|l| l.digest().to_string())
            .collect())
    }

    #[test]
    fn a_link_to_a_regular_member_stands_for_it_in_a_docker_archive() {
        let dir = tempfile::tempdir().unwrap();
        let layers = [
            "aaa/layer.tar",
            "bbb/layer.tar",
            "ccc/layer.tar",
            "ddd/layer.tar",
        ];
        // As `docker save` writes a shared layer: the link comes before its target.
        let path = tar_of(
            dir.path(),
            legacy(
                &layers,
                vec![
                    ("aaa/", M::Dir),
                    ("aaa/layer.tar", M::Symlink("../bbb/./layer.tar")),
                    ("bbb/", M::Dir),
                    ("bbb/layer.tar", file(LAYER)),
                    // A hard link names its target from the archive's root.
                    ("ccc/layer.tar", M::Hardlink("./aaa/layer.tar".into())),
                    // Four links in a row still lead somewhere.
                    ("ddd/layer.tar", M::Symlink("l1")),
                    ("ddd/l1", M::Symlink("l2")),
                    ("ddd/l2", M::Symlink("../ddd/l3")),
                    ("ddd/l3", M::Hardlink("bbb/layer.tar".into())),
                    // A broken link that the image does not name is no concern of its.
                    ("eee/layer.tar", M::Symlink("/etc/passwd")),
                ],
            ),
        );
        let layer = digest_of(LAYER).to_string();
        assert_eq!(read_layers(&path).unwrap(), [layer.as_str(); 4]);
    }

    #[test]
    fn links_that_leave_the_archive_or_lead_to_no_regular_member_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let layer = "aaa/layer.tar";
        let cases: Vec<(Vec<(&str, M)>, &str)> = vec![
            (
                vec![(layer, M::Symlink("/etc/passwd"))],
                "aaa/layer.tar is a link to \"/etc/passwd\", outside the archive",
            ),
            (
                vec![(layer, M::Symlink("../../bbb/layer.tar"))],
                "aaa/layer.tar is a link to \"../../bbb/layer.tar\", outside the archive",
            ),
            (
                vec![(layer, M::Hardlink("../aaa/layer.tar".into()))],
                "outside the archive",
            ),
            (
                vec![(layer, M::Symlink("../bbb/layer.tar"))],
                "aaa/layer.tar is a link to bbb/layer.tar, which the archive lacks",
            ),
            (
                vec![("bbb/", M::Dir), (layer, M::Symlink("../bbb"))],
                "aaa/layer.tar is a link to bbb, a directory, not a regular member",
            ),
            (
                vec![("fifo", M::Fifo), (layer, M::Hardlink("fifo".into()))],
                "aaa/layer.tar is a link to fifo, a fifo, not a regular member",
            ),
            (
                vec![(layer, M::Symlink("../manifest.json"))],
                "aaa/layer.tar is a link to manifest.json, which is not an image blob",
            ),
            (
                vec![
                    (layer, M::Symlink("next")),
                    ("aaa/next", M::Symlink("../../up")),
                ],
                "aaa/layer.tar leads to aaa/next, a link to \"../../up\", outside the archive",
            ),
            (
                vec![(layer, M::Symlink("layer.tar"))],
                "aaa/layer.tar is a chain of more than 4 links (or a loop)",
            ),
            (
                vec![
                    (layer, M::Symlink("l1")),
                    ("aaa/l1", M::Symlink("l2")),
                    ("aaa/l2", M::Symlink("l3")),
                    ("aaa/l3", M::Symlink("l4")),
                    ("aaa/l4", M::Symlink("real")),
                    ("aaa/real", file(LAYER)),
                ],
                "aaa/layer.tar is a chain of more than 4 links",
            ),
        ];
        for (more, expected) in cases {
            let path = tar_of(dir.path(), legacy(&[layer], more));
            let err = read_layers(&path).unwrap_err().to_string();
            assert!(
                err.contains(&format!("manifest.json names {layer}: ")) && err.contains(expected),
                "{err}"
            );
        }

        // The documents themselves are read only from regular members.
        let mut members = legacy(&[layer], vec![(layer, file(LAYER))]);
        members.retain(|(n, _)| n != "manifest.json");
        members.push(("manifest.json".into(), M::Symlink("config.json")));
        let err = read_layers(&tar_of(dir.path(), members))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("manifest.json is a symlink, not a regular file"),
            "{err}"
        );
    }

    /// The members of an OCI archive of one image, `app:1`, with one layer, [`LAYER`],
    /// whose blob is `layer_blob`, and `more`.
    fn oci(layer_blob: M, more: Vec<(&str, M)>) -> Vec<(String, M)> {
        let config_bytes = config();
        let (layer, config) = (digest_of(LAYER), digest_of(&config_bytes));
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": { "mediaType": "application/vnd.oci.image.config.v1+json",
                        "digest": config.to_string(), "size": config_bytes.len() },
            "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar",
                         "digest": layer.to_string(), "size": LAYER.len() }],
        }))
        .unwrap();
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest_of(&manifest).to_string(),
                "size": manifest.len(),
                "annotations": { REF_NAME: "app:1" },
            }],
        }))
        .unwrap();
        let blob = |d: &Digest| format!("blobs/sha256/{}", d.hex());
        let mut members = vec![
            ("index.json".to_string(), M::File(index)),
            (
                "oci-layout".to_string(),
                file(br#"{"imageLayoutVersion":"1.0.0"}"#),
            ),
            (blob(&config), M::File(config_bytes)),
            (blob(&digest_of(&manifest)), M::File(manifest)),
            (blob(&layer), layer_blob),
        ];
        members.extend(more.into_iter().map(|(n, m)| (n.to_string(), m)));
        members
    }

    #[test]
    fn a_blob_may_link_only_to_its_own_content_in_an_oci_archive() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let layer_name = format!("blobs/sha256/{}", digest_of(LAYER).hex());
        let config_name = format!("blobs/sha256/{}", digest_of(&config()).hex());
        let path = tar_of(
            d,
            oci(
                M::Symlink("../../legacy/layer.tar"),
                vec![("legacy/layer.tar", file(LAYER))],
            ),
        );
        assert_eq!(read_layers(&path).unwrap(), [digest_of(LAYER).to_string()]);

        // A blob that links to other content is tampering, like a blob that holds it.
        let path = tar_of(d, oci(M::Hardlink(config_name), vec![]));
        let err = read_layers(&path).unwrap_err().to_string();
        assert!(
            err.contains(&format!(
                "{layer_name} links to content that hashes to {}: the archive is corrupt",
                digest_of(&config())
            )),
            "{err}"
        );
        let path = tar_of(d, oci(M::Symlink("../../oci-layout"), vec![]));
        let err = read_layers(&path).unwrap_err().to_string();
        assert!(
            err.contains(&format!(
                "{layer_name} is a link to oci-layout, which is not an image blob"
            )),
            "{err}"
        );
        let path = tar_of(d, oci(M::Symlink("/tmp/layer.tar"), vec![]));
        let err = read_layers(&path).unwrap_err().to_string();
        assert!(
            err.contains(&format!(
                "{layer_name} is a link to \"/tmp/layer.tar\", outside"
            )),
            "{err}"
        );
    }
}
