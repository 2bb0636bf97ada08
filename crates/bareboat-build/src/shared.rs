//! The registry as a build cache that many machines share: `--cache-to` publishes what a
//! build's package layers are, and `--cache-from` builds on them without their packages.
//!
//! A package layer's identity is known before its bytes exist: its saved-tree key (its
//! packages, the layers below, the unpacking settings) with the layer writer's settings
//! (format, compression, mtime clamp). A published map takes each identity to the layer's
//! blob, with what the later steps of a build read from the layer: its nodes, the contents
//! they read (licences for the SBOM, `ld.so.conf`, the CA bundle, JVM and PHP metadata), and
//! the symbol versions its libraries define (for the ABI guard).
//!
//! The map is an OCI artifact of type [`ARTIFACT_TYPE`] under a tag: its first layer is the
//! map in a DSSE envelope signed with the publisher's key, and its other layers are the
//! blobs the map names, so the cache repository holds every blob of its map and a registry's
//! garbage collection keeps them. A reader trusts a map only when the key it was given
//! verifies the envelope: a digest alone cannot tell a forged entry from a true one, since
//! the forger chooses the blob too.
//!
//! Publishing reads the map under the tag, keeps the entries whose blobs the repository
//! still holds, adds this build's, drops the oldest beyond [`KEEP_ENTRIES`] and
//! [`KEEP_BYTES`], signs the result and moves the tag. Two publishers to one tag race and
//! the last writer wins: an entry lost so costs a rebuild, never a wrong image. Runners that
//! must keep every entry publish under tags of their own, and readers name them all.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use bareboat_oci::attach::Staged;
use bareboat_oci::blob::Blob;
use bareboat_oci::digest::Digest;
use bareboat_oci::layer::{LayerBlob, LayerWriter};
use bareboat_oci::media::Kind;
use bareboat_oci::mutate::Union;
use bareboat_oci::reference::DockerName;
use bareboat_oci::referrer::Referrer;
use bareboat_oci::registry::{PushReport, Registry, RegistryOptions, Remote};
use bareboat_oci::source::BlobSource;
use bareboat_rootfs::rootfs::{ELSEWHERE, Node, NodeKind, Rootfs, Segment, Snapshot};
use bareboat_sign::formats::Envelope;
use bareboat_sign::key::{KeyPair, PublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use oci_spec::image::{Descriptor, ImageManifest, MediaType};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::Error;

/// The artifact type of a published map, and the payload type of its envelope.
pub const ARTIFACT_TYPE: &str = "application/vnd.bareboat.cache.v1+json";

/// The media type of the map's layer: a DSSE envelope.
const ENVELOPE_TYPE: &str = "application/vnd.dsse.envelope.v1+json";

/// The largest map a reader takes. It is a blob, not a document (a layer's node list is
/// large), so it has a cap of its own; it is read whole, so the cap is also its memory.
pub const MAX_MAP_BYTES: u64 = 64 << 20;

/// The most entries a map may hold.
pub const MAX_ENTRIES: usize = 10_000;

/// A publisher keeps at most this many entries, the newest...
pub const KEEP_ENTRIES: usize = 1_000;

/// ...and at most this many bytes of them, so a map it writes stays under
/// [`MAX_MAP_BYTES`] once in its envelope (Base64 grows it by a third).
pub const KEEP_BYTES: usize = 40 << 20;

/// Bumped when what a map means changes; a map of another version is not used.
const MAP_VERSION: u32 = 1;

/// The identity of the package layer whose saved-tree key is `tree_key`, written by
/// `writer`: everything its bytes depend on, known before they exist.
pub fn identity(tree_key: &str, writer: &LayerWriter) -> String {
    let mut h = Sha256::new();
    h.update(format!(
        "bareboat layer identity\n{}{tree_key}\n",
        writer.settings()
    ));
    hex::encode(h.finalize())
}

/// What a map records of one package layer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Recorded {
    /// The blob's media type.
    pub media_type: String,
    /// The blob's digest.
    pub digest: String,
    /// Its size.
    pub size: u64,
    /// The digest of its tar.
    pub diff_id: String,
    /// The size of its tar.
    pub uncompressed_size: u64,
    /// The layer's time (its newest entry's mtime, clamped).
    pub created: u64,
    /// Its nodes by path; a regular file's offset means nothing here.
    pub nodes: BTreeMap<String, Node>,
    /// The contents later steps read, Base64, by path.
    #[serde(default)]
    pub contents: BTreeMap<String, String>,
    /// The symbol versions each shared library defines, by path.
    #[serde(default)]
    pub versions: BTreeMap<String, BTreeSet<String>>,
}

/// One entry of a map.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entry {
    /// The repository that holds the blob: the map's own.
    pub repository: String,
    /// When it was last published, in seconds since the epoch: the oldest go first.
    pub published: u64,
    /// The layer.
    #[serde(flatten)]
    pub layer: Recorded,
}

/// A map as it is signed.
#[derive(Default, Serialize, Deserialize)]
struct Map {
    version: u32,
    entries: BTreeMap<String, Entry>,
}

/// Whether a later step of a build reads the content of the file at `path`: the SBOM's
/// licences, the ABI guard's `ld.so.conf`, the CA bundle that the spec's certificates join,
/// the JVMs' `.jinfo` files and PHP's module ini files that alternatives and PHP's
/// configuration read.
fn read_later(path: &str) -> bool {
    let doc = path
        .strip_prefix("usr/share/doc/")
        .is_some_and(|p| p.ends_with("/copyright") && p.matches('/').count() == 1);
    let jinfo = path
        .strip_prefix("usr/lib/jvm/.")
        .is_some_and(|p| p.ends_with(".jinfo") && !p.contains('/'));
    let php_ini = path.starts_with("usr/share/php")
        && path.ends_with(".ini")
        && path.matches('/').count() == 4;
    doc || jinfo
        || php_ini
        || path == "etc/ld.so.conf"
        || path.starts_with("etc/ld.so.conf.d/")
        || path == crate::content::BUNDLE
}

/// Whether the file at `path` may be a shared library, whose symbol versions the ABI guard
/// reads.
fn may_be_library(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or_default();
    name.contains(".so")
}

/// Records layer `layer` of `tree`, written as `blob`.
pub(crate) fn record(tree: &Rootfs, layer: usize, blob: &LayerBlob) -> Result<Recorded, Error> {
    let mut nodes = tree.layer_nodes(layer).clone();
    let mut contents = BTreeMap::new();
    let mut versions = BTreeMap::new();
    for (path, node) in nodes.iter_mut() {
        let NodeKind::File { offset, .. } = &mut node.kind else {
            continue;
        };
        *offset = 0;
        let (read, library) = (read_later(path), may_be_library(path));
        if !read && !library {
            continue;
        }
        let bytes = tree
            .read_in(layer, path)
            .expect("a file of the layer")
            .map_err(|error| bareboat_rootfs::Error::Io {
                origin: format!("recording /{path} for the shared cache"),
                error,
            })?;
        if read {
            contents.insert(path.clone(), BASE64.encode(&bytes));
        }
        // An empty set is recorded too: a library that defines no versions fails every
        // versioned need, as it does read whole.
        if library && let Ok(defined) = bareboat_elf::version_definitions(&bytes) {
            versions.insert(path.clone(), defined);
        }
    }
    Ok(Recorded {
        media_type: blob.media_type.to_string(),
        digest: blob.digest.to_string(),
        size: blob.size,
        diff_id: blob.diff_id.to_string(),
        uncompressed_size: blob.uncompressed_size,
        created: blob.created,
        nodes,
        contents,
        versions,
    })
}

impl Recorded {
    /// The layer blob it describes.
    pub(crate) fn blob(&self) -> Result<LayerBlob, String> {
        let Kind::Layer(compression) = Kind::of(&self.media_type) else {
            return Err(format!("{} is not a layer's media type", self.media_type));
        };
        Ok(LayerBlob {
            digest: Digest::named(&self.digest).map_err(|e| e.to_string())?,
            diff_id: Digest::named(&self.diff_id).map_err(|e| e.to_string())?,
            size: self.size,
            uncompressed_size: self.uncompressed_size,
            media_type: compression.media_type(),
            created: self.created,
        })
    }

    /// The blob, to be checked against its digest and diff_id as it is read.
    pub(crate) fn checked_blob(&self) -> Result<Blob, Error> {
        let diff_id = Digest::named(&self.diff_id)?;
        Ok(Blob {
            descriptor: self.descriptor()?,
            diff_id: Some(diff_id),
        })
    }

    /// The blob's descriptor.
    fn descriptor(&self) -> Result<Descriptor, Error> {
        let digest = oci_spec::image::Digest::try_from(self.digest.clone())
            .map_err(bareboat_oci::Error::from)?;
        Ok(Descriptor::new(
            MediaType::Other(self.media_type.clone()),
            self.size,
            digest,
        ))
    }

    /// Refuses a record that a build could not stand on: a path out of the root, a blob
    /// that is not a layer, a content unlike its node.
    fn check(&self) -> Result<(), String> {
        self.blob()?;
        for (path, node) in &self.nodes {
            let not_normal =
                |why: &str| format!("node {path:?} is not a normal path in the root{why}");
            let normal = bareboat_oci::overlay::normalize(path)
                .map_err(|e| not_normal(&format!(": {e}")))?;
            if normal != *path || path.is_empty() {
                return Err(not_normal(""));
            }
            if let NodeKind::Hardlink(target) = &node.kind
                && !matches!(
                    self.nodes.get(target).map(|n| &n.kind),
                    Some(NodeKind::File { .. })
                )
            {
                return Err(format!("hard link {path:?} names no file of the layer"));
            }
        }
        for (path, content) in &self.contents {
            let bytes = BASE64
                .decode(content)
                .map_err(|_| format!("the content of {path:?} is not Base64"))?;
            let Some(NodeKind::File { size, sha256, .. }) = self.nodes.get(path).map(|n| &n.kind)
            else {
                return Err(format!(
                    "content for {path:?}, which is no file of the layer"
                ));
            };
            if bytes.len() as u64 != *size || <[u8; 32]>::from(Sha256::digest(&bytes)) != *sha256 {
                return Err(format!("the content of {path:?} is not its node's"));
            }
        }
        Ok(())
    }
}

/// Symbol versions recorded for libraries whose content is elsewhere, by path.
pub type Versions = HashMap<String, BTreeSet<String>>;

/// What a tree resumed from recorded layers stands on: the layers' blobs, and the versions
/// their libraries define. The segment of recorded contents lives as long as this.
pub(crate) struct Resumed {
    pub(crate) blobs: Vec<LayerBlob>,
    pub(crate) versions: Versions,
    pub(crate) _segment: tempfile::NamedTempFile,
}

/// The tree that `layers`, bottom first, make: recorded contents staged in a new segment
/// under `tmp`, every other file's content held [`ELSEWHERE`].
pub(crate) fn resume(layers: &[&Entry], tmp: &Path) -> Result<(Snapshot, Resumed), Error> {
    let io = |error| bareboat_rootfs::Error::Io {
        origin: tmp.display().to_string(),
        error,
    };
    let mut segment = tempfile::Builder::new()
        .prefix("bareboat-recorded-")
        .tempfile_in(tmp)
        .map_err(io)?;
    let mut staged = 0u64;
    let mut snapshot = Snapshot {
        layers: Vec::new(),
        segments: Vec::new(),
    };
    let mut blobs = Vec::new();
    let mut versions = Versions::new();
    for entry in layers {
        let layer = &entry.layer;
        let mut nodes = layer.nodes.clone();
        for (path, node) in nodes.iter_mut() {
            let NodeKind::File { offset, .. } = &mut node.kind else {
                continue;
            };
            *offset = match layer.contents.get(path) {
                Some(content) => {
                    let bytes = BASE64
                        .decode(content)
                        .expect("checked when the map was read");
                    segment.write_all(&bytes).map_err(io)?;
                    staged += bytes.len() as u64;
                    staged - bytes.len() as u64
                }
                None => ELSEWHERE,
            };
        }
        snapshot.layers.push(nodes);
        blobs.push(layer.blob().expect("checked when the map was read"));
        versions.extend(layer.versions.clone());
    }
    segment.flush().map_err(io)?;
    if staged > 0 {
        snapshot.segments.push(Segment {
            path: segment.path().to_path_buf(),
            start: 0,
            len: staged,
        });
    }
    let resumed = Resumed {
        blobs,
        versions,
        _segment: segment,
    };
    Ok((snapshot, resumed))
}

/// The maps `--cache-from` names, read and verified.
pub struct SharedCache {
    /// Each map's repository, to read and check its blobs.
    sources: Vec<Remote>,
    /// Each known identity's entry, and the map it came from.
    entries: HashMap<String, (usize, Entry)>,
    /// Whether each blob asked about was still in the repository of the map it came from.
    present: std::sync::Mutex<HashMap<(usize, String), bool>>,
    /// What the reader should know: maps absent, entries stale.
    pub notes: std::sync::Mutex<Vec<String>>,
}

impl SharedCache {
    /// Reads the maps under `names`, each verified with `key`. A map that is absent is
    /// noted; one that is unsigned, signed by another key, or over a cap is refused: not
    /// used, with a warning, and the build goes on without it (so whoever can push junk to a
    /// cache tag cannot stop the builds that would publish a good map there again).
    pub async fn open(
        names: &[DockerName],
        key: &PublicKey,
        registry: &RegistryOptions,
    ) -> Result<SharedCache, Error> {
        let mut cache = SharedCache {
            sources: Vec::new(),
            entries: HashMap::new(),
            present: Default::default(),
            notes: Default::default(),
        };
        for name in names {
            let client = Registry::new(registry, &name.registry)?;
            let Some((remote, top)) = Remote::open_if_any(client, name).await? else {
                cache.note(format!(
                    "{}: no cache map there yet; every layer is built",
                    name.full()
                ));
                continue;
            };
            let (map, dropped) = match read_map(&remote, &top, key, name) {
                Ok(read) => read,
                Err(e @ Error::CacheMap { .. }) => {
                    tracing::warn!("{e}");
                    cache.note(format!("refused, and built without: {e}"));
                    continue;
                }
                Err(e) => return Err(e),
            };
            for note in dropped {
                cache.note(note);
            }
            let i = cache.sources.len();
            for (id, entry) in map.entries {
                if entry.repository != format!("{}/{}", name.registry, name.repository) {
                    cache.note(format!(
                        "{}: entry {id} names its blob in {}, not the map's repository: not used",
                        name.full(),
                        entry.repository
                    ));
                    continue;
                }
                // Of two maps that know a layer, the newer entry is taken.
                let newer =
                    (cache.entries.get(&id)).is_none_or(|(_, e)| e.published < entry.published);
                if newer {
                    cache.entries.insert(id, (i, entry));
                }
            }
            cache.sources.push(remote);
        }
        Ok(cache)
    }

    /// Tells the user `note`, and keeps it for the report.
    pub(crate) fn note(&self, note: String) {
        tracing::info!("{note}");
        self.notes.lock().expect("not poisoned").push(note);
    }

    /// The entries of the longest run of `identities`, from the first, that the maps know
    /// and whose blobs their repositories still hold (asked by HEAD). Where the run stops
    /// at an entry that is stale, that is noted.
    pub fn known(&self, identities: &[String]) -> Vec<&Entry> {
        let mut run = Vec::new();
        for id in identities {
            let Some((i, entry)) = self.entries.get(id) else {
                break;
            };
            if !self.holds(*i, &entry.layer.digest) {
                self.note(format!(
                    "layer {} ({id}) is in the cache map but its blob is gone from {}: it is built",
                    entry.layer.digest, entry.repository
                ));
                break;
            }
            run.push(entry);
        }
        run
    }

    /// Whether map `i`'s repository holds the blob `digest`; a failed check counts as no.
    fn holds(&self, i: usize, digest: &str) -> bool {
        let key = (i, digest.to_string());
        if let Some(&known) = self.present.lock().expect("not poisoned").get(&key) {
            return known;
        }
        let held = Digest::named(digest)
            .and_then(|d| self.sources[i].has_blob(&d))
            .unwrap_or_else(|e| {
                self.note(format!("checking {digest} in the cache: {e}"));
                false
            });
        (self.present.lock().expect("not poisoned")).insert(key, held);
        held
    }

    /// The repository of a map that holds the blob `digest`, as a HEAD request found.
    fn source_of(&self, digest: &str) -> Option<&Remote> {
        let present = self.present.lock().expect("not poisoned");
        let i = (0..self.sources.len())
            .find(|&i| present.get(&(i, digest.to_string())) == Some(&true))?;
        Some(&self.sources[i])
    }
}

/// Reads the map of the cache artifact `top` in `remote` (named `name`), verified with
/// `key`; with what it says of the entries it dropped.
fn read_map(
    remote: &Remote,
    top: &Descriptor,
    key: &PublicKey,
    name: &DockerName,
) -> Result<(Map, Vec<String>), Error> {
    let refused = |reason: String| Error::CacheMap {
        name: name.full(),
        reason,
    };
    let manifest: ImageManifest = serde_json::from_slice(&remote.read_described(top)?)
        .map_err(|e| refused(format!("its manifest does not parse: {e}")))?;
    let artifact = manifest.artifact_type().as_ref().map(ToString::to_string);
    if artifact.as_deref() != Some(ARTIFACT_TYPE) {
        return Err(refused(format!(
            "it is not a bareboat cache map (artifact type {})",
            artifact.as_deref().unwrap_or("none")
        )));
    }
    let Some(first) = manifest.layers().first() else {
        return Err(refused("it holds no map".into()));
    };
    if first.size() > MAX_MAP_BYTES {
        return Err(refused(format!(
            "its map is {} bytes; a map may have at most {MAX_MAP_BYTES}",
            first.size()
        )));
    }
    let mut bytes = Vec::new();
    remote
        .open_blob(&Blob::of(first))?
        .take(MAX_MAP_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| bareboat_oci::Error::from_stream(remote.name(), e))?;
    let envelope: Envelope = serde_json::from_slice(&bytes)
        .map_err(|e| refused(format!("its map is not a signed envelope: {e}")))?;
    if envelope.signatures.is_empty() {
        return Err(refused(
            "its map is not signed: a cache map is trusted only when signed".into(),
        ));
    }
    if envelope.payload_type != ARTIFACT_TYPE {
        return Err(refused(format!(
            "its envelope holds {}, not a cache map",
            envelope.payload_type
        )));
    }
    let Some(payload) = envelope.verified(key) else {
        return Err(refused(
            "its signature is not valid for the key --cache-verify-key names".into(),
        ));
    };
    let mut map: Map = serde_json::from_slice(&payload)
        .map_err(|e| refused(format!("its map does not parse: {e}")))?;
    if map.version != MAP_VERSION {
        return Err(refused(format!(
            "it is a map of version {}; this bareboat reads version {MAP_VERSION}",
            map.version
        )));
    }
    if map.entries.len() > MAX_ENTRIES {
        return Err(refused(format!(
            "it has {} entries; a map may have at most {MAX_ENTRIES}",
            map.entries.len()
        )));
    }
    // A signed map can still hold an entry no build could stand on (a publisher's bug):
    // that entry is dropped, and its layer built as if the map did not know it.
    let mut dropped = Vec::new();
    map.entries.retain(|id, entry| match entry.layer.check() {
        Ok(()) => true,
        Err(reason) => {
            dropped.push(format!("{}: entry {id} is not used: {reason}", name.full()));
            false
        }
    });
    Ok((map, dropped))
}

/// The blobs an image reaches: those of its layout, and those only a cache repository
/// holds, which a push mounts from there (or finds present) instead of uploading, and a copy
/// streams from there, checked.
pub struct WithShared<'a> {
    /// The layout the image was written to.
    pub layout: &'a dyn BlobSource,
    /// The repository the layout's blobs were pushed to, if any: a later push to another
    /// repository of that registry mounts them from there.
    pub pushed: Option<DockerName>,
    /// The maps the build used.
    pub shared: Option<&'a SharedCache>,
}

impl WithShared<'_> {
    /// The cache repository holding `d`'s blob, when the layout lacks it.
    fn remote(&self, d: &Descriptor) -> Option<&Remote> {
        let shared = self.shared?;
        match self.layout.check_present(d) {
            Ok(()) => None,
            Err(_) => shared.source_of(d.digest().as_ref()),
        }
    }
}

impl BlobSource for WithShared<'_> {
    fn name(&self) -> String {
        self.layout.name()
    }

    fn stored(&self, d: &Descriptor) -> Result<Box<dyn Read + Send>, bareboat_oci::Error> {
        match self.remote(d) {
            Some(remote) => remote.stored(d),
            None => self.layout.stored(d),
        }
    }

    fn check_present(&self, d: &Descriptor) -> Result<(), bareboat_oci::Error> {
        match self.remote(d) {
            Some(_) => Ok(()),
            None => self.layout.check_present(d),
        }
    }

    fn origin(&self, d: &Descriptor) -> Option<DockerName> {
        match self.remote(d) {
            Some(remote) => remote.origin(d),
            None => self.pushed.clone(),
        }
    }

    fn referrers(&self, subjects: &[Descriptor]) -> Result<Vec<Referrer>, bareboat_oci::Error> {
        self.layout.referrers(subjects)
    }

    fn tagged(&self, tag: &str) -> Result<Option<Descriptor>, bareboat_oci::Error> {
        self.layout.tagged(tag)
    }

    fn concurrency(&self) -> usize {
        let remote = (self.shared.into_iter())
            .flat_map(|s| &s.sources)
            .map(|r| r.concurrency());
        remote.fold(self.layout.concurrency(), usize::max)
    }
}

/// What publishing a map did.
#[derive(Debug, Serialize)]
pub struct Published {
    /// Where.
    pub map: String,
    /// The entries it holds now.
    pub entries: usize,
    /// The entries this build added or renewed.
    pub recorded: usize,
    /// Entries of the map before that were dropped: their blobs gone, or the oldest beyond
    /// the bounds.
    pub dropped: usize,
    /// What the push did.
    pub push: PushReport,
}

/// Publishes `recorded` (identity and layer) to the map under `name`, signed with `key`,
/// merged with the map there (when `key` verifies it). The blobs come from `blobs`.
pub async fn publish(
    name: &DockerName,
    key: &KeyPair,
    recorded: Vec<(String, Recorded)>,
    blobs: &dyn BlobSource,
    registry: &RegistryOptions,
) -> Result<Published, Error> {
    let repository = format!("{}/{}", name.registry, name.repository);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let client = Registry::new(registry, &name.registry)?;
    let mut map = Map {
        version: MAP_VERSION,
        entries: BTreeMap::new(),
    };
    let mut dropped = 0;
    // The blobs of the entries kept from the map there, which its repository holds (a HEAD
    // said so): the push finds them present, and never reads them.
    let mut held = Vec::new();
    let existing = Remote::open_if_any(client, name).await?;
    if let Some((remote, top)) = &existing {
        match read_map(remote, top, &key.public(), name) {
            Ok((old, unusable)) => {
                dropped += unusable.len();
                for (id, entry) in old.entries {
                    let there =
                        Digest::named(&entry.layer.digest).and_then(|d| remote.has_blob(&d));
                    if entry.repository == repository && matches!(there, Ok(true)) {
                        held.push(entry.layer.descriptor()?);
                        map.entries.insert(id, entry);
                    } else {
                        dropped += 1;
                    }
                }
            }
            Err(e @ Error::CacheMap { .. }) => tracing::warn!("{e}: it is replaced, not merged"),
            Err(e) => return Err(e),
        }
    }
    let count = recorded.len();
    let built = (recorded.iter())
        .map(|(_, layer)| layer.descriptor())
        .collect::<Result<Vec<_>, _>>()?;
    for (id, layer) in recorded {
        let entry = Entry {
            repository: repository.clone(),
            published: now,
            layer,
        };
        map.entries.insert(id, entry);
    }
    dropped += trim(&mut map);
    let payload = serde_json::to_vec(&map).expect("a map serialises");
    let envelope = Envelope::sign(key, ARTIFACT_TYPE, &payload);
    let envelope = serde_json::to_vec(&envelope).expect("an envelope serialises");
    let mut listed: Vec<Descriptor> = Vec::new();
    let mut seen = BTreeSet::new();
    for entry in map.entries.values() {
        if seen.insert(entry.layer.digest.clone()) {
            listed.push(entry.layer.descriptor()?);
        }
    }
    let mut sources = Union::new().with(blobs, &built);
    if let Some((remote, _)) = &existing {
        sources = sources.with(remote, &held);
    }
    let mut staged = Staged::over(Some(&sources));
    let top = staged.listing(ARTIFACT_TYPE, ENVELOPE_TYPE, envelope, listed)?;
    let client = Registry::new(registry, &name.registry)?;
    let push = client.push(&staged, &top, name, true).await?;
    Ok(Published {
        map: name.full(),
        entries: map.entries.len(),
        recorded: count,
        dropped,
        push,
    })
}

/// Drops the oldest entries of `map` beyond [`KEEP_ENTRIES`] and [`KEEP_BYTES`]; returns
/// how many.
fn trim(map: &mut Map) -> usize {
    let mut by_age: Vec<(u64, String, usize)> = (map.entries.iter())
        .map(|(id, e)| {
            let size = serde_json::to_vec(e).map_or(0, |b| b.len());
            (e.published, id.clone(), size)
        })
        .collect();
    by_age.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let (mut kept, mut bytes, mut dropped) = (0, 0, 0);
    for (_, id, size) in by_age {
        if kept < KEEP_ENTRIES && bytes + size <= KEEP_BYTES {
            (kept, bytes) = (kept + 1, bytes + size);
        } else {
            map.entries.remove(&id);
            dropped += 1;
        }
    }
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;
    use bareboat_oci::media::Compression;

    fn file(content: &[u8]) -> Node {
        Node {
            kind: NodeKind::File {
                offset: 0,
                size: content.len() as u64,
                sha256: Sha256::digest(content).into(),
            },
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 1,
            package: Some("p".into()),
        }
    }

    fn recorded(nodes: &[(&str, Node)], contents: &[(&str, &[u8])]) -> Recorded {
        let digest = format!("sha256:{}", "a".repeat(64));
        Recorded {
            media_type: Compression::Gzip.media_type().into(),
            digest: digest.clone(),
            size: 1,
            diff_id: digest,
            uncompressed_size: 1,
            created: 1,
            nodes: nodes
                .iter()
                .map(|(p, n)| (p.to_string(), n.clone()))
                .collect(),
            contents: (contents.iter())
                .map(|(p, c)| (p.to_string(), BASE64.encode(c)))
                .collect(),
            versions: BTreeMap::new(),
        }
    }

    #[test]
    fn the_contents_later_steps_read_are_recorded_and_no_others() {
        for path in [
            "usr/share/doc/libc6/copyright",
            "etc/ld.so.conf",
            "etc/ld.so.conf.d/x86_64-linux-gnu.conf",
            "etc/ssl/certs/ca-certificates.crt",
            "usr/lib/jvm/.java-1.21.0-openjdk-amd64.jinfo",
            "usr/share/php8.4-common/common/ctype.ini",
        ] {
            assert!(read_later(path), "{path}");
        }
        for path in [
            "usr/share/doc/libc6/changelog.gz",
            "usr/share/doc/libc6/examples/copyright",
            "usr/lib/x86_64-linux-gnu/libc.so.6",
            "usr/lib/jvm/java-21/.jinfo/x",
            "etc/passwd",
        ] {
            assert!(!read_later(path), "{path}");
        }
        assert!(may_be_library("usr/lib/x86_64-linux-gnu/libssl.so.3"));
        assert!(!may_be_library("usr/bin/python3.13"));
    }

    #[test]
    fn a_record_a_build_could_not_stand_on_is_refused() {
        let text = b"licence";
        let good = recorded(
            &[("usr/share/doc/p/copyright", file(text))],
            &[("usr/share/doc/p/copyright", text)],
        );
        good.check().unwrap();
        let cases: Vec<(Recorded, &str)> = vec![
            (
                recorded(&[("../etc/passwd", file(text))], &[]),
                "is not a normal path in the root",
            ),
            (
                recorded(&[("/etc/passwd", file(text))], &[]),
                "is not a normal path in the root",
            ),
            (
                recorded(&[("a", file(text))], &[("a", b"other bytes, same node")]),
                "is not its node's",
            ),
            (
                recorded(&[], &[("a", text)]),
                "which is no file of the layer",
            ),
            (
                recorded(
                    &[(
                        "b",
                        Node {
                            kind: NodeKind::Hardlink("missing".into()),
                            ..file(text)
                        },
                    )],
                    &[],
                ),
                "names no file of the layer",
            ),
            (
                Recorded {
                    media_type: "application/vnd.oci.image.config.v1+json".into(),
                    ..good.clone()
                },
                "is not a layer's media type",
            ),
        ];
        for (record, reason) in cases {
            let e = record.check().unwrap_err();
            assert!(e.contains(reason), "{e}");
        }
    }

    #[test]
    fn an_identity_covers_the_tree_and_every_writer_setting() {
        let gzip = LayerWriter::new(Compression::Gzip, None);
        let id = identity("tree", &gzip);
        assert_eq!(
            id,
            identity("tree", &LayerWriter::new(Compression::Gzip, None))
        );
        assert_ne!(id, identity("other tree", &gzip));
        assert_ne!(
            id,
            identity("tree", &LayerWriter::new(Compression::Zstd, None))
        );
        assert_ne!(
            id,
            identity("tree", &LayerWriter::new(Compression::Gzip, Some(1)))
        );
    }

    #[test]
    fn a_publisher_keeps_the_newest_entries_within_its_bounds() {
        let mut map = Map {
            version: MAP_VERSION,
            entries: BTreeMap::new(),
        };
        for i in 0..KEEP_ENTRIES + 5 {
            let entry = Entry {
                repository: "r/c".into(),
                published: i as u64,
                layer: recorded(&[], &[]),
            };
            map.entries.insert(format!("{i:04}"), entry);
        }
        assert_eq!(trim(&mut map), 5);
        assert_eq!(map.entries.len(), KEEP_ENTRIES);
        let oldest = map.entries.values().map(|e| e.published).min();
        assert_eq!(oldest, Some(5), "the oldest went first");
        // Large entries: the byte bound drops the oldest of them too.
        let newest: Vec<String> = map.entries.keys().rev().take(4).cloned().collect();
        map.entries.retain(|id, _| newest.contains(id));
        let big = "x".repeat(KEEP_BYTES / 3);
        for e in map.entries.values_mut() {
            e.layer
                .contents
                .insert("usr/share/doc/p/copyright".into(), big.clone());
        }
        trim(&mut map);
        assert_eq!(map.entries.len(), 2);
        let kept: Vec<u64> = map.entries.values().map(|e| e.published).collect();
        assert_eq!(kept, [KEEP_ENTRIES as u64 + 3, KEEP_ENTRIES as u64 + 4]);
    }
}
