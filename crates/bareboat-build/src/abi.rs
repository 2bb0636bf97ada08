//! The ABI guard: an added program that needs a symbol version (`GLIBC_2.38`) that the
//! library the image holds does not define cannot start. Each program's needs, from its
//! `.gnu.version_r`, are checked against the `.gnu.version_d` of the library the loader
//! would find in the tree (the unpacked packages over the base's layers).
//!
//! Symbol versions do not show the 64-bit `time_t` that trixie's armhf and armel libraries
//! moved to: a library whose ABI changed kept its soname, and its package took a `t64`
//! suffix (`libssl3t64`). A 32-bit program built with a 32-bit `time_t` (every bookworm
//! armhf and armel program) still starts on trixie, since glibc keeps its 32-bit time
//! functions; but a `time_t` it passes to, or gets from, a `t64` library is misread. Such a
//! program is found by the 32-bit time functions it calls ([`FileKind::Dynamic`]'s
//! `time32`), and refused where it needs a library of a `t64` package; one that needs only
//! glibc is built with a warning that its clock ends in 2038.

use std::collections::BTreeSet;

use serde::Serialize;

use bareboat_apt::sources::Distribution;
use bareboat_elf::Unmet;
use bareboat_rootfs::rootfs::{ELSEWHERE, NodeKind, Rootfs};

use crate::deps::{self, Analysis, FileKind};
use crate::shared::Versions;

/// The highest version of each versioned ABI each release's libraries define: glibc,
/// libstdc++ and its C++ ABI.
const RELEASES: &[(Distribution, &[&str])] = &[
    (
        Distribution::Bookworm,
        &["GLIBC_2.36", "GLIBCXX_3.4.30", "CXXABI_1.3.13"],
    ),
    (
        Distribution::Trixie,
        &["GLIBC_2.41", "GLIBCXX_3.4.33", "CXXABI_1.3.15"],
    ),
];

/// A program that needs a symbol version its library lacks, and what to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AbiMismatch {
    /// The program, the version, the library and the highest version it has.
    #[serde(flatten)]
    pub unmet: Unmet,
    /// What to do.
    pub fix: String,
    /// For a program built with a 32-bit `time_t`, the `t64` package of the library built
    /// with a 64-bit one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_t: Option<String>,
}

impl AbiMismatch {
    /// What the mismatch does to the program.
    pub fn consequence(&self) -> &'static str {
        match self.time_t {
            Some(_) => "it would misread every time it passes there",
            None => "it cannot start",
        }
    }
}

impl std::fmt::Display for AbiMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Unmet {
            program,
            needs,
            library,
            highest,
        } = &self.unmet;
        if let Some(package) = &self.time_t {
            return write!(
                f,
                "{program} was built with a 32-bit time_t, and {library} (package {package}) with a 64-bit one"
            );
        }
        let highest = highest.as_deref().unwrap_or("none of that name");
        write!(
            f,
            "{program} needs {needs} from {library}, which defines at most {highest}"
        )
    }
}

/// Every mismatch, a line each, then what to do about the first.
pub fn describe(mismatches: &[AbiMismatch]) -> String {
    let lines: Vec<String> = (mismatches.iter())
        .map(|m| format!("{m}: {}", m.consequence()))
        .collect();
    let fix = mismatches
        .first()
        .map(|m| m.fix.as_str())
        .unwrap_or_default();
    format!("{}\n  hint: {fix}", lines.join("\n"))
}

/// The ABI mismatches of `analysis` (the added files) against the libraries of `tree`, an
/// image of `release` for `arch`.
pub fn check(
    tree: &Rootfs,
    recorded: Option<&Versions>,
    analysis: &[Analysis],
    arch: &str,
    release: Distribution,
) -> Vec<AbiMismatch> {
    let tree = Built { tree, recorded };
    let conf = bareboat_elf::ld_so_conf(&tree);
    let mut out = Vec::new();
    for a in analysis {
        let FileKind::Dynamic {
            search,
            needed,
            time32,
            ..
        } = &a.kind
        else {
            continue;
        };
        let paths = |library: &str| deps::search_paths(library, search, &conf, arch);
        for unmet in bareboat_elf::unmet_versions(&tree, a, paths) {
            let fix = fix(&unmet.needs, release);
            out.push(AbiMismatch {
                unmet,
                fix,
                time_t: None,
            });
        }
        if *time32 && has_64bit_time(arch, release) {
            let before = out.len();
            for library in needed {
                // The library the loader takes: the first found, whoever put it there.
                let found = paths(library).into_iter().find_map(|p| {
                    let real = tree.tree.resolve(p.trim_start_matches('/'))?;
                    Some((p, tree.tree.get(&real)?.package.clone()))
                });
                let Some((path, Some(package))) = found else {
                    continue;
                };
                if !package.ends_with("t64") {
                    continue;
                }
                out.push(AbiMismatch {
                    unmet: Unmet {
                        program: a.path.clone(),
                        needs: "a 32-bit time_t".into(),
                        library: format!("/{}", path.trim_start_matches('/')),
                        highest: None,
                    },
                    fix: format!(
                        "build the program on {} (its compilers default to a 64-bit time_t), or with -D_TIME_BITS=64 -D_FILE_OFFSET_BITS=64",
                        release.codename()
                    ),
                    time_t: Some(package),
                });
            }
            if out.len() == before {
                tracing::warn!(
                    "{} was built with a 32-bit time_t: it runs on {}'s glibc, but its clock ends in January 2038 (build it on {} to move past that)",
                    a.path,
                    release.codename(),
                    release.codename()
                );
            }
        }
    }
    out
}

/// Whether the libraries of `release` for `arch` are built with a 64-bit `time_t` where
/// the architecture's older releases had a 32-bit one: trixie's armhf and armel.
fn has_64bit_time(arch: &str, release: Distribution) -> bool {
    matches!(arch, "armhf" | "armel") && release != Distribution::Bookworm
}

/// A rootfs being built, as the tree its programs' libraries are looked up in, with the
/// symbol versions recorded for libraries whose content is held elsewhere.
pub(crate) struct Built<'a> {
    pub(crate) tree: &'a Rootfs,
    pub(crate) recorded: Option<&'a Versions>,
}

impl<'a> Built<'a> {
    /// `tree`, every library's content in it.
    pub(crate) fn of(tree: &'a Rootfs) -> Built<'a> {
        Built {
            tree,
            recorded: None,
        }
    }
}

impl bareboat_elf::Tree for Built<'_> {
    fn read(&self, path: &str) -> Option<Vec<u8>> {
        self.tree.read(path.trim_start_matches('/'))
    }

    fn list(&self, dir: &str) -> Vec<String> {
        let dir = dir.trim_matches('/');
        let Some(real) = self.tree.resolve(dir) else {
            return Vec::new();
        };
        let prefix = format!("{real}/");
        (self.tree.paths_under(dir).into_iter())
            .filter_map(|p| p.strip_prefix(&prefix).map(String::from))
            .filter(|name| !name.contains('/'))
            .collect()
    }

    fn defined_versions(&self, path: &str) -> Option<BTreeSet<String>> {
        let real = self.tree.resolve(path.trim_start_matches('/'))?;
        match self.tree.get(&real)?.kind {
            // Held elsewhere: what the shared cache recorded of it.
            NodeKind::File {
                offset: ELSEWHERE, ..
            } => self.recorded?.get(&real).cloned(),
            _ => bareboat_elf::version_definitions(&self.read(path)?).ok(),
        }
    }
}

/// The way out of a missing `version` in an image of `release`: the release whose libraries
/// define it, or building the program on the image's release.
fn fix(version: &str, release: Distribution) -> String {
    let provides = |highest: &[&str]| {
        let defined = highest.iter().map(ToString::to_string).collect();
        bareboat_elf::highest_like(version, &defined)
            .is_some_and(|h| !bareboat_elf::is_older(&h, version))
    };
    let newer = RELEASES
        .iter()
        .find(|(r, highest)| *r != release && provides(highest));
    match newer {
        Some((r, _)) => format!(
            "build the image for {} (--release {}), whose libraries define {version}, or build the program on {}",
            r.codename(),
            r.codename(),
            release.codename()
        ),
        None => format!(
            "build the program on {} (in a {} container, say), so that it needs only what its libraries define",
            release.codename(),
            release.codename()
        ),
    }
}
