//! Loading verified package indexes from archive sources into one [`Universe`].
//!
//! For each source: fetch `InRelease`, verify its signature and `Valid-Until`, then load each
//! component's `Packages` index, by hash when the archive supports it. Parsed indexes are
//! cached by the SHA256 of the file they came from, so a warm run neither downloads nor
//! parses them again.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use debversion::Version;
use futures::future::try_join_all;
use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;

use crate::Error;
use crate::cache::Cache;
use crate::contents::ContentsIndex;
use crate::download::{Client, Expected, Progress, Served};
use crate::index::{Compression, Package, PackageIndex};
use crate::keyring::Keyring;
use crate::lockfile::LockedSource;
use crate::release::{IndexEntry, Release};
use crate::sources::Source;

/// InRelease files are about 150 kB; anything far larger is not one.
const INRELEASE_LIMIT: u64 = 32 << 20;

/// How indexes are loaded.
#[derive(Clone)]
pub struct LoadOptions {
    /// The Debian architecture to load, such as `amd64`; `all` packages come with it.
    pub arch: String,
    /// Use only what the cache holds; never touch the network.
    pub offline: bool,
    /// The keyring for sources that name none of their own.
    pub keyring: Arc<Keyring>,
    /// The time `Valid-Until` and signing keys' expiry are checked against.
    pub now: SystemTime,
    /// The sources an earlier lock was made from: a Release older than the one a source was
    /// locked against is refused, like one older than the newest the cache has seen.
    pub locked: Vec<LockedSource>,
    /// Accept a Release older than one already seen (a snapshot mirror, on purpose).
    pub allow_older_release: bool,
    /// The InReleases (by the SHA256 of their bytes) accepted however old they are: those a
    /// rebuild's provenance names.
    pub accept_releases: Vec<String>,
}

/// A source with its verified release and parsed indexes.
pub struct LoadedSource {
    /// The source as configured.
    pub source: Source,
    /// Its Release file, parsed from the verified InRelease.
    pub release: Release,
    /// Its `Packages` indexes: one per component, and a separate `binary-all` one where the
    /// archive publishes it.
    pub indexes: Vec<PackageIndex>,
    /// The keys its Release was verified with.
    pub keyring: Arc<Keyring>,
    /// The SHA256 of the InRelease's bytes, in hex.
    pub inrelease_sha256: String,
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
    /// The architecture the packages are for; `all` packages are included with it.
    pub arch: String,
    /// The loaded sources, in the order they were given.
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
        self.indexes()
            .flat_map(move |i| self.ids_of(i, 0..i.2.len()))
    }

    /// Each index with the `source` and `index` parts of its ids: the installed packages
    /// first, then in source order.
    fn indexes(&self) -> impl Iterator<Item = (u16, u16, &PackageIndex)> + '_ {
        let installed = self.installed.iter().map(|idx| (INSTALLED, 0, idx));
        let indexes = self.sources.iter().enumerate().flat_map(|(s, src)| {
            src.indexes
                .iter()
                .enumerate()
                .map(move |(i, idx)| (s as u16, i as u16, idx))
        });
        installed.chain(indexes)
    }

    /// The ids of `records` of an index, for this architecture or `all`.
    fn ids_of<'a>(
        &'a self,
        (source, index, idx): (u16, u16, &'a PackageIndex),
        records: impl Iterator<Item = usize> + 'a,
    ) -> impl Iterator<Item = PackageId> + 'a {
        records.filter_map(move |r| {
            let arch = idx.get(r).architecture();
            (arch == self.arch || arch == "all").then_some(PackageId {
                source,
                index,
                record: r as u32,
            })
        })
    }

    /// The packages named `name`, in the order of [`Universe::ids`].
    pub fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = PackageId> + 'a {
        self.indexes()
            .flat_map(move |i| self.ids_of(i, i.2.named(name)))
    }

    /// Whether any package is named `name`.
    pub fn has(&self, name: &str) -> bool {
        self.named(name).next().is_some()
    }

    /// The packages that provide `name`, in the order of [`Universe::ids`].
    pub fn providing<'a>(&'a self, name: &'a str) -> impl Iterator<Item = PackageId> + 'a {
        self.indexes()
            .flat_map(move |i| self.ids_of(i, i.2.providing(name)))
    }

    /// Every package name, in no particular order; a name may repeat.
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.indexes().flat_map(|(_, _, idx)| idx.names())
    }

    /// The newest package of this name that the sources have (not the base image).
    pub fn newest(&self, name: &str) -> Option<PackageId> {
        self.named(name)
            .filter(|&id| !self.is_installed(id))
            .filter_map(|id| Some((self.package(id).version().parse::<Version>().ok()?, id)))
            .max_by(|a, b| a.0.cmp(&b.0))
            .map(|(_, id)| id)
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

/// Fetches (or, offline, reads back) a source's InRelease and verifies it; returns it parsed,
/// with the SHA256 of its bytes.
async fn load_release(
    client: &Client,
    cache: &Cache,
    source: &Source,
    keyring: &Keyring,
    opts: &LoadOptions,
) -> Result<(Release, String), Error> {
    let url = source.dists_url("InRelease");
    let cached = cache.release_path(&url);
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
    let signed = verify_release(cache, keyring, &text, &url, opts.now)?;
    let mut release = Release::parse(&signed, &url)?;
    let mut text = text;
    // Valid-Until guards against a mirror replaying old metadata; offline there is no mirror.
    if source.check_valid_until && !opts.offline {
        release.check_valid_until(opts.now, &url)?;
    }
    // Debian's archive sets no Valid-Until, so an old signed InRelease verifies forever: a
    // Release older than one already relied on is a replay unless the user says otherwise.
    let newest = cache.newest_release_path(&url);
    let seen = std::fs::read_to_string(&newest)
        .ok()
        .map(|d| d.trim().to_string());
    let sha256 = hex::encode(Sha256::digest(text.as_bytes()));
    if !opts.allow_older_release && !opts.accept_releases.contains(&sha256) {
        let locked = opts
            .locked
            .iter()
            .find(|l| l.url == source.url && l.suite == source.suite)
            .map(|l| (l.date.clone(), "the lockfile"));
        let relied: Vec<(String, &'static str)> = locked
            .into_iter()
            .chain(seen.clone().map(|d| (d, "this machine's cache")))
            .collect();
        let newer = |date_unix: u64| {
            relied
                .iter()
                .find(|(d, _)| crate::release::parse_rfc2822(d).is_some_and(|d| d > date_unix))
        };
        if let Some((date, by)) = newer(release.date_unix) {
            // A mirror behind another (load-balanced mirrors serve different days) is met
            // with the newer InRelease this cache relied on, checked again, when it has it:
            // the replay moves nothing back, and the build goes on.
            let kept = std::fs::read_to_string(&cached).ok().and_then(|kept| {
                let signed = verify_release(cache, keyring, &kept, &url, opts.now).ok()?;
                let parsed = Release::parse(&signed, &url).ok()?;
                let valid = !source.check_valid_until
                    || opts.offline
                    || parsed.check_valid_until(opts.now, &url).is_ok();
                (valid && newer(parsed.date_unix).is_none()).then_some((kept, parsed))
            });
            let Some((kept, parsed)) = kept else {
                return Err(Error::OlderRelease {
                    url,
                    date: release.date,
                    newer: date.clone(),
                    by,
                });
            };
            tracing::warn!(
                "{url}: the mirror serves a Release dated {}, older than the one dated {} that \
                 this machine's cache holds: the cached one is used, and nothing moves back",
                release.date,
                parsed.date
            );
            (text, release) = (kept, parsed);
        }
    }
    let sha256 = hex::encode(Sha256::digest(text.as_bytes()));
    if !opts.offline {
        cache.write_atomic(&cached, text.as_bytes())?;
    }
    cache.touch(&newest);
    let seen = seen.and_then(|d| crate::release::parse_rfc2822(&d));
    if seen.is_none_or(|d| d < release.date_unix) {
        cache.write_atomic(&newest, release.date.as_bytes())?;
    }
    Ok((release, sha256))
}

async fn load_source(
    client: &Client,
    cache: &Cache,
    source: &Source,
    opts: &LoadOptions,
    progress: &dyn Progress,
) -> Result<LoadedSource, Error> {
    let keyring = match &source.keyring {
        Some(path) => Arc::new(Keyring::from_file(path)?),
        None => opts.keyring.clone(),
    };
    let (release, inrelease_sha256) = load_release(client, cache, source, &keyring, opts).await?;
    let mut wanted = Vec::new();
    // Debian's LTS carries fewer architectures than the release did (bookworm's LTS has no
    // armel or s390x): a security suite that no longer lists this one has no fixes for it,
    // which is said, not an error. As apt does then, none of its indexes are read.
    let dropped = source.suite.ends_with("-security")
        && !release.architectures.is_empty()
        && !release.architectures.contains(&opts.arch);
    if dropped {
        tracing::warn!(
            "{}: {} carries no {} packages: Debian's security support (LTS) for {} has ended, so the image gets no security fixes",
            source.dists_url("InRelease"),
            source.suite,
            opts.arch,
            opts.arch
        );
    }
    let components: &[String] = if dropped { &[] } else { &source.components };
    for component in components {
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
        keyring,
        inrelease_sha256,
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

impl DistsFile {
    fn expected(&self) -> Expected {
        Expected {
            size: self.entry.size,
            sha256: self.entry.sha256.clone(),
        }
    }

    /// Downloads the file from `url` (its canonical path or by hash) into `tmp`, checked
    /// against the Release.
    async fn download(
        &self,
        client: &Client,
        url: &str,
        tmp: &mut NamedTempFile,
        progress: &dyn Progress,
    ) -> Result<(), Error> {
        let expected = self.expected();
        client
            .download(url, &expected, tmp.as_file_mut(), &self.path, progress)
            .await
    }
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
    if let Some(index) = load_cached(cache, &file, &file.entry.sha256).await {
        return Ok(index);
    }
    if offline {
        return Err(Error::NotCached {
            what: format!("the index {}", source.dists_url(&file.path)),
        });
    }
    let mut tmp = cache.temp_file()?;
    let fetched = match fetch_by_hash(client, source, release, &file, &mut tmp, progress).await? {
        true => Ok(()),
        false => {
            let url = source.dists_url(&file.path);
            file.download(client, &url, &mut tmp, progress).await
        }
    };
    fetched.map_err(|e| out_of_sync(e, source, release, &file.path))?;
    parse_and_cache(
        cache,
        tmp,
        &file,
        &source.dists_url(&file.path),
        &file.entry.sha256,
    )
    .await
}

/// The parsed index of the dists file with this SHA256: its parsed form from the cache, or
/// else the file itself, which the cache also keeps, parsed again. That file is checked
/// against the SHA256 first (a signed Release gave it): it may have come from a cache
/// archive, so it is trusted no more than a download.
async fn load_cached<T: Parsed>(cache: &Cache, file: &DistsFile, sha256: &str) -> Option<T> {
    let parsed = cache.index_path(sha256).ok()?;
    if parsed.exists() {
        cache.touch(&parsed);
        match tokio::task::spawn_blocking(move || T::load(&parsed))
            .await
            .expect("index loader panicked")
        {
            Ok(index) => return Some(index),
            Err(e) => tracing::warn!("discarding unreadable cached index: {e}"),
        }
    }
    let raw = cache.dists_path(sha256).ok()?;
    if !raw.exists() {
        return None;
    }
    match crate::cache::sha256_file(&raw) {
        Ok(actual) if actual == sha256 => {}
        _ => {
            tracing::warn!(path = %raw.display(), "removing a cached index file that does not match its SHA256");
            let _ = std::fs::remove_file(&raw);
            return None;
        }
    }
    let what = raw.display().to_string();
    match parse_into_cache(cache, raw, file.compression, what, sha256).await {
        Ok(index) => Some(index),
        Err(e) => {
            tracing::warn!("discarding an unparsable cached index file: {e}");
            None
        }
    }
}

/// Downloads the file by its hash, as the Release lists it, if the archive supports that.
/// `false` when it does not, or when the mirror lacks the by-hash file (a mirror part-way
/// through an update, or a proxy that never caches by-hash paths).
async fn fetch_by_hash(
    client: &Client,
    source: &Source,
    release: &Release,
    file: &DistsFile,
    tmp: &mut NamedTempFile,
    progress: &dyn Progress,
) -> Result<bool, Error> {
    if !release.acquire_by_hash {
        return Ok(false);
    }
    let dir = file.path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    let url = source.dists_url(&format!("{dir}/by-hash/SHA256/{}", file.entry.sha256));
    match file.download(client, &url, tmp, progress).await {
        Ok(()) => Ok(true),
        Err(Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(out_of_sync(e, source, release, &file.path)),
    }
}

/// A complete file that is not the one the Release lists means the mirror is out of sync
/// (or tampered with): say so, with the Release's date.
fn out_of_sync(e: Error, source: &Source, release: &Release, path: &str) -> Error {
    match e {
        Error::HashMismatch { mismatch, .. } => Error::OutOfSync {
            url: source.dists_url(path),
            path: path.to_string(),
            release_date: release.date.clone(),
            mismatch,
        },
        other => other,
    }
}

/// Keeps a downloaded, verified dists file in the cache under `name` (its SHA256), where
/// `cache export` finds it, then parses it and caches the parsed form.
async fn parse_and_cache<T: Parsed>(
    cache: &Cache,
    tmp: NamedTempFile,
    file: &DistsFile,
    what: &str,
    name: &str,
) -> Result<T, Error> {
    let raw = cache.dists_path(name)?;
    cache.commit(tmp, &raw)?;
    parse_into_cache(cache, raw, file.compression, what.to_string(), name).await
}

/// Parses the dists file at `raw` and caches the parsed form under `name`.
async fn parse_into_cache<T: Parsed>(
    cache: &Cache,
    raw: PathBuf,
    compression: Compression,
    what: String,
    name: &str,
) -> Result<T, Error> {
    let index = tokio::task::spawn_blocking(move || {
        let f = std::fs::File::open(&raw).map_err(|e| Error::io(&raw, e))?;
        T::parse(
            std::io::BufReader::with_capacity(1 << 16, f),
            compression,
            &what,
        )
    })
    .await
    .expect("index parser panicked")?;
    let parsed = cache.index_path(name)?;
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

/// The Contents indexes of a universe's sources, and what was noticed loading them.
#[derive(Default)]
pub struct Contents {
    /// One Contents index per component that has a verifiable one.
    pub indexes: Vec<ContentsIndex>,
    /// What the user should know: an index vouched for by another Release, or none usable.
    pub notices: Vec<String>,
}

/// The Contents indexes of a loaded universe's sources, one per component that publishes
/// one, verified against the same Release files as its package indexes.
///
/// A mirror whose Contents file is not the one its InRelease lists (its files were fetched
/// at different times) may still serve a Contents file that another signed Release of the
/// same archive and release lists: the suite's other name (`stable` for trixie) or the
/// detached-signed `Release`. That one is accepted, with a notice, because a Contents index
/// only suggests package names: every package still comes from the verified Packages index.
/// A component with no verifiable Contents is left out, with a notice; its needs are then
/// found by package name.
pub async fn load_contents(
    client: &Client,
    cache: &Cache,
    universe: &Universe,
    offline: bool,
    progress: &dyn Progress,
) -> Result<Contents, Error> {
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
    let loaded =
        try_join_all(wanted.into_iter().map(|(loaded, file)| {
            load_contents_file(client, cache, loaded, file, offline, progress)
        }))
        .await?;
    let mut contents = Contents::default();
    for (index, notice) in loaded {
        contents.indexes.extend(index);
        contents.notices.extend(notice);
    }
    Ok(contents)
}

/// One Contents file: the index, if a signed Release vouches for what the mirror serves,
/// and a notice when that Release is not the source's own InRelease or none does.
async fn load_contents_file(
    client: &Client,
    cache: &Cache,
    loaded: &LoadedSource,
    file: DistsFile,
    offline: bool,
    progress: &dyn Progress,
) -> Result<(Option<ContentsIndex>, Option<String>), Error> {
    let (source, release) = (&loaded.source, &loaded.release);
    if let Some(index) = load_cached(cache, &file, &file.entry.sha256).await {
        return Ok((Some(index), None));
    }
    let url = source.dists_url(&file.path);
    let vouched = Vouch::read(cache, &file.entry.sha256);
    let from_vouch = |vouch: &Vouch| vouch.notice(&url, &release.date);
    if offline {
        if let Some(vouch) = &vouched
            && let Some(index) = load_cached(cache, &file, &vouch.served.sha256).await
        {
            return Ok((Some(index), Some(from_vouch(vouch))));
        }
        return Err(Error::NotCached {
            what: format!("the index {url}"),
        });
    }
    let mut tmp = cache.temp_file()?;
    let unusable = |e: Error| {
        format!("{e}\nAdded files' needs from this component are found by package name instead.")
    };
    match fetch_by_hash(client, source, release, &file, &mut tmp, progress).await {
        Ok(true) => {
            let index = parse_and_cache(cache, tmp, &file, &url, &file.entry.sha256).await?;
            return Ok((Some(index), None));
        }
        Ok(false) => {}
        Err(e @ Error::OutOfSync { .. }) => return Ok((None, Some(unusable(e)))),
        Err(e) => return Err(e),
    }
    // The by-hash file is missing. If the mirror still serves the file a record says another
    // Release vouched for, the cached copy of it is used without downloading it again.
    if let Some(vouch) = &vouched
        && client.head_size(&url).await == Some(vouch.served.size)
        && vouch.served.size != file.entry.size
        && let Some(index) = load_cached(cache, &file, &vouch.served.sha256).await
    {
        return Ok((Some(index), Some(from_vouch(vouch))));
    }
    let out_of_sync = match file.download(client, &url, &mut tmp, progress).await {
        Ok(()) => {
            let index = parse_and_cache(cache, tmp, &file, &url, &file.entry.sha256).await?;
            return Ok((Some(index), None));
        }
        Err(e) => out_of_sync(e, source, release, &file.path),
    };
    let served = match &out_of_sync {
        Error::OutOfSync { mismatch, .. } => match &mismatch.served {
            Served::Complete(served) => served.clone(),
            Served::MoreThan(_) => return Ok((None, Some(unusable(out_of_sync)))),
        },
        _ => return Err(out_of_sync),
    };
    let Some((by, date)) = find_voucher(client, loaded, &file.path, &served).await else {
        return Ok((None, Some(unusable(out_of_sync))));
    };
    let index: ContentsIndex = parse_and_cache(cache, tmp, &file, &url, &served.sha256).await?;
    let vouch = Vouch { served, by, date };
    vouch.write(cache, &file.entry.sha256)?;
    Ok((Some(index), Some(from_vouch(&vouch))))
}

/// Looks for another signed Release of the same archive and release that lists `served` at
/// `path`: the suite's other name's InRelease, then the suite's `Release` and `Release.gpg`.
/// Returns that Release's URL and date.
async fn find_voucher(
    client: &Client,
    loaded: &LoadedSource,
    path: &str,
    served: &Expected,
) -> Option<(String, String)> {
    let (source, release) = (&loaded.source, &loaded.release);
    let now = SystemTime::now();
    let mut candidates = Vec::new();
    if let Some(alias) = release.other_suite_name(&source.suite) {
        let url = Source {
            suite: alias,
            ..source.clone()
        }
        .dists_url("InRelease");
        candidates.push((url, None));
    }
    candidates.push((
        source.dists_url("Release"),
        Some(source.dists_url("Release.gpg")),
    ));
    for (url, signature_url) in candidates {
        let checked = async {
            let bytes = client.get_small(&url, INRELEASE_LIMIT).await?;
            let text = match &signature_url {
                None => {
                    let text = String::from_utf8_lossy(&bytes);
                    loaded.keyring.verify_inrelease(&text, &url, now)?.text
                }
                Some(sig_url) => {
                    let signature = client.get_small(sig_url, INRELEASE_LIMIT).await?;
                    loaded
                        .keyring
                        .verify_detached(&bytes, &signature, &url, now)?;
                    String::from_utf8_lossy(&bytes).into_owned()
                }
            };
            let other = Release::parse(&text, &url)?;
            if source.check_valid_until {
                other.check_valid_until(now, &url)?;
            }
            Ok::<Release, Error>(other)
        }
        .await;
        match checked {
            Ok(other) if other.vouches_like(release) && other.files.get(path) == Some(served) => {
                return Some((url, other.date));
            }
            Ok(_) => tracing::debug!(url, "does not list the served file"),
            Err(e) => tracing::debug!(url, "not usable: {e}"),
        }
    }
    None
}

/// A record that a signed Release other than the source's own vouched for the Contents file
/// a mirror served in place of the one its InRelease lists. It is kept under the SHA256 the
/// InRelease lists, and names the served file's own SHA256, under which the parsed index is
/// cached: the listed SHA256 never names other content.
struct Vouch {
    served: Expected,
    by: String,
    date: String,
}

impl Vouch {
    fn read(cache: &Cache, listed_sha256: &str) -> Option<Vouch> {
        let path = cache.vouch_path(listed_sha256).ok()?;
        let text = std::fs::read_to_string(&path).ok()?;
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
                .map(str::to_string)
        };
        let vouch = Vouch {
            served: Expected {
                sha256: field("sha256")?,
                size: field("size")?.parse().ok()?,
            },
            by: field("vouched-by")?,
            date: field("date")?,
        };
        cache.touch(&path);
        Some(vouch)
    }

    fn write(&self, cache: &Cache, listed_sha256: &str) -> Result<(), Error> {
        let text = format!(
            "sha256 {}\nsize {}\nvouched-by {}\ndate {}\n",
            self.served.sha256, self.served.size, self.by, self.date
        );
        cache.write_atomic(&cache.vouch_path(listed_sha256)?, text.as_bytes())
    }

    fn notice(&self, url: &str, listed_date: &str) -> String {
        format!(
            "{url}: the mirror serves a Contents index that its InRelease (dated {listed_date}) \
             does not list; {by} (dated {date}), signed for the same release, lists it, so it \
             is used to find the packages of added files (every package still comes from the \
             verified Packages index)",
            by = self.by,
            date = self.date
        )
    }
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
