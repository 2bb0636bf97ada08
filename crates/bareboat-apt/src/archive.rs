//! Loading verified package indexes from archive sources into one [`Universe`].
//!
//! For each source: fetch `InRelease`, verify its signature and `Valid-Until`, then load each
//! component's `Packages` index, by hash when the archive supports it. Parsed indexes are
//! cached by the SHA256 of the file they came from, so a warm run neither downloads nor
//! parses them again.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use futures::future::try_join_all;
use sha2::{Digest, Sha256};

use crate::Error;
use crate::cache::Cache;
use crate::contents::ContentsIndex;
use crate::download::{Client, Expected, Progress};
use crate::index::{Compression, Package, PackageIndex};
use crate::keyring::Keyring;
use crate::release::{IndexEntry, Release};
use crate::sources::Source;

/// InRelease files are about 150 kB; anything far larger is not one.
const INRELEASE_LIMIT: u64 = 32 << 20;

/// How indexes are loaded.
#[derive(Clone)]
pub struct LoadOptions {
    pub arch: String,
    /// Use only what the cache holds; never touch the network.
    pub offline: bool,
    /// The keyring for sources that name none of their own.
    pub keyring: Arc<Keyring>,
    pub now: SystemTime,
}

/// A source with its verified release and parsed indexes.
pub struct LoadedSource {
    pub source: Source,
    pub release: Release,
    pub indexes: Vec<PackageIndex>,
}

/// Identifies a package across the loaded sources.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PackageId {
    source: u16,
    index: u16,
    record: u32,
}

/// Every package of every loaded source, for one architecture, and the packages a base
/// image has installed.
pub struct Universe {
    pub arch: String,
    pub sources: Vec<LoadedSource>,
    /// Packages already in the base image: they satisfy dependencies as they are, and no
    /// other version of them can be chosen.
    pub installed: Option<PackageIndex>,
}

/// The `source` of a [`PackageId`] that names an installed package.
const INSTALLED: u16 = u16::MAX;

impl Universe {
    /// The package with this id.
    pub fn package(&self, id: PackageId) -> Package<'_> {
        match &self.installed {
            Some(installed) if id.source == INSTALLED => installed.get(id.record as usize),
            _ => {
                self.sources[id.source as usize].indexes[id.index as usize].get(id.record as usize)
            }
        }
    }

    /// Whether the package is one the base image has installed.
    pub fn is_installed(&self, id: PackageId) -> bool {
        id.source == INSTALLED
    }

    /// The source a package to download comes from.
    pub fn source_of(&self, id: PackageId) -> &LoadedSource {
        &self.sources[id.source as usize]
    }

    /// Every package id for packages of this architecture or `all`: the installed ones
    /// first, then in source order.
    pub fn ids(&self) -> impl Iterator<Item = PackageId> + '_ {
        let installed = self.installed.iter().map(|idx| (INSTALLED, 0, idx));
        let indexes = self.sources.iter().enumerate().flat_map(|(s, src)| {
            src.indexes
                .iter()
                .enumerate()
                .map(move |(i, idx)| (s as u16, i as u16, idx))
        });
        installed
            .chain(indexes)
            .flat_map(move |(source, index, idx)| {
                (0..idx.len()).filter_map(move |r| {
                    let arch = idx.get(r).architecture();
                    (arch == self.arch || arch == "all").then_some(PackageId {
                        source,
                        index,
                        record: r as u32,
                    })
                })
            })
    }

    /// Loads and verifies all `sources`.
    pub async fn load(
        client: &Client,
        cache: &Cache,
        sources: &[Source],
        opts: &LoadOptions,
        progress: &dyn Progress,
    ) -> Result<Universe, Error> {
        let loaded = try_join_all(
            sources
                .iter()
                .map(|s| load_source(client, cache, s, opts, progress)),
        )
        .await?;
        Ok(Universe {
            arch: opts.arch.clone(),
            sources: loaded,
            installed: None,
        })
    }
}

/// Fetches (or, offline, reads back) a source's InRelease and verifies it.
async fn load_release(
    client: &Client,
    cache: &Cache,
    source: &Source,
    opts: &LoadOptions,
) -> Result<Release, Error> {
    let url = source.dists_url("InRelease");
    let cached = cache.release_path(&url);
    let keyring = match &source.keyring {
        Some(path) => Arc::new(Keyring::from_file(path)?),
        None => opts.keyring.clone(),
    };
    let text = if opts.offline {
        let bytes = std::fs::read(&cached).map_err(|_| Error::NotCached {
            what: format!("the release file {url}"),
        })?;
        cache.touch(&cached);
        String::from_utf8_lossy(&bytes).into_owned()
    } else {
        let bytes = client.get_small(&url, INRELEASE_LIMIT).await?;
        String::from_utf8(bytes).map_err(|_| Error::BadRelease {
            url: url.clone(),
            reason: "not UTF-8 text".into(),
        })?
    };
    let signed = verify_release(cache, &keyring, &text, &url, opts.now)?;
    let release = Release::parse(&signed, &url)?;
    // Valid-Until guards against a mirror replaying old metadata; offline there is no mirror.
    if source.check_valid_until && !opts.offline {
        release.check_valid_until(opts.now, &url)?;
    }
    if !opts.offline {
        cache.write_atomic(&cached, text.as_bytes())?;
    }
    Ok(release)
}

async fn load_source(
    client: &Client,
    cache: &Cache,
    source: &Source,
    opts: &LoadOptions,
    progress: &dyn Progress,
) -> Result<LoadedSource, Error> {
    let release = load_release(client, cache, source, opts).await?;
    let mut wanted = Vec::new();
    for component in &source.components {
        wanted.push(pick_index(&release, source, component, &opts.arch)?);
        // As apt does: a separate binary-all index only when the release has an `all`
        // architecture that its per-architecture indexes do not already include.
        let all = format!("{component}/binary-all/Packages");
        let separate_all =
            release.architectures.iter().any(|a| a == "all") && !release.all_in_arch_indexes;
        if separate_all && release.files.keys().any(|k| k.starts_with(&all)) {
            wanted.push(pick_index(&release, source, component, "all")?);
        }
    }
    let indexes = try_join_all(wanted.into_iter().map(|(path, entry, compression)| {
        let file = DistsFile {
            path,
            entry,
            compression,
        };
        load_parsed::<PackageIndex>(
            client,
            cache,
            source,
            &release,
            file,
            opts.offline,
            progress,
        )
    }))
    .await?;
    Ok(LoadedSource {
        source: source.clone(),
        release,
        indexes,
    })
}

/// Verifies an InRelease, reusing an earlier verification of the same bytes against the same
/// keyring while the signing key is still valid. The signature check is most of a warm run's
/// time, and the cache is already trusted with the parsed indexes that this text vouches for.
fn verify_release(
    cache: &Cache,
    keyring: &Keyring,
    text: &str,
    url: &str,
    now: SystemTime,
) -> Result<String, Error> {
    let sha256 = hex::encode(Sha256::digest(text.as_bytes()));
    let record = cache.verified_path(&sha256, keyring.id());
    let now_secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    if let Ok(saved) = std::fs::read_to_string(&record)
        && let Some(text) = still_verified(&saved, now_secs)
    {
        cache.touch(&record);
        return Ok(text.to_string());
    }
    let verified = keyring.verify_inrelease(text, url, now)?;
    let expires = verified
        .key_expires
        .map_or_else(|| "never".to_string(), |t| t.to_string());
    cache.write_atomic(
        &record,
        format!("key-expires {expires}\n{}", verified.text).as_bytes(),
    )?;
    Ok(verified.text)
}

/// The signed text of a verification record, if the key that signed it is still valid.
fn still_verified(record: &str, now_secs: u64) -> Option<&str> {
    let (head, text) = record.split_once('\n')?;
    let valid = match head.strip_prefix("key-expires ")? {
        "never" => true,
        t => t.parse::<u64>().ok()? >= now_secs,
    };
    valid.then_some(text)
}

/// Chooses the best-compressed `Packages` file the Release lists for a component.
fn pick_index(
    release: &Release,
    source: &Source,
    component: &str,
    arch: &str,
) -> Result<(String, IndexEntry, Compression), Error> {
    let base = format!("{component}/binary-{arch}/Packages");
    for c in [Compression::Xz, Compression::Gzip, Compression::None] {
        let path = format!("{base}{}", c.extension());
        if let Some(entry) = release.files.get(&path) {
            return Ok((path, entry.clone(), c));
        }
    }
    Err(Error::IndexMissing {
        url: source.dists_url("InRelease"),
        what: base,
    })
}

/// A dists file the Release lists: where it is, and what it must hash to.
struct DistsFile {
    path: String,
    entry: IndexEntry,
    compression: Compression,
}

/// An index kept in the cache in parsed form.
trait Parsed: Sized + Send + 'static {
    fn load(path: &std::path::Path) -> Result<Self, Error>;
    fn parse(
        input: std::io::BufReader<std::fs::File>,
        c: Compression,
        what: &str,
    ) -> Result<Self, Error>;
    fn write(&self, out: &mut std::io::BufWriter<&mut std::fs::File>) -> std::io::Result<()>;
}

impl Parsed for PackageIndex {
    fn load(path: &std::path::Path) -> Result<Self, Error> {
        PackageIndex::load(path)
    }
    fn parse(
        input: std::io::BufReader<std::fs::File>,
        c: Compression,
        what: &str,
    ) -> Result<Self, Error> {
        PackageIndex::parse(input, c, what)
    }
    fn write(&self, out: &mut std::io::BufWriter<&mut std::fs::File>) -> std::io::Result<()> {
        self.write_to(out)
    }
}

impl Parsed for ContentsIndex {
    fn load(path: &std::path::Path) -> Result<Self, Error> {
        ContentsIndex::load(path)
    }
    fn parse(
        input: std::io::BufReader<std::fs::File>,
        c: Compression,
        what: &str,
    ) -> Result<Self, Error> {
        ContentsIndex::parse(input, c, what)
    }
    fn write(&self, out: &mut std::io::BufWriter<&mut std::fs::File>) -> std::io::Result<()> {
        self.write_to(out)
    }
}

/// Loads a dists file in parsed form: from the cache, named by the SHA256 the Release gives
/// the file, or else downloaded (by hash when the archive supports it), verified, parsed as
/// it streams, and cached.
async fn load_parsed<T: Parsed>(
    client: &Client,
    cache: &Cache,
    source: &Source,
    release: &Release,
    file: DistsFile,
    offline: bool,
    progress: &dyn Progress,
) -> Result<T, Error> {
    let DistsFile {
        path,
        entry,
        compression,
    } = file;
    let parsed = cache.index_path(&entry.sha256);
    if parsed.exists() {
        cache.touch(&parsed);
        let p = parsed.clone();
        match tokio::task::spawn_blocking(move || T::load(&p))
            .await
            .expect("index loader panicked")
        {
            Ok(index) => return Ok(index),
            Err(e) => tracing::warn!("discarding unreadable cached index: {e}"),
        }
    }
    let plain_url = source.dists_url(&path);
    if offline {
        return Err(Error::NotCached {
            what: format!("the index {plain_url}"),
        });
    }
    let expected = Expected {
        size: entry.size,
        sha256: entry.sha256.clone(),
    };
    let mut tmp = cache.temp_file()?;
    let by_hash = release.acquire_by_hash.then(|| {
        let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        source.dists_url(&format!("{dir}/by-hash/SHA256/{}", entry.sha256))
    });
    let result = match &by_hash {
        Some(url) => match client
            .download(url, &expected, tmp.as_file_mut(), &path, progress)
            .await
        {
            // A mirror part-way through an update may lack the by-hash file yet.
            Err(Error::NotFound { .. }) => {
                client
                    .download(&plain_url, &expected, tmp.as_file_mut(), &path, progress)
                    .await
            }
            other => other,
        },
        None => {
            client
                .download(&plain_url, &expected, tmp.as_file_mut(), &path, progress)
                .await
        }
    };
    result?;
    progress.done(&path);
    let what = plain_url.clone();
    let tmp_path: PathBuf = tmp.path().to_path_buf();
    let index = tokio::task::spawn_blocking(move || {
        let f = std::fs::File::open(&tmp_path).map_err(|e| Error::io(&tmp_path, e))?;
        T::parse(
            std::io::BufReader::with_capacity(1 << 16, f),
            compression,
            &what,
        )
    })
    .await
    .expect("index parser panicked")?;
    drop(tmp);
    let mut out = cache.temp_file()?;
    let mut writer = std::io::BufWriter::new(out.as_file_mut());
    index
        .write(&mut writer)
        .and_then(|()| std::io::Write::flush(&mut writer))
        .map_err(|e| Error::io(&parsed, e))?;
    drop(writer);
    cache.commit(out, &parsed)?;
    Ok(index)
}

/// The Contents indexes of a loaded universe's sources, one per component that publishes
/// one, verified against the same Release files as its package indexes.
pub async fn load_contents(
    client: &Client,
    cache: &Cache,
    universe: &Universe,
    offline: bool,
    progress: &dyn Progress,
) -> Result<Vec<ContentsIndex>, Error> {
    let mut wanted = Vec::new();
    for loaded in &universe.sources {
        for component in &loaded.source.components {
            let base = format!("{component}/Contents-{}", universe.arch);
            let found = [Compression::Gzip, Compression::Xz, Compression::None]
                .into_iter()
                .find_map(|c| {
                    let path = format!("{base}{}", c.extension());
                    loaded.release.files.get(&path).map(|entry| DistsFile {
                        path,
                        entry: entry.clone(),
                        compression: c,
                    })
                });
            if let Some(file) = found {
                wanted.push((loaded, file));
            }
        }
    }
    try_join_all(wanted.into_iter().map(|(loaded, file)| async move {
        let (source, release) = (&loaded.source, &loaded.release);
        load_parsed(client, cache, source, release, file, offline, progress).await
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::still_verified;

    #[test]
    fn verification_records_lapse_with_their_key() {
        assert_eq!(
            still_verified("key-expires never\nOrigin: x\n", 5),
            Some("Origin: x\n")
        );
        assert_eq!(
            still_verified("key-expires 10\nOrigin: x\n", 10),
            Some("Origin: x\n")
        );
        assert_eq!(still_verified("key-expires 10\nOrigin: x\n", 11), None);
        assert_eq!(still_verified("key-expires soon\nOrigin: x\n", 1), None);
        assert_eq!(still_verified("Origin: x\n", 1), None);
    }
}
