//! From a spec to a lockfile, and from a lockfile to cached, verified packages.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use bareboat_apt::archive::{Contents, LoadOptions, Universe, load_contents};
use bareboat_apt::cache::Cache;
use bareboat_apt::contents::ContentsIndex;
use bareboat_apt::download::{Client, Expected, Progress};
use bareboat_apt::keyring::Keyring;
use bareboat_apt::lockfile::{
    LOCK_VERSION, LockedExclusion, LockedPackage, LockedSource, Lockfile,
};
use bareboat_apt::relation::SourceRef;
use bareboat_apt::solver::{Selected, SolveRequest, solve};
use bareboat_apt::sources::{Mirrors, Source};
use futures::{StreamExt, TryStreamExt};

use crate::Error;
use crate::base::Base;
use crate::deps::{self, Analysis, FileKind, Found, Missing, Providers};
use crate::hostfiles::{self, HostEntry};
use bareboat_apt::Error as AptError;
use bareboat_spec::spec::Spec;

/// A lock, the analysis of the spec's added files, and what was found for them on each
/// architecture.
#[derive(Debug)]
pub struct Resolution {
    /// The lock.
    pub lock: Lockfile,
    /// The analysis of the spec's added files, each file once.
    pub analysis: Vec<Analysis>,
    /// What auto-deps found for them, per architecture.
    pub auto: Vec<(String, Found)>,
}

/// The reason a lock gives a package that an added file needs.
pub const NEEDED: &str = "needed: ";

/// The packages a lock added for the spec's files on `arch`.
pub fn auto_packages(lock: &Lockfile, arch: &str) -> Vec<String> {
    lock.packages
        .iter()
        .filter(|p| p.target == arch && p.reasons.iter().any(|r| r.starts_with(NEEDED)))
        .map(|p| p.name.clone())
        .collect()
}

/// The spec's added files, expanded once, and their analysis if the spec asks for auto-deps.
pub struct AddedFiles {
    /// The host entries, as they go into the image.
    pub entries: Vec<HostEntry>,
    /// What the programs and scripts among them need, when the spec asks for auto-deps.
    pub analysis: Vec<Analysis>,
}

impl AddedFiles {
    /// Expands the spec's files for `arch`, and analyses them.
    pub fn of(spec: &Spec, arch: &str) -> Result<AddedFiles, Error> {
        let entries = hostfiles::expand(&spec.files_for(arch))?;
        let analysis = if spec.auto_deps {
            deps::analyze_all(&entries)?
        } else {
            Vec::new()
        };
        Ok(AddedFiles { entries, analysis })
    }

    /// Where the added entries land in the image, merged-/usr.
    pub fn image_paths(&self) -> HashSet<String> {
        self.entries
            .iter()
            .map(|e| bareboat_apt::dpkg::merged_usr(&e.dst))
            .collect()
    }
}

/// Where and how to reach the archive.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The default mirrors, from the host's apt configuration or the command line.
    pub mirrors: Mirrors,
    /// A keyring to trust instead of Debian's for sources that name none.
    pub keyring: Option<PathBuf>,
    /// Whether to refuse Release files past their Valid-Until.
    pub check_valid_until: bool,
    /// Whether to accept a Release older than one the cache or the lockfile has relied on.
    pub allow_older_release: bool,
    /// The InReleases (by the SHA256 of their bytes) accepted however old: those a
    /// rebuild's provenance names.
    pub accept_releases: Vec<String>,
    /// Use only the cache; fail on anything missing.
    pub offline: bool,
    /// Parallel downloads.
    pub jobs: usize,
}

/// Which packages `lock` may move to newer versions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Upgrade {
    /// Keep every locked version that is still available.
    Nothing,
    /// Move every package to its newest version.
    All,
    /// Move only these packages.
    Only(Vec<String>),
}

/// The sources a spec resolves from.
pub fn sources_for(spec: &Spec, settings: &Settings) -> Result<Vec<Source>, AptError> {
    let mut sources = if spec.sources.is_empty() {
        settings.mirrors.sources(spec.release)?
    } else {
        spec.sources.clone()
    };
    for s in &mut sources {
        s.check_valid_until &= settings.check_valid_until;
    }
    Ok(sources)
}

/// Where packages and indexes come from: how to reach the archive, the HTTP client, and
/// the cache they are verified into.
#[derive(Clone, Copy)]
pub struct Archive<'a> {
    /// The mirrors, keyring and download settings.
    pub settings: &'a Settings,
    /// The HTTP client.
    pub client: &'a Client,
    /// The package and index cache.
    pub cache: &'a Cache,
}

/// What to resolve: a spec, the image it builds on, and an earlier lock to keep versions
/// from.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    /// The spec.
    pub spec: &'a Spec,
    /// The base image, whose installed packages count as installed and stay out of the lock.
    pub base: Option<&'a Base<'a>>,
    /// An earlier lock, whose versions are kept where still available, except for the
    /// packages `upgrade` names.
    pub previous: Option<&'a Lockfile>,
    /// Which packages may move to newer versions.
    pub upgrade: &'a Upgrade,
}

impl<'a> Request<'a> {
    /// A request to resolve `spec` afresh, with no earlier lock to keep versions from.
    pub fn fresh(spec: &'a Spec, base: Option<&'a Base<'a>>) -> Request<'a> {
        Request {
            spec,
            base,
            previous: None,
            upgrade: &Upgrade::Nothing,
        }
    }

    /// A lock of nothing yet, made from this request's inputs: what
    /// [`Lockfile::same_inputs`] compares.
    pub fn inputs(&self) -> Lockfile {
        let spec = self.spec;
        Lockfile {
            version: LOCK_VERSION,
            release: spec.release.codename().to_string(),
            arch: spec.arch.clone(),
            requested: spec.packages.iter().map(ToString::to_string).collect(),
            exclude: spec.exclude.clone(),
            base: self.base.map(Base::digest),
            sources: Vec::new(),
            packages: Vec::new(),
            exclusions: Vec::new(),
        }
    }

    /// Resolves the spec into a lockfile, reading the archive's indexes through `progress`.
    pub async fn resolve(
        &self,
        archive: Archive<'_>,
        progress: &dyn Progress,
    ) -> Result<Resolution, Error> {
        let spec = self.spec;
        let keyring = keyring(archive.settings)?;
        let resolver = Resolver {
            request: self,
            archive,
            progress,
            sources: sources_for(spec, archive.settings)?,
            keyring,
        };
        let mut lock = self.inputs();
        let mut auto = Vec::new();
        let mut all_analysis: Vec<Analysis> = Vec::new();
        for arch in &spec.arch {
            let one = resolver.arch(arch).await?;
            if lock.sources.is_empty() {
                lock.sources = one.sources;
            }
            lock.packages.extend(one.packages);
            lock.exclusions.extend(one.exclusions);
            if !one.analysis.is_empty() {
                auto.push((arch.clone(), one.found));
            }
            // The same file on every architecture is reported once.
            for a in one.analysis {
                if !all_analysis.contains(&a) {
                    all_analysis.push(a);
                }
            }
        }
        lock.normalize();
        Ok(Resolution {
            lock,
            analysis: all_analysis,
            auto,
        })
    }
}

/// A [`Request`] being resolved, one architecture at a time.
struct Resolver<'a> {
    request: &'a Request<'a>,
    archive: Archive<'a>,
    progress: &'a dyn Progress,
    sources: Vec<Source>,
    keyring: Arc<Keyring>,
}

/// What one architecture's resolution adds to the lock.
struct ArchResolution {
    sources: Vec<LockedSource>,
    packages: Vec<LockedPackage>,
    exclusions: Vec<LockedExclusion>,
    analysis: Vec<Analysis>,
    found: Found,
}

impl Resolver<'_> {
    async fn arch(&self, arch: &str) -> Result<ArchResolution, Error> {
        let Archive {
            settings,
            client,
            cache,
        } = self.archive;
        let spec = self.request.spec;
        let files = AddedFiles::of(spec, arch)?;
        let locked = (self.request.previous)
            .map(|l| l.sources.clone())
            .unwrap_or_default();
        let opts = load_options(settings, arch, self.keyring.clone(), locked);
        let mut universe =
            Universe::load(client, cache, &self.sources, &opts, self.progress).await?;
        if let Some(base) = self.request.base {
            universe.installed = Some(base.image(arch)?.installed()?);
        }
        let mut request = SolveRequest {
            packages: spec.packages.clone(),
            exclude: spec.exclude.clone(),
            prefer: self.preferred(arch),
        };
        let found = if files.analysis.is_empty() {
            Found::default()
        } else {
            let found = self.auto_deps(&universe, &request, &files, arch).await?;
            let names: Vec<String> = found.packages.keys().cloned().collect();
            let with = spec.with_auto_deps(&names);
            request.packages = with.packages;
            request.exclude = with.exclude;
            found
        };
        let solution = match solve(&universe, &request) {
            Ok(solution) => solution,
            // Only then are the other architectures' indexes loaded, to name them.
            Err(e) => {
                self.check_built_for(&universe, arch).await?;
                return Err(e.into());
            }
        };
        let sources = universe
            .sources
            .iter()
            .map(|s| LockedSource {
                url: s.source.url.clone(),
                suite: s.source.suite.clone(),
                components: s.source.components.clone(),
                date: s.release.date.clone(),
                inrelease_sha256: Some(s.inrelease_sha256.clone()),
            })
            .collect();
        let mut packages = Vec::new();
        for selected in &solution.packages {
            if !universe.is_installed(selected.id) {
                packages.push(locked_package(&universe, selected, arch, &found)?);
            }
        }
        let exclusions = solution
            .exclusions
            .into_iter()
            .map(|x| LockedExclusion {
                name: x.name,
                target: arch.to_string(),
                dropped: x.dropped,
            })
            .collect();
        Ok(ArchResolution {
            sources,
            packages,
            exclusions,
            analysis: files.analysis,
            found,
        })
    }

    /// The versions to keep from the previous lock on `arch`.
    fn preferred(&self, arch: &str) -> HashMap<String, String> {
        match (self.request.previous, self.request.upgrade) {
            (Some(prev), Upgrade::Nothing) => prev.versions(arch).into_iter().collect(),
            (Some(prev), Upgrade::Only(names)) => prev
                .versions(arch)
                .into_iter()
                .filter(|(n, _)| !names.contains(n))
                .collect(),
            _ => HashMap::new(),
        }
    }

    /// The packages the added files need on `arch`: found by the Contents index, then by
    /// package names for what it does not answer. What the spec installs anyway meets a
    /// need without adding anything.
    async fn auto_deps(
        &self,
        universe: &Universe,
        request: &SolveRequest,
        files: &AddedFiles,
        arch: &str,
    ) -> Result<Found, Error> {
        let Archive {
            settings,
            client,
            cache,
        } = self.archive;
        let run = &self.request.spec.run;
        let entrypoint = run.entrypoint.as_ref().or(run.cmd.as_ref());
        let entrypoint = entrypoint.and_then(|c| c.first()).map(String::as_str);
        let analysis = &files.analysis;
        let added = files.image_paths();
        let installed = solve(universe, request)?
            .packages
            .iter()
            .map(|s| universe.package(s.id).name().to_string())
            .collect();
        let needs_lookup = analysis
            .iter()
            .any(|a| matches!(a.kind, FileKind::Dynamic { .. } | FileKind::Script { .. }));
        let contents = if needs_lookup {
            load_contents(client, cache, universe, settings.offline, self.progress).await?
        } else {
            Contents::default()
        };
        let mut from = Providers {
            contents: &contents.indexes,
            by_name: &ContentsIndex::default(),
        };
        let mut found = deps::find_packages(analysis, arch, &added, &from, &installed, entrypoint)?;
        if !found.missing.is_empty() {
            let by_name = NameLookup {
                universe,
                archive: self.archive,
                progress: self.progress,
            }
            .file_lists(&found.missing)
            .await?;
            from.by_name = &by_name;
            found = deps::find_packages(analysis, arch, &added, &from, &installed, entrypoint)?;
        }
        let mut found = found.require_all(arch)?;
        found.notes.extend(contents.notices);
        Ok(found)
    }
}

/// The lock's entry for a package the solver selected on `arch`.
fn locked_package(
    universe: &Universe,
    selected: &Selected,
    arch: &str,
    found: &Found,
) -> Result<LockedPackage, Error> {
    let p = universe.package(selected.id);
    let source = SourceRef::parse(p.source(), p.name()).map_err(|e| AptError::Relation {
        package: p.name().to_string(),
        source: e,
    })?;
    Ok(LockedPackage {
        name: p.name().to_string(),
        version: p.version().to_string(),
        architecture: p.architecture().to_string(),
        target: arch.to_string(),
        source_version: source
            .version
            .map_or_else(|| p.version().to_string(), |v| v.to_string()),
        source: source.name,
        suite: universe.source_of(selected.id).source.suite.clone(),
        filename: p.filename().to_string(),
        size: p.size(),
        installed_size: p.installed_size(),
        sha256: p.sha256(),
        reasons: match found.packages.get(p.name()) {
            Some(needs) => needs.iter().map(|n| format!("{NEEDED}{n}")).collect(),
            None => selected.reasons.clone(),
        },
    })
}

/// What fetching a lock's packages did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct FetchReport {
    /// How many packages the lock names (each `.deb` once).
    pub packages: usize,
    /// How many were downloaded.
    pub downloaded: usize,
    /// Their bytes.
    pub downloaded_bytes: u64,
    /// How many the cache had already.
    pub cached: usize,
}

/// Makes sure every package of `lock` is in the cache, verified by SHA256, downloading what
/// is missing with `settings.jobs` parallel connections.
pub async fn fetch(
    lock: &Lockfile,
    archive: Archive<'_>,
    progress: &dyn Progress,
) -> Result<FetchReport, AptError> {
    let Archive {
        settings,
        client,
        cache,
    } = archive;
    let mut unique: Vec<&LockedPackage> = Vec::new();
    for p in &lock.packages {
        if !unique.iter().any(|u| u.sha256 == p.sha256) {
            unique.push(p);
        }
    }
    let mut report = FetchReport {
        packages: unique.len(),
        ..FetchReport::default()
    };
    let mut missing = Vec::new();
    for p in unique {
        if cache.has_deb(&p.sha256, p.size)? {
            report.cached += 1;
            progress.done(&p.name);
        } else if settings.offline {
            return Err(AptError::NotCached {
                what: format!("package {} {} ({})", p.name, p.version, p.filename),
            });
        } else {
            missing.push(p);
        }
    }
    let downloads: Vec<u64> = futures::stream::iter(missing.into_iter().map(|p| async move {
        let source = lock.source_of(p).ok_or_else(|| AptError::BadLock {
            path: PathBuf::from("bareboat.lock"),
            reason: format!(
                "package {} names suite {} that no [[source]] lists",
                p.name, p.suite
            ),
        })?;
        let deb = Download {
            url: format!("{}/{}", source.url.trim_end_matches('/'), p.filename),
            expected: Expected {
                size: p.size,
                sha256: p.sha256.clone(),
            },
            name: &p.name,
            version: &p.version,
            architecture: &p.architecture,
        };
        deb.fetch(client, cache, progress).await?;
        Ok::<u64, AptError>(p.size)
    }))
    .buffer_unordered(settings.jobs.max(1))
    .try_collect()
    .await?;
    report.downloaded = downloads.len();
    report.downloaded_bytes = downloads.iter().sum();
    Ok(report)
}

/// One package to download into the cache.
struct Download<'a> {
    url: String,
    expected: Expected,
    name: &'a str,
    version: &'a str,
    architecture: &'a str,
}

impl Download<'_> {
    /// Downloads the package, checked against its index entry, into the cache.
    async fn fetch(
        &self,
        client: &Client,
        cache: &Cache,
        progress: &dyn Progress,
    ) -> Result<(), AptError> {
        let mut tmp = cache.temp_file()?;
        let what = format!("{} {}", self.name, self.version);
        client
            .download(
                &self.url,
                &self.expected,
                tmp.as_file_mut(),
                &what,
                progress,
            )
            .await
            .map_err(|e| match e {
                // A signed index or the lockfile names the package, so the file should be
                // there: a mirror that answers 404 lacks it (mirrors can be incomplete for
                // an architecture), or the archive has since removed that version.
                AptError::NotFound { url, .. } => AptError::MirrorGap {
                    url,
                    package: what.clone(),
                    architecture: self.architecture.to_string(),
                },
                e => e.with_context(format!("package {}", self.name)),
            })?;
        cache.commit(tmp, &cache.deb_path(&self.expected.sha256)?)?;
        progress.done(&what);
        Ok(())
    }
}

/// Finds packages by name for needs no Contents index answers, and reads their file lists.
struct NameLookup<'a> {
    universe: &'a Universe,
    archive: Archive<'a>,
    progress: &'a dyn Progress,
}

impl NameLookup<'_> {
    /// The file lists of the packages [`deps::name_candidates`] names for `missing` that the
    /// archive has for this architecture, each read from its verified `.deb`.
    async fn file_lists(&self, missing: &[Missing]) -> Result<ContentsIndex, AptError> {
        let mut names: Vec<String> = missing
            .iter()
            .flat_map(|m| deps::name_candidates(&m.need))
            .collect();
        names.sort();
        names.dedup();
        let mut files: Vec<(String, String)> = Vec::new();
        for name in names {
            let Some(id) = self.universe.newest(&name) else {
                continue;
            };
            let p = self.universe.package(id);
            let sha256 = p.sha256();
            if !self.archive.cache.has_deb(&sha256, p.size())? {
                if self.archive.settings.offline {
                    return Err(AptError::NotCached {
                        what: format!("package {} {} ({})", p.name(), p.version(), p.filename()),
                    });
                }
                let source = &self.universe.source_of(id).source;
                Download {
                    url: format!("{}/{}", source.url.trim_end_matches('/'), p.filename()),
                    expected: Expected {
                        size: p.size(),
                        sha256: sha256.clone(),
                    },
                    name: p.name(),
                    version: p.version(),
                    architecture: p.architecture(),
                }
                .fetch(self.archive.client, self.archive.cache, self.progress)
                .await?;
            }
            let deb_path = self.archive.cache.deb_path(&sha256)?;
            let mut data = crate::package::package_tar(self.archive.cache.open_deb(&sha256)?);
            let entries = data.entries().map_err(|e| AptError::io(&deb_path, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| AptError::io(&deb_path, e))?;
                let path = entry.path().map_err(|e| AptError::io(&deb_path, e))?;
                files.push((name.clone(), path.to_string_lossy().into_owned()));
            }
        }
        Ok(ContentsIndex::of_packages(
            files.iter().map(|(n, p)| (n.as_str(), p.as_str())),
        ))
    }
}

impl Resolver<'_> {
    /// Refuses a requested package that this architecture's archive lacks but another
    /// release architecture's has (a runtime Debian does not build for it), naming those.
    /// A package no architecture has is left to the solver, which says it is unknown.
    async fn check_built_for(&self, universe: &Universe, arch: &str) -> Result<(), Error> {
        let absent = |u: &Universe, name: &str| !u.has(name) && u.providing(name).next().is_none();
        let Some(package) = (self.request.spec.packages.iter())
            .map(|r| r.name.as_str())
            .find(|name| absent(universe, name))
        else {
            return Ok(());
        };
        // The architectures the archive's Release files list, that Debian releases.
        let released = self.request.spec.release.architectures();
        let mut others: Vec<&str> = (universe.sources.iter())
            .flat_map(|s| s.release.architectures.iter().map(String::as_str))
            .filter(|a| *a != arch && released.contains(a))
            .collect();
        others.sort();
        others.dedup();
        let mut built = Vec::new();
        for other in others {
            let opts = load_options(
                self.archive.settings,
                other,
                self.keyring.clone(),
                Vec::new(),
            );
            let Archive { client, cache, .. } = self.archive;
            let there = Universe::load(client, cache, &self.sources, &opts, self.progress).await;
            if there.is_ok_and(|u| !absent(&u, package)) {
                built.push(other.to_string());
            }
        }
        if built.is_empty() {
            return Ok(());
        }
        Err(Error::NotBuiltFor {
            package: package.to_string(),
            arch: arch.to_string(),
            built,
        })
    }
}

/// How the archive's indexes for `arch` are loaded, with `settings`, checked against
/// `keyring`, and no older than the `locked` sources.
fn load_options(
    settings: &Settings,
    arch: &str,
    keyring: Arc<Keyring>,
    locked: Vec<LockedSource>,
) -> LoadOptions {
    LoadOptions {
        arch: arch.to_string(),
        offline: settings.offline,
        keyring,
        now: SystemTime::now(),
        locked,
        allow_older_release: settings.allow_older_release,
        accept_releases: settings.accept_releases.clone(),
    }
}

/// The packages `spec`'s sources (or the default mirrors) have for `arch`, verified: what a
/// lock solves over, for a caller that looks versions up before it builds.
pub async fn universe(
    spec: &Spec,
    arch: &str,
    archive: Archive<'_>,
    progress: &dyn Progress,
) -> Result<Universe, Error> {
    let settings = archive.settings;
    let sources = sources_for(spec, settings)?;
    let opts = load_options(settings, arch, keyring(settings)?, Vec::new());
    Ok(Universe::load(archive.client, archive.cache, &sources, &opts, progress).await?)
}

fn keyring(settings: &Settings) -> Result<Arc<Keyring>, AptError> {
    Ok(Arc::new(match &settings.keyring {
        Some(path) => Keyring::from_file(path)?,
        None => Keyring::debian(),
    }))
}

/// How a lock's packages stand against the archive's signed indexes.
#[derive(Debug, Default, serde::Serialize)]
pub struct ArchiveCheck {
    /// The sources whose InRelease is the one the lock was made from, whose packages were
    /// each found, by SHA256, in its signed indexes.
    pub matched: Vec<String>,
    /// The sources whose InRelease is another (the archive moved on), whose packages are
    /// vouched for only by the SHA256s the lock gives them.
    pub moved: Vec<String>,
    /// The sources a lock of format 1 names no InRelease of, whose packages are vouched for
    /// only by their SHA256s: `bareboat lock` again records it.
    pub unpinned: Vec<String>,
}

/// Checks `lock`'s packages against the archive's signed indexes, as they are now: where a
/// source serves the InRelease the lock names (by SHA256: a snapshot mirror, or an archive
/// that has not moved on), however old, each of its packages must be in its indexes with
/// the SHA256 the lock gives it. A source that has moved on is reported, not refused.
pub async fn check_against_archive(
    lock: &Lockfile,
    archive: Archive<'_>,
    progress: &dyn Progress,
) -> Result<ArchiveCheck, Error> {
    let Archive {
        settings,
        client,
        cache,
    } = archive;
    let keyring = keyring(settings)?;
    let sources: Vec<Source> = (lock.sources.iter())
        .map(|s| Source {
            components: s.components.clone(),
            check_valid_until: false,
            ..Source::new(&s.url, &s.suite)
        })
        .collect();
    let named: Vec<String> = (lock.sources.iter())
        .filter_map(|s| s.inrelease_sha256.clone())
        .collect();
    let mut check = ArchiveCheck::default();
    for arch in &lock.arch {
        let opts = LoadOptions {
            arch: arch.clone(),
            offline: settings.offline,
            keyring: keyring.clone(),
            now: SystemTime::now(),
            locked: Vec::new(),
            allow_older_release: settings.allow_older_release,
            accept_releases: named.clone(),
        };
        let universe = Universe::load(client, cache, &sources, &opts, progress).await?;
        for (locked, loaded) in lock.sources.iter().zip(&universe.sources) {
            let label = format!("{} {}", locked.url, locked.suite);
            let pinned = locked.inrelease_sha256.as_deref();
            let verdict = match pinned {
                None => &mut check.unpinned,
                Some(hash) if hash != loaded.inrelease_sha256 => &mut check.moved,
                Some(_) => &mut check.matched,
            };
            if !verdict.contains(&label) {
                verdict.push(label.clone());
            }
            if pinned != Some(&loaded.inrelease_sha256) {
                continue;
            }
            // Each package of this source, in this source's own indexes.
            let packages = (lock.packages.iter())
                .filter(|p| p.target == *arch && lock.source_of(p) == Some(locked));
            for p in packages {
                let listed = universe.named(&p.name).any(|id| {
                    let record = universe.package(id);
                    let from = &universe.source_of(id).source;
                    from.url == locked.url.trim_end_matches('/')
                        && from.suite == locked.suite
                        && record.version() == p.version
                        && record.sha256() == p.sha256
                });
                if !listed {
                    return Err(AptError::BadLock {
                        path: PathBuf::from("bareboat.lock"),
                        reason: format!(
                            "{} {} ({}) with SHA256 {} is not in the signed indexes of {label}, whose InRelease the lock names",
                            p.name, p.version, p.architecture, p.sha256
                        ),
                    }
                    .into());
                }
            }
        }
    }
    Ok(check)
}
