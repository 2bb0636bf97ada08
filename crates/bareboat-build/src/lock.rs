//! From a spec to a lockfile, and from a lockfile to cached, verified packages.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use bareboat_apt::Error;
use bareboat_apt::archive::{Contents, LoadOptions, Universe, load_contents};
use bareboat_apt::cache::Cache;
use bareboat_apt::contents::ContentsIndex;
use bareboat_apt::download::{Client, Expected, Progress};
use bareboat_apt::keyring::Keyring;
use bareboat_apt::lockfile::{
    LOCK_VERSION, LockedExclusion, LockedPackage, LockedSource, Lockfile,
};
use bareboat_apt::relation::SourceRef;
use bareboat_apt::solver::{SolveRequest, solve};
use bareboat_apt::sources::{Mirrors, Source};
use futures::{StreamExt, TryStreamExt};

use crate::base::Base;
use crate::deps::{self, Analysis, DepsError, FileKind, Found, Missing, Providers};
use crate::hostfiles::{self, HostEntry};
use crate::spec::Spec;

/// A failure to lock a spec.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(transparent)]
    Apt(#[from] Error),
    #[error(transparent)]
    Deps(#[from] DepsError),
    #[error("{0}")]
    Files(String),
    #[error(transparent)]
    Base(#[from] crate::build::BuildError),
}

/// A lock, the analysis of the spec's added files, and what was found for them on each
/// architecture.
#[derive(Debug)]
pub struct Resolution {
    pub lock: Lockfile,
    pub analysis: Vec<Analysis>,
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
    pub entries: Vec<HostEntry>,
    pub analysis: Vec<Analysis>,
}

impl AddedFiles {
    pub fn of(spec: &Spec, arch: &str) -> Result<AddedFiles, LockError> {
        let entries = hostfiles::expand(&spec.files_for(arch)).map_err(LockError::Files)?;
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
    pub mirrors: Mirrors,
    /// A keyring to trust instead of Debian's for sources that name none.
    pub keyring: Option<PathBuf>,
    pub check_valid_until: bool,
    pub offline: bool,
    /// Parallel downloads.
    pub jobs: usize,
}

/// Which packages `lock` may move to newer versions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Upgrade {
    /// Keep every locked version that is still available.
    Nothing,
    All,
    Only(Vec<String>),
}

/// The sources a spec resolves from.
pub fn sources_for(spec: &Spec, settings: &Settings) -> Result<Vec<Source>, Error> {
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

/// Resolves `spec` afresh, with no earlier lock to keep versions from.
pub async fn resolve_fresh(
    spec: &Spec,
    base: Option<&Base<'_>>,
    settings: &Settings,
    client: &Client,
    cache: &Cache,
    progress: &dyn Progress,
) -> Result<Resolution, LockError> {
    resolve(
        spec,
        base,
        settings,
        None,
        &Upgrade::Nothing,
        client,
        cache,
        progress,
    )
    .await
}

/// Resolves `spec` into a lockfile. With a `previous` lock, its versions are kept where
/// still available, except for the packages `upgrade` names. The packages a `base` image
/// has installed count as installed, and stay out of the lock.
#[allow(clippy::too_many_arguments)]
pub async fn resolve(
    spec: &Spec,
    base: Option<&Base<'_>>,
    settings: &Settings,
    previous: Option<&Lockfile>,
    upgrade: &Upgrade,
    client: &Client,
    cache: &Cache,
    progress: &dyn Progress,
) -> Result<Resolution, LockError> {
    let sources = sources_for(spec, settings)?;
    let entrypoint = spec
        .run
        .entrypoint
        .as_ref()
        .or(spec.run.cmd.as_ref())
        .and_then(|c| c.first())
        .map(String::as_str);
    let mut auto = Vec::new();
    let mut all_analysis: Vec<Analysis> = Vec::new();
    let keyring = Arc::new(match &settings.keyring {
        Some(path) => Keyring::from_file(path)?,
        None => Keyring::debian(),
    });
    let mut lock = Lockfile {
        version: LOCK_VERSION,
        release: spec.release.codename().to_string(),
        arch: spec.arch.clone(),
        requested: spec.packages.iter().map(ToString::to_string).collect(),
        exclude: spec.exclude.clone(),
        base: base.map(Base::digest),
        sources: Vec::new(),
        packages: Vec::new(),
        exclusions: Vec::new(),
    };
    for arch in &spec.arch {
        let files = AddedFiles::of(spec, arch)?;
        let added = files.image_paths();
        let analysis = files.analysis;
        let needs_lookup = analysis
            .iter()
            .any(|a| matches!(a.kind, FileKind::Dynamic { .. } | FileKind::Script { .. }));
        let opts = LoadOptions {
            arch: arch.clone(),
            offline: settings.offline,
            keyring: keyring.clone(),
            now: SystemTime::now(),
        };
        let mut universe = Universe::load(client, cache, &sources, &opts, progress).await?;
        if let Some(base) = base {
            let installed = base.image(arch)?.installed()?;
            universe.installed = Some(installed);
        }
        let prefer: HashMap<String, String> = match (previous, upgrade) {
            (Some(prev), Upgrade::Nothing) => prev.versions(arch).into_iter().collect(),
            (Some(prev), Upgrade::Only(names)) => prev
                .versions(arch)
                .into_iter()
                .filter(|(n, _)| !names.contains(n))
                .collect(),
            _ => HashMap::new(),
        };
        let mut request = SolveRequest {
            packages: spec.packages.clone(),
            exclude: spec.exclude.clone(),
            prefer,
        };
        let mut found = Found::default();
        if !analysis.is_empty() {
            // What the spec installs anyway meets a need without adding anything.
            let installed = solve(&universe, &request)?
                .packages
                .iter()
                .map(|s| universe.package(s.id).name().to_string())
                .collect();
            let contents = if needs_lookup {
                load_contents(client, cache, &universe, settings.offline, progress).await?
            } else {
                Contents::default()
            };
            let mut from = Providers {
                contents: &contents.indexes,
                by_name: &ContentsIndex::default(),
            };
            found = deps::find_packages(&analysis, arch, &added, &from, &installed, entrypoint)?;
            if !found.missing.is_empty() {
                let by_name = NameLookup {
                    universe: &universe,
                    settings,
                    client,
                    cache,
                    progress,
                }
                .file_lists(&found.missing)
                .await?;
                from.by_name = &by_name;
                found =
                    deps::find_packages(&analysis, arch, &added, &from, &installed, entrypoint)?;
            }
            found = found.require_all(arch)?;
            found.notes.extend(contents.notices);
            let names: Vec<String> = found.packages.keys().cloned().collect();
            let with = spec.with_auto_deps(&names);
            request.packages = with.packages;
            request.exclude = with.exclude;
        }
        let solution = solve(&universe, &request)?;
        if lock.sources.is_empty() {
            lock.sources = universe
                .sources
                .iter()
                .map(|s| LockedSource {
                    url: s.source.url.clone(),
                    suite: s.source.suite.clone(),
                    components: s.source.components.clone(),
                    date: s.release.date.clone(),
                })
                .collect();
        }
        for selected in &solution.packages {
            if universe.is_installed(selected.id) {
                continue;
            }
            let p = universe.package(selected.id);
            let source = SourceRef::parse(p.source(), p.name()).map_err(|e| Error::Relation {
                package: p.name().to_string(),
                source: e,
            })?;
            lock.packages.push(LockedPackage {
                name: p.name().to_string(),
                version: p.version().to_string(),
                architecture: p.architecture().to_string(),
                target: arch.clone(),
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
            });
        }
        lock.exclusions
            .extend(solution.exclusions.into_iter().map(|x| LockedExclusion {
                name: x.name,
                target: arch.clone(),
                dropped: x.dropped,
            }));
        if !analysis.is_empty() {
            auto.push((arch.clone(), found));
        }
        // The same file on every architecture is reported once.
        for a in analysis {
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

/// What fetching a lock's packages did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct FetchReport {
    pub packages: usize,
    pub downloaded: usize,
    pub downloaded_bytes: u64,
    pub cached: usize,
}

/// Makes sure every package of `lock` is in the cache, verified by SHA256, downloading what
/// is missing with `settings.jobs` parallel connections.
pub async fn fetch(
    lock: &Lockfile,
    settings: &Settings,
    client: &Client,
    cache: &Cache,
    progress: &dyn Progress,
) -> Result<FetchReport, Error> {
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
            return Err(Error::NotCached {
                what: format!("package {} {} ({})", p.name, p.version, p.filename),
            });
        } else {
            missing.push(p);
        }
    }
    let downloads: Vec<u64> = futures::stream::iter(missing.into_iter().map(|p| async move {
        let source = lock.source_of(p).ok_or_else(|| Error::BadLock {
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
        };
        deb.fetch(client, cache, progress).await?;
        Ok::<u64, Error>(p.size)
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
}

impl Download<'_> {
    /// Downloads the package, checked against its index entry, into the cache.
    async fn fetch(
        &self,
        client: &Client,
        cache: &Cache,
        progress: &dyn Progress,
    ) -> Result<(), Error> {
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
            .map_err(|e| e.with_context(format!("package {}", self.name)))?;
        cache.commit(tmp, &cache.deb_path(&self.expected.sha256))?;
        progress.done(&what);
        Ok(())
    }
}

/// Finds packages by name for needs no Contents index answers, and reads their file lists.
struct NameLookup<'a> {
    universe: &'a Universe,
    settings: &'a Settings,
    client: &'a Client,
    cache: &'a Cache,
    progress: &'a dyn Progress,
}

impl NameLookup<'_> {
    /// The file lists of the packages [`deps::name_candidates`] names for `missing` that the
    /// archive has for this architecture, each read from its verified `.deb`.
    async fn file_lists(&self, missing: &[Missing]) -> Result<ContentsIndex, Error> {
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
            if !self.cache.has_deb(&sha256, p.size())? {
                if self.settings.offline {
                    return Err(Error::NotCached {
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
                }
                .fetch(self.client, self.cache, self.progress)
                .await?;
            }
            let deb_path = self.cache.deb_path(&sha256);
            let mut data = crate::build::package_tar(self.cache.open_deb(&sha256)?);
            let entries = data.entries().map_err(|e| Error::io(&deb_path, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| Error::io(&deb_path, e))?;
                let path = entry.path().map_err(|e| Error::io(&deb_path, e))?;
                files.push((name.clone(), path.to_string_lossy().into_owned()));
            }
        }
        Ok(ContentsIndex::of_packages(
            files.iter().map(|(n, p)| (n.as_str(), p.as_str())),
        ))
    }
}
