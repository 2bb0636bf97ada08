//! The ABI guard: an added program that needs a symbol version (`GLIBC_2.38`) that the
//! library the image holds does not define cannot start. Each program's needs, from its
//! `.gnu.version_r`, are checked against the `.gnu.version_d` of the library the loader
//! would find in the tree (the unpacked packages over the base's layers).

use std::collections::BTreeSet;

use serde::Serialize;

use bareboat_apt::sources::Distribution;
use bareboat_elf::Unmet;
use bareboat_rootfs::rootfs::Rootfs;

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
}

impl std::fmt::Display for AbiMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Unmet {
            program,
            needs,
            library,
            highest,
        } = &self.unmet;
        let highest = highest.as_deref().unwrap_or("none of that name");
        write!(
            f,
            "{program} needs {needs} from {library}, which defines at most {highest}"
        )
    }
}

/// Every mismatch, a line each, then what to do about the first.
pub fn describe(mismatches: &[AbiMismatch]) -> String {
    let lines: Vec<String> = mismatches.iter().map(ToString::to_string).collect();
    let fix = mismatches
        .first()
        .map(|m| m.fix.as_str())
        .unwrap_or_default();
    format!("{}: it cannot start\n  hint: {fix}", lines.join("\n"))
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
        let FileKind::Dynamic { search, .. } = &a.kind else {
            continue;
        };
        let paths = |library: &str| deps::search_paths(library, search, &conf, arch);
        for unmet in bareboat_elf::unmet_versions(&tree, a, paths) {
            let fix = fix(&unmet.needs, release);
            out.push(AbiMismatch { unmet, fix });
        }
    }
    out
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
        if let Some(bytes) = self.read(path) {
            return bareboat_elf::version_definitions(&bytes).ok();
        }
        let real = self.tree.resolve(path.trim_start_matches('/'))?;
        self.recorded?.get(&real).cloned()
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
