//! Reading an archive in place.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageIndex, MediaType};
use serde_json::{Value, json};

use super::write::Contents;
use super::{ATTACHED, CONTAINERD_NAME};
use crate::Error;
use crate::blob::{check_stored_size, open_regular};
use crate::digest::{Digest, HashingWriter};
use crate::image::canonical_json;
use crate::layout::{MAX_DOCUMENT, REF_NAME, tag_of};
use crate::reference::DockerName;
use crate::referrer::{self, Referrer};
use crate::source::{BlobSource, reachable};
use crate::tar_bounds::BoundedTar;

/// Where a regular member's bytes are in the archive file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    offset: u64,
    size: u64,
}

/// An image archive, read in place. A docker archive without an OCI layout (as older
/// Docker and podman write) gets an OCI manifest made for it, over its layers and config.
pub struct Archive {
    file: PathBuf,
    /// Where each blob is, by the digest the archive names it by (checked when read).
    blobs: HashMap<Digest, Span>,
    /// The manifest made for a legacy docker archive.
    made: HashMap<Digest, Vec<u8>>,
    /// The artifacts the archive lists that refer to its image.
    referrers: Vec<Referrer>,
    /// The entries of its `index.json`, and its annotations but [`ATTACHED`].
    entries: Vec<Descriptor>,
    annotations: BTreeMap<String, String>,
    /// The entries of its index of attached things.
    attached: Vec<Descriptor>,
    /// Its top files other than `index.json` and `oci-layout` (a docker archive's
    /// `manifest.json` and `repositories`), kept for rewriting it.
    kept: BTreeMap<String, Vec<u8>>,
}

/// What one pass over an archive's headers finds: small documents by name, where each
/// regular member is, and the link and other members, to resolve links once every member
/// has been seen (`docker save` may write a link before the member it names).
#[derive(Default)]
struct Members {
    documents: BTreeMap<String, Vec<u8>>,
    regular: BTreeMap<String, Span>,
    links: BTreeMap<String, LinkMember>,
    others: BTreeMap<String, &'static str>,
}

impl Archive {
    /// Opens the archive at `file` and finds the image it holds: the one tagged `tag`
    /// when given, else its only image. Every document the image reaches is read and
    /// checked, and every blob found; the referrers of the image that the archive lists
    /// (as other tools write them) come with it.
    ///
    /// A symlink or hard link member that leads, within the archive, to a regular member
    /// stands for that member: `docker save` of images that share a layer writes the layer
    /// once and links to it from each other image's directory. A link that leaves the
    /// archive, leads to a missing or non-regular member, or through more than a few links,
    /// is refused: under `blobs/` always, elsewhere when the image names it.
    pub fn open(file: &Path, tag: Option<&str>) -> Result<(Archive, Descriptor), Error> {
        let bad = |reason: String| Error::BadLayout {
            path: file.to_path_buf(),
            reason,
        };
        let mut members = scan(file)?;
        // A link stands for the regular member it leads to; one that leads nowhere in the
        // archive is kept with the reason, for the error when the image needs it.
        let mut broken: BTreeMap<String, String> = BTreeMap::new();
        let mut resolved: BTreeMap<String, Span> = BTreeMap::new();
        for name in members.links.keys() {
            match resolve_link(name, &members) {
                Ok((target, span)) => {
                    // A blob linked to another blob is tampering, like a blob that holds
                    // other content; a link to a member elsewhere is checked when read.
                    let other_blob = target
                        .strip_prefix("blobs/sha256/")
                        .is_some_and(|hex| name.strip_prefix("blobs/sha256/") != Some(hex));
                    if name.starts_with("blobs/sha256/") && other_blob {
                        broken.insert(
                            name.clone(),
                            format!(
                                "{name} links to {target}, not to its own content: the archive is corrupt or was tampered with"
                            ),
                        );
                        continue;
                    }
                    resolved.insert(name.clone(), span);
                }
                Err(reason) => {
                    broken.insert(name.clone(), reason);
                }
            }
        }
        // Only now: a resolved link must not shorten another link's chain.
        members.regular.extend(resolved);
        let mut archive = Archive {
            file: file.to_path_buf(),
            blobs: HashMap::new(),
            made: HashMap::new(),
            referrers: Vec::new(),
            entries: Vec::new(),
            annotations: BTreeMap::new(),
            attached: Vec::new(),
            kept: BTreeMap::new(),
        };
        let Some(index) = members.documents.get("index.json") else {
            let manifest = members.documents.get("manifest.json").ok_or_else(|| {
                bad("neither index.json nor manifest.json: not an image archive".into())
            })?;
            let top = archive
                .make_legacy_manifest(manifest, &members.regular, &broken, tag)
                .map_err(bad)?;
            reachable(&archive, &top)?;
            return Ok((archive, top));
        };
        // The layout's blobs are the archive's: a blob that is a broken link is refused
        // whether or not the image reaches it, as a regular blob would be checked.
        if let Some(reason) = broken
            .iter()
            .find_map(|(name, reason)| name.starts_with("blobs/").then_some(reason))
        {
            return Err(bad(reason.clone()));
        }
        for (name, span) in &members.regular {
            if let Some(hex) = name.strip_prefix("blobs/sha256/") {
                let digest = format!("sha256:{hex}").parse().map_err(&bad)?;
                archive.blobs.insert(digest, *span);
            }
        }
        let index: ImageIndex =
            serde_json::from_slice(index).map_err(|e| bad(format!("index.json: {e}")))?;
        let (artifacts, images): (Vec<Descriptor>, Vec<Descriptor>) = index
            .manifests()
            .iter()
            .cloned()
            .partition(|d| d.artifact_type().is_some());
        let chosen = pick(&images, tag).ok_or_else(|| bad(not_found(&images, tag)))?;
        // Every blob the image reaches must be there, and its config must give each layer
        // a diff_id.
        reachable(&archive, &chosen)?;
        // What is attached is kept whole or not at all: an entry whose blobs are missing is
        // dropped, as a listed artifact is.
        archive.attached = (archive.attached_listing(&index)?.into_iter())
            .filter(|d| reachable(&archive, d).is_ok())
            .collect();
        let untagged = (archive.attached.iter())
            .filter(|d| tag_of(d).is_none())
            .cloned();
        let subjects = referrer::subjects(&archive, &chosen)?;
        let whole: Vec<Descriptor> =
            referrer::listed(&archive, artifacts.into_iter().chain(untagged).collect())?
                .into_iter()
                .filter(|artifact| reachable(&archive, artifact).is_ok())
                .collect();
        archive.referrers = referrer::naming(&archive, whole, &subjects)?;
        archive.entries = index.manifests().clone();
        archive.annotations = (index.annotations().clone().unwrap_or_default().into_iter())
            .filter(|(k, _)| k != ATTACHED)
            .collect();
        members.documents.remove("index.json");
        members.documents.remove("oci-layout");
        archive.kept = members.documents;
        Ok((archive, chosen))
    }

    /// The entries of the index of attached things that `index` names, if it names one:
    /// at most [`referrer::MAX_LISTED_ARTIFACTS`], the index checked against its digest.
    fn attached_listing(&self, index: &ImageIndex) -> Result<Vec<Descriptor>, Error> {
        let named = index.annotations().as_ref().and_then(|a| a.get(ATTACHED));
        let Some(named) = named else {
            return Ok(Vec::new());
        };
        let digest = Digest::named(named)?;
        let span = self.blobs.get(&digest).ok_or_else(|| Error::BadLayout {
            path: self.file.clone(),
            reason: format!(
                "index.json names {digest} as what is attached, which the archive lacks"
            ),
        })?;
        let d = Descriptor::new(
            MediaType::ImageIndex,
            span.size,
            oci_spec::image::Digest::try_from(digest.to_string())?,
        );
        let listing = crate::model::Index::open(self, &d)?;
        if listing.manifests().len() > referrer::MAX_LISTED_ARTIFACTS {
            return Err(Error::TooManyArtifacts {
                origin: self.name(),
                count: listing.manifests().len(),
            });
        }
        Ok(listing.manifests().to_vec())
    }

    /// What the archive holds besides its blobs, to write it again with more attached.
    /// A docker archive without `index.json` (as older Docker writes) has nowhere to keep
    /// what is attached.
    pub(super) fn contents(&self) -> Result<Contents, Error> {
        if self.entries.is_empty() {
            return Err(Error::BadLayout {
                path: self.file.clone(),
                reason: "it has no index.json (as Docker before 25 wrote), so nothing can be attached to it\n  hint: write it anew with `bareboat copy` and attach to that".into(),
            });
        }
        Ok(Contents {
            entries: self.entries.clone(),
            annotations: self.annotations.clone(),
            attached: self.attached.clone(),
            extra: self.kept.clone(),
        })
    }

    /// Whether it holds the blob `digest`.
    pub(super) fn holds(&self, digest: &Digest) -> bool {
        self.blobs.contains_key(digest) || self.made.contains_key(digest)
    }

    /// Where the member holding blob `digest` is, checked against the size `d` gives it.
    fn span(&self, d: &Descriptor, digest: &Digest) -> Result<Span, Error> {
        let span = self.blobs.get(digest).ok_or_else(|| Error::BadLayout {
            path: self.file.clone(),
            reason: format!("blob {digest} is missing"),
        })?;
        check_stored_size(d, span.size, &format!("{} member {digest}", self.name()))?;
        Ok(*span)
    }

    /// The archive file, at `span`'s bytes.
    fn member(&self, span: Span) -> Result<io::Take<File>, Error> {
        let mut f = open_archive(&self.file)?;
        f.seek(SeekFrom::Start(span.offset))
            .map_err(|e| Error::io(&self.file, e))?;
        Ok(f.take(span.size))
    }

    /// Makes an OCI manifest for the image a legacy `manifest.json` describes, hashing the
    /// members it names, and returns its descriptor.
    fn make_legacy_manifest(
        &mut self,
        manifest: &[u8],
        regular: &BTreeMap<String, Span>,
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
        let mut member = |name: &Value, media_type: Option<&str>| -> Result<Value, String> {
            let name = name
                .as_str()
                .ok_or("manifest.json: a path is not a string")?;
            let span = *regular.get(name).ok_or_else(|| match broken.get(name) {
                Some(reason) => format!("manifest.json names {name}: {reason}"),
                None => format!("manifest.json names {name}, which the archive lacks"),
            })?;
            let (digest, gzip) = self.hash(span).map_err(|e| e.to_string())?;
            self.blobs.insert(digest.clone(), span);
            let media_type = media_type.unwrap_or(if gzip {
                "application/vnd.oci.image.layer.v1.tar+gzip"
            } else {
                "application/vnd.oci.image.layer.v1.tar"
            });
            Ok(json!({ "mediaType": media_type, "digest": digest.to_string(), "size": span.size }))
        };
        let config = member(
            &chosen["Config"],
            Some("application/vnd.oci.image.config.v1+json"),
        )?;
        let layers = chosen["Layers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| member(l, None))
            .collect::<Result<Vec<_>, _>>()?;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config,
            "layers": layers,
        });
        let bytes = canonical_json(&manifest).map_err(|e| e.to_string())?;
        let digest = Digest::of(&bytes);
        let descriptor = Descriptor::new(
            MediaType::ImageManifest,
            bytes.len() as u64,
            oci_spec::image::Digest::try_from(digest.to_string()).map_err(|e| e.to_string())?,
        );
        self.made.insert(digest, bytes);
        Ok(descriptor)
    }

    /// The digest of the member at `span`, and whether it is gzip-compressed.
    fn hash(&self, span: Span) -> Result<(Digest, bool), Error> {
        let mut writer = HashingWriter::new(io::sink());
        let mut magic = [0u8; 2];
        let mut member = self.member(span)?;
        let start = member
            .read(&mut magic)
            .map_err(|e| Error::io(&self.file, e))?;
        writer
            .write_all(&magic[..start])
            .and_then(|()| io::copy(&mut member, &mut writer).map(drop))
            .map_err(|e| Error::io(&self.file, e))?;
        let (_, digest, _) = writer.finish();
        Ok((digest, magic == [0x1f, 0x8b]))
    }
}

impl BlobSource for Archive {
    fn name(&self) -> String {
        self.file.display().to_string()
    }

    fn stored(&self, d: &Descriptor) -> Result<Box<dyn Read + Send>, Error> {
        let digest = Digest::named(d.digest().as_ref())?;
        if let Some(bytes) = self.made.get(&digest) {
            check_stored_size(d, bytes.len() as u64, &self.name())?;
            return Ok(Box::new(io::Cursor::new(bytes.clone())));
        }
        Ok(Box::new(self.member(self.span(d, &digest)?)?))
    }

    /// Finding a member is checking it is there: it was seen to be a regular one.
    fn check_present(&self, d: &Descriptor) -> Result<(), Error> {
        let digest = Digest::named(d.digest().as_ref())?;
        if self.made.contains_key(&digest) {
            return Ok(());
        }
        self.span(d, &digest).map(drop)
    }

    fn referrers(&self, subjects: &[Descriptor]) -> Result<Vec<Referrer>, Error> {
        let named = |r: &&Referrer| subjects.iter().any(|s| s.digest().as_ref() == r.subject);
        Ok(self.referrers.iter().filter(named).cloned().collect())
    }

    fn tagged(&self, tag: &str) -> Result<Option<Descriptor>, Error> {
        let found = self
            .attached
            .iter()
            .find(|d| tag_of(d).is_some_and(|t| t == tag));
        Ok(found.cloned())
    }
}

/// Opens the archive file: a regular file, since it is read in place.
fn open_archive(file: &Path) -> Result<File, Error> {
    open_regular(file).map_err(|e| match e.kind() {
        io::ErrorKind::InvalidInput => Error::BadLayout {
            path: file.to_path_buf(),
            reason: format!("{e}\n  hint: an archive is read in place: save it to a file first"),
        },
        _ => Error::io(file, e),
    })
}

/// One pass over the archive's headers, seeking past the members' data.
fn scan(file: &Path) -> Result<Members, Error> {
    let bad = |reason: String| Error::BadLayout {
        path: file.to_path_buf(),
        reason,
    };
    let io_err = |e| Error::io(file, e);
    let mut archive = tar::Archive::new(BoundedTar::new(io::BufReader::new(open_archive(file)?)));
    let mut found = Members::default();
    for entry in archive.entries_with_seek().map_err(io_err)? {
        let mut entry = entry.map_err(io_err)?;
        let name = String::from_utf8_lossy(&entry.path_bytes())
            .trim_start_matches("./")
            .to_string();
        let kind = entry.header().entry_type();
        // A document goes by the name a tool that unpacks the archive gives it, so that no
        // other spelling of it (`/index.json`, `a/../index.json`) passes for another member.
        let document = within_archive("", name.trim_start_matches('/')).filter(|n| {
            matches!(
                n.as_str(),
                "index.json" | "oci-layout" | "manifest.json" | "repositories"
            )
        });
        let is_document = document.is_some();
        let name = document.unwrap_or(name);
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
                let symbolic = kind.is_symlink();
                found.links.insert(name, LinkMember { symbolic, target });
            } else {
                let name = name.trim_end_matches('/').to_string();
                found.others.insert(name, kind_name(kind));
            }
            continue;
        }
        if is_document {
            // Readers differ on which copy counts: the image audited must be the one run.
            if found.documents.contains_key(&name) {
                return Err(bad(format!(
                    "{name} is in the archive more than once, and tools differ on which copy they read: what one checks may not be what another runs\n  hint: do not use this archive; save the image again from where it came from"
                )));
            }
            let mut bytes = Vec::new();
            (&mut entry)
                .take(MAX_DOCUMENT + 1)
                .read_to_end(&mut bytes)
                .map_err(io_err)?;
            if bytes.len() as u64 > MAX_DOCUMENT {
                return Err(bad(format!(
                    "{name} is larger than the {MAX_DOCUMENT}-byte limit of a document"
                )));
            }
            found.documents.insert(name, bytes);
            continue;
        }
        let span = Span {
            offset: entry.raw_file_position(),
            size: entry.size(),
        };
        found.regular.insert(name, span);
    }
    Ok(found)
}

/// How many links in a row may lead to a regular member: Docker writes one; a longer chain
/// is a loop or an archive made to waste time.
const MAX_LINK_HOPS: usize = 4;

/// A symlink or hard link member, with the target as the archive spells it.
struct LinkMember {
    symbolic: bool,
    target: String,
}

/// The regular member the link member `name` leads to, within the archive, with its name:
/// a symlink's target is relative to the link's own directory, a hard link's to the
/// archive's root, and neither may leave the archive.
fn resolve_link(name: &str, members: &Members) -> Result<(String, Span), String> {
    let Members {
        documents,
        regular,
        links,
        others,
    } = members;
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
        if let Some(span) = regular.get(&target) {
            return Ok((target, *span));
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

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::image::ImageManifest;

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
        config_of(1)
    }

    /// The config of an image of `layers` layers, each [`LAYER`].
    fn config_of(layers: usize) -> Vec<u8> {
        let rootfs =
            json!({ "type": "layers", "diff_ids": vec![digest_of(LAYER).to_string(); layers] });
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
            ("config.json".to_string(), M::File(config_of(layers.len()))),
            (
                "manifest.json".to_string(),
                M::File(serde_json::to_vec(&manifest).unwrap()),
            ),
        ];
        members.extend(more.into_iter().map(|(n, m)| (n.to_string(), m)));
        members
    }

    /// The layer digests of `app:1` in the archive at `path`, each layer checked to hold
    /// [`LAYER`].
    fn read_layers(path: &Path) -> Result<Vec<String>, Error> {
        let (archive, top) = Archive::open(path, Some("app:1"))?;
        let manifest: ImageManifest =
            serde_json::from_slice(&archive.read_described(&top)?).unwrap();
        for l in manifest.layers() {
            assert_eq!(archive.read_described(l)?, LAYER, "the layer's content");
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
        let path = tar_of(d, oci(M::Hardlink(config_name.clone()), vec![]));
        let err = read_layers(&path).unwrap_err().to_string();
        assert!(
            err.contains(&format!(
                "{layer_name} links to {config_name}, not to its own content: the archive is corrupt"
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
