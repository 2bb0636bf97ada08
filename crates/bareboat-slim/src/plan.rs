//! The spec a slim image is built from: the catalogue level that covers what the
//! application needs, for the image's Debian release; the other packages it needs at the
//! image's versions, each sliced to the paths it needs (so its `status.d` entry and md5sums
//! list exactly what is kept); and the image's own files (the application's, the ones the
//! image modified, the ones no package owns), staged on disk as the spec's files with their
//! owners and modes. Shells and package managers go unless the entrypoint needs them;
//! setuid and setgid bits go unless kept.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use bareboat_apt::archive::{PackageId, Universe};
use bareboat_apt::dpkg::{self, Installed};
use bareboat_apt::index::Package;
use bareboat_apt::relation::{parse_provides, parse_relations};
use bareboat_apt::solver::Request as PackageRequest;
use bareboat_apt::sources::Distribution;
use bareboat_inspect::audit;
use bareboat_inspect::filesystem::{APK_INSTALLED, Kept, Kind};
use bareboat_spec::catalog;
use bareboat_spec::spec::{FileSpec, GroupSpec, Level, Spec, UserSpec};
use debversion::Version;
use oci_spec::image::Config;
use serde::Serialize;

use crate::apk;
use crate::needs::{Needs, Why};
use crate::owners::{Origin, Owners};

/// The catalogue's levels for C programs, lowest first; a runtime's level stacks on the
/// last.
const LEVELS: [&str; 4] = ["static", "base-nossl", "base", "cc"];

/// The runtimes, each chosen when the application needs its own package.
const RUNTIMES: [&str; 6] = ["python3", "java21", "java25", "nodejs", "ruby", "php"];

/// The user a slim image of an image that ran as root runs as, unless told otherwise.
pub const NONROOT: &str = "65532";

/// Why a shell or package manager is left out.
pub const SHELL: &str =
    "shells and package managers the entrypoint does not run (scripts it does not run name them)";
/// Why a link is left out.
pub const LINK: &str = "links to what is left out";
/// Why Python bytecode is left out.
pub const BYTECODE: &str = "bytecode Debian compiled at install time for packages' modules (not precompiled, as in the catalogue)";

/// How to slim, besides what the image says.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Keep setuid and setgid bits.
    pub keep_setuid: bool,
    /// The user the slim image runs as, instead of the source's.
    pub user: Option<String>,
}

/// Why the slim image has a file from the source image rather than from a package.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "origin", content = "package")]
pub enum Copied {
    /// No package owns it.
    Unowned,
    /// Its package's copy differs: modified in the image.
    ModifiedInImage(String),
    /// A package's, of a distribution bareboat does not rebuild from, carried as it is.
    Package(String),
}

/// A file of the source image the slim image carries as it is.
#[derive(Clone, Debug, Serialize)]
pub struct CopiedFile {
    /// Its path.
    pub path: String,
    /// Why it is copied.
    #[serde(flatten)]
    pub origin: Copied,
}

/// A package the slim image installs.
#[derive(Clone, Debug, Serialize)]
pub struct KeptPackage {
    /// Its name.
    pub name: String,
    /// The version the slim image installs: the image's, unless `replaced` says otherwise.
    pub version: String,
    /// What the image had instead, when the archive no longer has it: the nearest newer
    /// version of the same source package replaces it.
    pub replaced: Option<Replaced>,
    /// Whether the catalogue level brings it whole, rather than sliced to what is needed.
    pub from_catalogue: bool,
    /// The paths kept of it, when sliced.
    pub paths: Vec<String>,
}

/// The package an image had, which the archive no longer has.
#[derive(Clone, Debug, Serialize)]
pub struct Replaced {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
}

/// Something of the source image left out on purpose.
#[derive(Clone, Debug, Serialize)]
pub struct Dropped {
    /// Its path.
    pub path: String,
    /// Why.
    pub reason: String,
}

/// Who the slim image runs as.
#[derive(Clone, Debug, Serialize)]
pub struct User {
    /// The source's `User`, as its config gives it.
    pub source: String,
    /// The slim image's: numeric.
    pub slim: String,
    /// What changed, when something did.
    pub note: Option<String>,
}

/// What the slim image is made of.
#[derive(Debug, Serialize)]
pub struct Plan {
    /// The image's Debian release, or the distribution it is of.
    pub release: String,
    /// The catalogue level it starts from, or `none` for another distribution.
    pub level: String,
    /// The packages it installs: the catalogue level's that the application needs, and
    /// the others it needs, sliced.
    pub packages: Vec<KeptPackage>,
    /// The image's own files it carries.
    pub copied: Vec<CopiedFile>,
    /// What the application needs that the catalogue level provides anyway: the runtime
    /// data, generated afresh.
    pub from_catalogue: Vec<String>,
    /// What was left out on purpose.
    pub dropped: Vec<Dropped>,
    /// The setuid and setgid bits removed.
    pub setuid_stripped: Vec<String>,
    /// Installed packages none of whose files are needed.
    pub excluded: Vec<String>,
    /// Who it runs as.
    pub user: User,
    /// The spec it is built from.
    #[serde(skip)]
    pub spec: Spec,
}

/// Why a slim cannot be planned.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The image is not a Debian release bareboat builds.
    #[error(
        "the image is {found}: slim rebuilds Debian 12 (bookworm) and 13 (trixie) from the archive, and carries other distributions' files as they are, but not another Debian release's"
    )]
    NotDebian {
        /// What its os-release says.
        found: String,
    },
    /// The archive has neither the image's version of a package, nor a newer one of its
    /// source.
    #[error(
        "{name} {version} is gone from the archive, and {release} has no newer version of its source package {source_name}: slim never installs an older one; give --mirror a snapshot of the archive that has it"
    )]
    VersionGone {
        /// The package.
        name: String,
        /// The image's version.
        version: String,
        /// Its source package.
        source_name: String,
        /// The release searched.
        release: &'static str,
    },
    /// The user to run as is not one the image knows.
    #[error(
        "the image runs as user {0:?}, which its /etc/passwd does not list: name a numeric --user"
    )]
    UnknownUser(String),
    /// Reading or staging the image's files failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// The image being slimmed, as read.
pub struct Source<'a> {
    /// Its files, their contents kept.
    pub files: &'a Kept,
    /// How it runs.
    pub config: &'a Config,
    /// Its Debian architecture.
    pub arch: &'a str,
    /// Its Debian release, for one bareboat rebuilds from its archive (Debian 12 or 13).
    pub release: Option<Distribution>,
    /// Its distribution, as its os-release names it.
    pub distribution: String,
    /// Who owns what in it.
    pub owners: &'a Owners,
}

/// The plan for slimming `source`, given what it needs and, for a Debian image, the
/// packages the archive has for its release; its own files are staged under `staging`.
pub fn plan(
    source: &Source<'_>,
    needs: &Needs,
    archive: Option<&Universe>,
    options: &Options,
    staging: &Path,
) -> Result<Plan, Error> {
    let debian = source.release.zip(archive);
    let mut sorted = sort(source, needs, debian.is_some())?;
    let mut generated = Vec::new();
    let rebuilt = match debian {
        Some((release, archive)) => rebuild(source, release, archive, &sorted.needed)?,
        None => carry(source, &mut sorted, &mut generated)?,
    };
    let Rebuilt {
        level,
        mut spec,
        packages,
        excluded,
    } = rebuilt;
    let image = source.files;
    let mut setuid_stripped = Vec::new();
    spec.files = stage(
        image,
        &sorted.copied,
        options,
        staging,
        &mut setuid_stripped,
    )?;
    for (i, (path, content)) in generated.iter().enumerate() {
        let src = staging.join(format!("generated-{i}"));
        std::fs::write(&src, content)?;
        spec.files.push(FileSpec {
            src,
            dst: path.clone(),
            mode: Some(0o644),
            uid: 0,
            gid: 0,
        });
    }
    for p in packages.iter().flat_map(|p| &p.paths) {
        let setuid = image.view.get(p).is_some_and(|n| n.mode & 0o6000 != 0);
        let shown = format!("/{p}");
        if setuid && !options.keep_setuid && !setuid_stripped.contains(&shown) {
            setuid_stripped.push(shown);
        }
    }
    if options.keep_setuid {
        spec.keep_setuid = vec!["**".into()];
    }
    let user = user_of(image, source.config, options, &mut spec)?;
    run_as_source(source.config, &mut spec);
    spec.auto_deps = false;
    Ok(Plan {
        release: match source.release {
            Some(release) => release.codename().to_string(),
            None => source.distribution.clone(),
        },
        level: level.to_string(),
        packages,
        copied: sorted.copied,
        from_catalogue: sorted.from_catalogue,
        dropped: sorted.dropped,
        setuid_stripped,
        excluded,
        user,
        spec,
    })
}

/// What the application needs, sorted by where the slim image gets it.
struct Sorted<'a> {
    /// Of each package, the paths needed (the image's copy being the package's).
    needed: BTreeMap<&'a str, (&'a Installed, Vec<String>)>,
    /// The image's own files, copied.
    copied: Vec<CopiedFile>,
    /// The runtime data the catalogue level makes.
    from_catalogue: Vec<String>,
    /// What is left out on purpose.
    dropped: Vec<Dropped>,
}

/// Sorts what `needs` names: left out (shells and package managers the entrypoint does not
/// run, links to them, Debian's compiled bytecode), runtime data the catalogue makes (when
/// there is a `catalogue`), a package's, or the image's own.
fn sort<'a>(source: &Source<'a>, needs: &Needs, catalogue: bool) -> Result<Sorted<'a>, Error> {
    let (image, owners) = (source.files, source.owners);
    let entry = needs.entrypoint.as_deref().map(|e| format!("/{e}"));
    let allowed = |path: &str, whys: &BTreeSet<Why>| {
        !audit::is_shell_or_package_manager(path)
            || whys.iter().any(|w| match w {
                Why::Entrypoint | Why::Keep(_) | Why::Probed => true,
                Why::InterpreterOf(of) => Some(of) == entry.as_ref(),
                _ => false,
            })
    };
    let gone: BTreeSet<String> = (needs.paths.iter())
        .filter(|(p, whys)| !allowed(p, whys))
        .map(|(p, _)| format!("/{p}"))
        .collect();
    let mut sorted = Sorted {
        needed: BTreeMap::new(),
        copied: Vec::new(),
        from_catalogue: Vec::new(),
        dropped: Vec::new(),
    };
    for (path, whys) in &needs.paths {
        let shown = format!("/{path}");
        let dropped = |reason: &str| Dropped {
            path: shown.clone(),
            reason: reason.into(),
        };
        if gone.contains(&shown) {
            sorted.dropped.push(dropped(SHELL));
            continue;
        }
        if whys
            .iter()
            .all(|w| matches!(w, Why::LinkTo(t) if gone.contains(t)))
        {
            sorted.dropped.push(dropped(LINK));
            continue;
        }
        // The catalogue level makes its runtime data afresh (the CA bundle and keystores
        // from the packages' certificates, the accounts): the image's copies are not taken.
        if catalogue && whys.contains(&Why::RuntimeData) {
            sorted.from_catalogue.push(shown);
            continue;
        }
        let Some(node) = image.view.get(path) else {
            continue;
        };
        if is_package_bytecode(path, owners) {
            sorted.dropped.push(dropped(BYTECODE));
            continue;
        }
        let copy = |origin| CopiedFile {
            path: shown.clone(),
            origin,
        };
        match owners.origin(image, path)? {
            Origin::Package(package) if node.kind != Kind::Dir => {
                let entry = (sorted.needed.entry(&package.name)).or_insert((package, Vec::new()));
                entry.1.push(path.clone());
            }
            Origin::Package(_) => {}
            Origin::Modified(package) => sorted
                .copied
                .push(copy(Copied::ModifiedInImage(package.name.clone()))),
            Origin::Unowned => sorted.copied.push(copy(Copied::Unowned)),
        }
    }
    Ok(sorted)
}

/// What the spec is built on, and the packages it installs.
struct Rebuilt {
    level: &'static str,
    spec: Spec,
    packages: Vec<KeptPackage>,
    excluded: Vec<String>,
}

/// A Debian image's needed packages, installed again from the archive on the catalogue
/// level that covers them.
fn rebuild(
    source: &Source<'_>,
    release: Distribution,
    archive: &Universe,
    needed: &BTreeMap<&str, (&Installed, Vec<String>)>,
) -> Result<Rebuilt, Error> {
    let owners = source.owners;
    let names: BTreeSet<&str> = needed.keys().copied().collect();
    let (level, mut spec) = level_for(release, source.arch, &names, &owners.packages);
    let carried = catalogue_closure(&spec, &owners.packages);
    let mut packages = Vec::new();
    for (&name, (package, paths)) in needed {
        let whole = carried.contains(name);
        // What the application runs with is what it ran with: a catalogue package it needs
        // comes at the image's version too, unless the archive no longer has it.
        let (name, version, replaced) = match in_archive(archive, package, release)? {
            None => (name.to_string(), package.version.clone(), None),
            Some((name, version)) => {
                let replaced = Replaced {
                    version: package.version.clone(),
                    name: package.name.clone(),
                };
                (name, version, Some(replaced))
            }
        };
        let pinned = PackageRequest::parse(&format!("{name}={version}"));
        match spec.packages.iter_mut().find(|r| r.name == name) {
            Some(request) => *request = pinned.clone(),
            // A dependency of the catalogue's packages is pinned too: requesting it does not
            // move it out of their layer.
            None if whole => spec.packages.push(pinned.clone()),
            None => {}
        }
        let mut paths = paths.clone();
        if !whole {
            paths.push(format!("usr/share/doc/{name}/copyright"));
            spec.packages.push(pinned);
            spec.keep_only.push((name.clone(), paths.clone()));
        }
        packages.push(KeptPackage {
            name,
            version,
            replaced,
            from_catalogue: whole,
            paths: if whole { Vec::new() } else { paths },
        });
    }
    let own: Vec<String> = (packages.iter())
        .filter(|p| !p.from_catalogue)
        .map(|p| p.name.clone())
        .collect();
    if !own.is_empty() {
        spec.levels.push(Level {
            name: "packages".into(),
            roots: own,
            exclude: Vec::new(),
        });
    }
    // What the image installed and the application does not need stays out, though a
    // needed package depends on it.
    let excluded: Vec<String> = (owners.packages.iter())
        .map(|p| p.name.clone())
        .filter(|n| !carried.contains(n.as_str()) && !packages.iter().any(|k| &k.name == n))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    spec.exclude.extend(excluded.iter().cloned());
    Ok(Rebuilt {
        level,
        spec,
        packages,
        excluded,
    })
}

/// What the level of an image of another distribution is called: it has none.
pub const NO_LEVEL: &str = "none";

/// An image of another distribution (Alpine, a runtime built into `/usr/local`): what it
/// needs is carried as it is, with its os-release, and its package database (apk's, or
/// dpkg's `status`), written anew with only the packages whose files remain.
fn carry(
    source: &Source<'_>,
    sorted: &mut Sorted<'_>,
    generated: &mut Vec<(String, Vec<u8>)>,
) -> Result<Rebuilt, Error> {
    let image = source.files;
    for (_, (package, paths)) in std::mem::take(&mut sorted.needed) {
        for path in paths {
            sorted.copied.push(CopiedFile {
                path: format!("/{path}"),
                origin: Copied::Package(package.name.clone()),
            });
        }
    }
    let mut have: BTreeSet<String> = (sorted.copied.iter())
        .map(|c| c.path.trim_start_matches('/').to_string())
        .collect();
    for release in ["etc/os-release", "usr/lib/os-release", "etc/alpine-release"] {
        let Some((real, links)) = crate::needs::follow(image, release) else {
            continue;
        };
        if !image.view.contains_key(&real) {
            continue;
        }
        for path in links.into_iter().chain([real]) {
            if have.insert(path.clone()) {
                sorted.copied.push(CopiedFile {
                    path: format!("/{path}"),
                    origin: Copied::Unowned,
                });
            }
        }
    }
    let remains =
        |path: &str| crate::needs::entry_path(image, path).is_some_and(|p| have.contains(&p));
    let mut packages = Vec::new();
    if let Some(db) = image.metadata.get(APK_INSTALLED) {
        let (text, listed) = apk::trim(&String::from_utf8_lossy(db), remains);
        generated.push((APK_INSTALLED.to_string(), text.into_bytes()));
        packages.extend(listed.into_iter().map(|l| KeptPackage {
            name: l.name,
            version: l.version,
            replaced: None,
            from_catalogue: false,
            paths: l.files,
        }));
    }
    let owned = source.owners.paths_by_package();
    let kept_of = |i: usize| -> Vec<String> {
        (owned[i].iter())
            .filter(|path| have.contains(**path))
            .map(|path| path.to_string())
            .collect()
    };
    let dpkg: Vec<(&Installed, Vec<String>)> = (source.owners.packages.iter().enumerate())
        .map(|(i, p)| (p, kept_of(i)))
        .filter(|(_, paths)| !paths.is_empty())
        .collect();
    if !source.owners.packages.is_empty() {
        let status: String = (dpkg.iter())
            .map(|(p, _)| format!("{}\n\n", p.paragraph.trim_end()))
            .collect();
        generated.push((bareboat_apt::dpkg::STATUS.to_string(), status.into_bytes()));
        packages.extend(dpkg.into_iter().map(|(p, paths)| KeptPackage {
            name: p.name.clone(),
            version: p.version.clone(),
            replaced: None,
            from_catalogue: false,
            paths,
        }));
    }
    let excluded = (source.owners.packages.iter())
        .map(|p| p.name.clone())
        .filter(|n| !packages.iter().any(|k| &k.name == n))
        .collect();
    // Nothing of Debian's: no packages, no levels; the accounts bareboat writes for every
    // image, under what is carried.
    let mut spec = catalog::spec(
        "static",
        Some("nonroot"),
        Distribution::Trixie,
        vec![source.arch.to_string()],
    )
    .map_err(|e| io::Error::other(e.to_string()))?;
    spec.packages.clear();
    spec.levels.clear();
    spec.exclude.clear();
    spec.keep_only.clear();
    Ok(Rebuilt {
        level: NO_LEVEL,
        spec,
        packages,
        excluded,
    })
}

/// Where the archive has `package` at the image's version, `None`; where it has only newer
/// versions of its source package, the name and version of the nearest (the same name
/// first, as a renamed binary such as a `t64` library is the source's next choice).
fn in_archive(
    archive: &Universe,
    package: &Installed,
    release: Distribution,
) -> Result<Option<(String, String)>, Error> {
    let from_archive = |id: &PackageId| !archive.is_installed(*id);
    if (archive.named(&package.name).filter(from_archive))
        .any(|id| archive.package(id).version() == package.version)
    {
        return Ok(None);
    }
    let gone = || Error::VersionGone {
        name: package.name.clone(),
        version: package.version.clone(),
        source_name: package.source_name().to_string(),
        release: release.codename(),
    };
    let had: Version = package.version.parse().map_err(|_| gone())?;
    let source_of = |p: &Package<'_>| {
        (p.source())
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or(p.name())
            .to_string()
    };
    (archive.ids().filter(from_archive))
        .map(|id| archive.package(id))
        .filter(|p| source_of(p) == package.source_name())
        // A binary of another name takes the image's place only if it says it does (a
        // `t64` library breaks, conflicts with or provides the name it replaces).
        .filter(|p| p.name() == package.name || names_in(p, &package.name))
        .filter_map(|p| Some((p.version().parse::<Version>().ok()?, p)))
        .filter(|(v, _)| *v > had)
        .min_by(|(a, pa), (b, pb)| {
            let renamed = |p: &Package<'_>| p.name() != package.name;
            (renamed(pa), a).cmp(&(renamed(pb), b))
        })
        .map(|(v, p)| Some((p.name().to_string(), v.to_string())))
        .ok_or_else(gone)
}

/// Whether the package `p` names `name` in its `Provides`, `Breaks` or `Conflicts`.
fn names_in(p: &Package<'_>, name: &str) -> bool {
    let fields = [p.provides(), p.breaks(), p.conflicts()];
    fields.into_iter().flatten().any(|field| {
        (parse_relations(field).unwrap_or_default().iter())
            .flatten()
            .any(|a| a.name == name)
    })
}

/// Whether `path` is (in) a `__pycache__` directory beside a package's Python modules,
/// which no package owns: Debian compiles them in `postinst`.
fn is_package_bytecode(path: &str, owners: &Owners) -> bool {
    let Some(at) = path.find("/__pycache__") else {
        return false;
    };
    let rest = &path[at + "/__pycache__".len()..];
    (rest.is_empty() || rest.starts_with('/')) && !owners.owns(path) && owners.owns(&path[..at])
}

/// The image's distribution, as its os-release names it, and its release when it is
/// Debian 12 or 13; a Debian release bareboat does not build for is refused.
pub fn release_of(image: &Kept) -> Result<(String, Option<Distribution>), Error> {
    let found = bareboat_inspect::packages::distribution(&image.metadata);
    let named = (found.as_ref())
        .map(|d| format!("{} ({})", d.pretty_name, d.id))
        .unwrap_or_else(|| "an image without os-release".into());
    match found.filter(|d| d.id == "debian") {
        None => Ok((named, None)),
        Some(d) => match Distribution::parse(&d.codename) {
            Ok(release) => Ok((named, Some(release))),
            Err(_) => Err(Error::NotDebian { found: named }),
        },
    }
}

/// The catalogue level that covers the packages `needed`, and its spec: a runtime any of
/// whose own packages (its closure over the image's packages, less `cc`'s) is needed, else
/// the highest C level any of whose own packages is.
fn level_for(
    release: Distribution,
    arch: &str,
    needed: &BTreeSet<&str>,
    installed: &[Installed],
) -> (&'static str, Spec) {
    let spec_of =
        |level: &str| catalog::spec(level, Some("nonroot"), release, vec![arch.into()]).ok();
    let cc = spec_of("cc").expect("cc is in every release");
    let below = catalogue_closure(&cc, installed);
    for runtime in RUNTIMES {
        let Some(spec) = spec_of(runtime) else {
            continue;
        };
        let own = catalogue_closure(&spec, installed);
        if own.iter().any(|p| !below.contains(p) && needed.contains(p)) {
            return (runtime, spec);
        }
    }
    let owns = |level: &str| {
        (catalog::image(level).ok())
            .and_then(|i| i.own_packages(release))
            .is_some_and(|own| own.iter().any(|p| needed.contains(p)))
    };
    let level = LEVELS
        .iter()
        .rev()
        .find(|l| owns(l))
        .copied()
        .unwrap_or("static");
    (
        level,
        spec_of(level).expect("the C levels are in every release"),
    )
}

/// The installed packages the catalogue levels of `spec` bring: the closure of their
/// packages over the image's own dependencies (the first installed alternative of each,
/// virtual names through `Provides`), without the catalogue's exclusions.
fn catalogue_closure<'a>(spec: &Spec, installed: &'a [Installed]) -> BTreeSet<&'a str> {
    let mut by_name: BTreeMap<String, &Installed> = BTreeMap::new();
    for p in installed {
        by_name.insert(p.name.clone(), p);
    }
    for p in installed {
        for provide in parse_provides(&dpkg::field(&p.paragraph, "Provides")).unwrap_or_default() {
            by_name.entry(provide.name).or_insert(p);
        }
    }
    let mut out = BTreeSet::new();
    let mut queue: Vec<&Installed> = (spec.levels.iter().flat_map(|l| &l.roots))
        .filter_map(|r| by_name.get(r).copied())
        .collect();
    while let Some(p) = queue.pop() {
        if spec.exclude.iter().any(|x| x == &p.name) || !out.insert(p.name.as_str()) {
            continue;
        }
        for relation in ["Pre-Depends", "Depends"] {
            for clause in parse_relations(&dpkg::field(&p.paragraph, relation)).unwrap_or_default()
            {
                queue.extend(clause.iter().find_map(|a| by_name.get(&a.name).copied()));
            }
        }
    }
    out
}

/// Stages the image's own files under `staging`, each as a spec file of its own with the
/// image's owner and mode: a file's content (with its time), a link as a link, a directory
/// empty.
fn stage(
    image: &Kept,
    copied: &[CopiedFile],
    options: &Options,
    staging: &Path,
    setuid_stripped: &mut Vec<String>,
) -> Result<Vec<FileSpec>, Error> {
    let mut files = Vec::new();
    for (i, file) in copied.iter().enumerate() {
        let path = file.path.trim_start_matches('/');
        let Some(node) = image.view.get(path) else {
            continue;
        };
        let src: PathBuf = staging.join(i.to_string());
        let mut mode = node.mode & 0o7777;
        if mode & 0o6000 != 0 && !options.keep_setuid {
            mode &= !0o6000;
            setuid_stripped.push(file.path.clone());
        }
        match &node.kind {
            Kind::Dir => {
                std::fs::create_dir(&src)?;
                std::fs::set_permissions(&src, std::fs::Permissions::from_mode(mode))?;
            }
            Kind::Symlink(target) => std::os::unix::fs::symlink(target, &src)?,
            Kind::File | Kind::Hardlink(_) => {
                let Some(stored) = node.content else {
                    return Err(Error::Io(io::Error::other(format!(
                        "{}: its content was not kept (the image's files are larger than the {} GiB a slim keeps)",
                        file.path,
                        crate::slim::MAX_KEPT >> 30
                    ))));
                };
                let mut out = std::fs::File::create(&src)?;
                io::copy(&mut image.view.open(&stored)?, &mut out)?;
                let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(node.mtime);
                out.set_modified(when)?;
            }
            _ => continue,
        }
        files.push(FileSpec {
            src,
            dst: path.to_string(),
            mode: matches!(node.kind, Kind::File | Kind::Hardlink(_)).then_some(mode),
            uid: u32::try_from(node.uid).unwrap_or(0),
            gid: u32::try_from(node.gid).unwrap_or(0),
        });
    }
    Ok(files)
}

/// The user the slim image runs as, with the account added when the catalogue has none
/// for it: the source's, or `65532` for a source that ran as root.
fn user_of(
    image: &Kept,
    config: &Config,
    options: &Options,
    spec: &mut Spec,
) -> Result<User, Error> {
    let source = config.user().clone().unwrap_or_default();
    let asked = options.user.clone();
    let named = asked.clone().unwrap_or_else(|| source.clone());
    // Root by its uid, whatever the image's passwd calls it.
    let root = account(image, &named).is_ok_and(|a| a.uid == 0);
    if root && asked.is_none() {
        spec.run.user = Some(NONROOT.into());
        return Ok(User {
            source,
            slim: NONROOT.into(),
            note: Some("the source runs as root; the slim image runs as nonroot (65532): give --user 0 to keep root".into()),
        });
    }
    let Account {
        uid,
        gid,
        name,
        home,
    } = account(image, &named)?;
    let builtin = bareboat_spec::accounts::BUILTIN_USERS
        .iter()
        .any(|(_, u)| *u == uid);
    if !builtin {
        spec.users.push(UserSpec {
            name,
            uid,
            gid: Some(gid),
            home: Some(home),
        });
        let groups = text(image, "etc/group");
        let known = bareboat_spec::accounts::GROUPS
            .iter()
            .any(|(_, g)| *g == gid);
        if !known {
            let group_name = (groups.lines())
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() >= 3 && f[2] == gid.to_string())
                .map_or_else(|| format!("group{gid}"), |f| f[0].to_string());
            spec.groups.push(GroupSpec {
                name: group_name,
                gid,
            });
        }
    }
    let slim = format!("{uid}:{gid}");
    spec.run.user = Some(slim.clone());
    Ok(User {
        note: asked.map(|u| format!("--user {u}")),
        source,
        slim,
    })
}

/// An account a user of the image names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// Its uid.
    pub uid: u32,
    /// Its group's gid.
    pub gid: u32,
    /// Its name.
    pub name: String,
    /// Its home.
    pub home: String,
}

/// The account `user` (as a config's `User` gives it: a name or uid, with a gid after
/// `:`) names in the image: one its `/etc/passwd` lists, a bare uid (of group the same),
/// or root for none.
pub fn account(image: &Kept, user: &str) -> Result<Account, Error> {
    let (name, group) = user.split_once(':').unwrap_or((user, ""));
    let name = if name.is_empty() { "0" } else { name };
    let passwd = text(image, "etc/passwd");
    let listed = (passwd.lines())
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 6 && (f[0] == name || f[2] == name));
    let unknown = || Error::UnknownUser(user.to_string());
    let mut account = match (listed, name.parse::<u32>()) {
        (Some(f), _) => Account {
            uid: f[2].parse().map_err(|_| unknown())?,
            gid: f[3].parse().unwrap_or(0),
            name: f[0].to_string(),
            home: f[5].to_string(),
        },
        (None, Ok(uid)) => Account {
            uid,
            gid: uid,
            name: format!("user{uid}"),
            home: "/".into(),
        },
        (None, Err(_)) => return Err(unknown()),
    };
    if let Ok(gid) = group.parse() {
        account.gid = gid;
    }
    Ok(account)
}

/// A small text file of the image, or nothing.
fn text(image: &Kept, path: &str) -> String {
    (image.view.read(path, 1 << 20))
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// How the slim image runs: as the source does, with its entrypoint and command (never a
/// runtime level's), working directory, environment, ports and labels.
fn run_as_source(config: &Config, spec: &mut Spec) {
    spec.run.entrypoint = Some(config.entrypoint().clone().unwrap_or_default());
    spec.run.cmd = config.cmd().clone();
    spec.run.workdir = config.working_dir().clone().filter(|w| !w.is_empty());
    spec.run.env = (config.env().iter().flatten())
        .filter_map(|e| e.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    spec.run.ports = config.exposed_ports().clone().unwrap_or_default();
    spec.run.labels = config
        .labels()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
}
