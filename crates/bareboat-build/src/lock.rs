//! From a spec to a lockfile, and from a lockfile to cached, verified packages.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use bareboat_apt::Error;
use bareboat_apt::archive::{LoadOptions, Universe};
use bareboat_apt::cache::Cache;
use bareboat_apt::download::{Client, Expected, Progress};
use bareboat_apt::keyring::Keyring;
use bareboat_apt::lockfile::{
    LOCK_VERSION, LockedExclusion, LockedPackage, LockedSource, Lockfile,
};
use bareboat_apt::relation::SourceRef;
use bareboat_apt::solver::{SolveRequest, solve};
use bareboat_apt::sources::{Mirrors, Source};
use futures::{StreamExt, TryStreamExt};

use crate::spec::Spec;

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
    settings: &Settings,
    client: &Client,
    cache: &Cache,
    progress: &dyn Progress,
) -> Result<Lockfile, Error> {
    resolve(
        spec,
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
/// still available, except for the packages `upgrade` names.
pub async fn resolve(
    spec: &Spec,
    settings: &Settings,
    previous: Option<&Lockfile>,
    upgrade: &Upgrade,
    client: &Client,
    cache: &Cache,
    progress: &dyn Progress,
) -> Result<Lockfile, Error> {
    let sources = sources_for(spec, settings)?;
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
        sources: Vec::new(),
        packages: Vec::new(),
        exclusions: Vec::new(),
    };
    for arch in &spec.arch {
        let opts = LoadOptions {
            arch: arch.clone(),
            offline: settings.offline,
            keyring: keyring.clone(),
            now: SystemTime::now(),
        };
        let universe = Universe::load(client, cache, &sources, &opts, progress).await?;
        let prefer: HashMap<String, String> = match (previous, upgrade) {
            (Some(prev), Upgrade::Nothing) => prev.versions(arch).into_iter().collect(),
            (Some(prev), Upgrade::Only(names)) => prev
                .versions(arch)
                .into_iter()
                .filter(|(n, _)| !names.contains(n))
                .collect(),
            _ => HashMap::new(),
        };
        let request = SolveRequest {
            packages: spec.packages.clone(),
            exclude: spec.exclude.clone(),
            prefer,
        };
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
                reasons: selected.reasons.clone(),
            });
        }
        lock.exclusions
            .extend(solution.exclusions.into_iter().map(|x| LockedExclusion {
                name: x.name,
                target: arch.clone(),
                dropped: x.dropped,
            }));
    }
    lock.normalize();
    Ok(lock)
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
        let url = format!("{}/{}", source.url.trim_end_matches('/'), p.filename);
        let expected = Expected {
            size: p.size,
            sha256: p.sha256.clone(),
        };
        let mut tmp = cache.temp_file()?;
        let what = format!("{} {}", p.name, p.version);
        client
            .download(&url, &expected, tmp.as_file_mut(), &what, progress)
            .await
            .map_err(|e| e.with_context(format!("package {}", p.name)))?;
        cache.commit(tmp, &cache.deb_path(&p.sha256))?;
        progress.done(&what);
        Ok::<u64, Error>(p.size)
    }))
    .buffer_unordered(settings.jobs.max(1))
    .try_collect()
    .await?;
    report.downloaded = downloads.len();
    report.downloaded_bytes = downloads.iter().sum();
    Ok(report)
}
