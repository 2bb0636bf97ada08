//! What an added file needs at run time, and which Debian packages provide it.
//!
//! An ELF file names its program interpreter (`PT_INTERP`), the sonames it needs
//! (`DT_NEEDED`) and where to look for them (`DT_RPATH`, or `DT_RUNPATH` which overrides it).
//! Each need is looked up as the dynamic loader would, first among the files the spec adds and
//! then in the archive's Contents index; Debian's own `Depends` then carry each package's
//! libraries' needs in turn, and the added libraries are analysed like any other added file.
//!
//! Vendor repositories often publish no Contents index, and a mirror may have none that can
//! be verified. A need the Contents indexes do not answer is then looked up by package name:
//! Debian Policy 8.1 names a library's package after its soname (`libfoo.so.1` is in
//! `libfoo1`, `libfoo-2.0.so.0` in `libfoo-2.0-0`, with `t64` after the 2024 time_t
//! transition), with a few well-known exceptions ([`name_candidates`]). A candidate is only
//! taken once its verified `.deb`'s own file list is seen to ship the file.
//!
//! A script's `#!` line names its interpreter, whose package is added. `#!/usr/bin/env NAME`
//! is resolved to NAME's package, but `/usr/bin/env` itself is not added: it would pull in
//! coreutils, and a distroless image is better off starting the interpreter directly. A
//! script the image starts (its entrypoint) with such a line is refused, with the fix; other
//! such scripts are reported, since they run only when invoked through their interpreter.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;

use bareboat_apt::contents::ContentsIndex;
use bareboat_apt::dpkg::merged_usr;
pub use bareboat_elf::{Analysis, FileKind};
use serde::Serialize;

use crate::Error;
use crate::hostfiles::{HostEntry, HostKind};

/// Where the loader looks for `soname`, as paths of a merged-/usr tree.
pub fn search_paths(soname: &str, search: &[String], conf: &[String], arch: &str) -> Vec<String> {
    (bareboat_elf::search_paths(soname, search, conf, arch).iter())
        .map(|p| merged_usr(p))
        .collect()
}

/// Analyses the host file `src`, which the image will hold at `path`.
pub fn analyze(src: &Path, path: &str) -> Result<Analysis, Error> {
    bareboat_elf::analyze(src, path).map_err(|reason| Error::Unreadable {
        path: src.display().to_string(),
        reason,
    })
}

/// Analyses every regular file among `entries`.
pub fn analyze_all(entries: &[HostEntry]) -> Result<Vec<Analysis>, Error> {
    entries
        .iter()
        .filter(|e| e.kind == HostKind::File)
        .map(|e| analyze(&e.src, &e.dst))
        .collect()
}

/// How the package that provides a need was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FoundBy {
    /// The archive's Contents index lists the file in it.
    Contents,
    /// Its name follows from the file's name, and its own file list ships the file.
    PackageName,
}

impl std::fmt::Display for FoundBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FoundBy::Contents => "contents",
            FoundBy::PackageName => "package-name",
        })
    }
}

/// Where the providers of needs are looked up, in order.
pub struct Providers<'a> {
    /// The archive's Contents indexes.
    pub contents: &'a [ContentsIndex],
    /// The file lists of candidate packages named after the needs, already fetched.
    pub by_name: &'a ContentsIndex,
}

/// A need nothing provides yet: the paths the loader would try for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Missing {
    /// The added file with the need.
    pub file: String,
    /// The library or interpreter it needs.
    pub need: String,
    /// The image paths the loader would try.
    pub paths: Vec<String>,
}

/// Packages found for the added files of one architecture.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Found {
    /// Each package to add, with why: `/app/server needs libssl.so.3 (found by contents)`.
    pub packages: BTreeMap<String, Vec<String>>,
    /// Needs the added files satisfy themselves.
    pub satisfied_by_added: Vec<String>,
    /// Needs already met by the packages the spec installs anyway.
    pub already_installed: Vec<String>,
    /// Things worth telling the user that are not errors.
    pub notes: Vec<String>,
    /// Needs no provider answered.
    #[serde(skip)]
    pub missing: Vec<Missing>,
}

impl Found {
    /// Refuses the first need nothing provides.
    pub fn require_all(self, arch: &str) -> Result<Found, Error> {
        match self.missing.first() {
            Some(m) => Err(Error::Unprovided {
                file: m.file.clone(),
                need: m.need.clone(),
                arch: arch.to_string(),
            }),
            None => Ok(self),
        }
    }
}

/// Libraries whose packages are not named after them (Debian Policy 8.1's exceptions that
/// matter most): a soname's stem, and the packages that ship it in trixie and bookworm.
const NAME_EXCEPTIONS: &[(&str, &[&str])] = &[
    ("libz", &["zlib1g"]),
    ("libssl", &["libssl3t64", "libssl3"]),
    ("libcrypto", &["libssl3t64", "libssl3"]),
    ("libgcc_s", &["libgcc-s1"]),
    ("libstdc++", &["libstdc++6"]),
];

/// The libraries of glibc, all in `libc6`.
const GLIBC: &[&str] = &[
    "libc",
    "libm",
    "libmvec",
    "libpthread",
    "libdl",
    "librt",
    "libresolv",
    "libutil",
    "libanl",
    "libBrokenLocale",
    "libthread_db",
    "libc_malloc_debug",
    "libmemusage",
    "libpcprofile",
    "libnss_files",
    "libnss_dns",
    "libnss_compat",
    "libnss_hesiod",
];

/// The packages that may ship `need` (a soname, or a program's path), by name: the
/// exceptions first, then Debian Policy 8.1's rule and its `t64` variant. A program is
/// looked for in a package of its own name (`python3`, `python3-minimal`).
pub fn name_candidates(need: &str) -> Vec<String> {
    let name = need.rsplit('/').next().unwrap_or(need);
    let Some((stem, version)) = name.split_once(".so") else {
        return if need.contains('/') {
            vec![name.to_string(), format!("{name}-minimal")]
        } else {
            Vec::new()
        };
    };
    let version = version.trim_start_matches('.');
    // The loaders: ld-linux-x86-64.so.2, ld-linux-aarch64.so.1, ld-linux-armhf.so.3,
    // armel's ld-linux.so.3, ld-linux-riscv64-lp64d.so.1, ppc64el's ld64.so.2 and s390x's
    // ld64.so.1.
    if name.starts_with("ld-linux") || stem == "ld64" || GLIBC.contains(&stem) {
        return vec!["libc6".into()];
    }
    if let Some((_, packages)) = NAME_EXCEPTIONS.iter().find(|(s, _)| *s == stem) {
        return packages.iter().map(|p| p.to_string()).collect();
    }
    // Policy 8.1: the soname's name and major version, a hyphen between them when the name
    // ends in a digit; package names are lower case and have no underscores.
    let package = |name: String| name.to_ascii_lowercase().replace('_', "-");
    let major = version.split('.').next().unwrap_or_default();
    if major.is_empty() {
        return vec![package(stem.to_string())];
    }
    let base = match stem.chars().last() {
        Some(c) if c.is_ascii_digit() => package(format!("{stem}-{major}")),
        _ => package(format!("{stem}{major}")),
    };
    vec![format!("{base}t64"), base]
}

/// The packages that ship the first of `paths` that any of `indexes` lists.
fn providers<'a>(indexes: &[&'a ContentsIndex], paths: &[String]) -> BTreeSet<&'a str> {
    let mut candidates = BTreeSet::new();
    for p in paths {
        candidates.extend(indexes.iter().flat_map(|c| c.packages(p)));
        if !candidates.is_empty() {
            break;
        }
    }
    candidates
}

/// Looks up what `files` need, for `arch`, among the added paths and then the `providers`;
/// what none answers is listed in [`Found::missing`]. `installed` holds the packages the
/// spec installs without these additions; needs met by them are not added again.
/// `entrypoint` is the program the image starts.
pub fn find_packages(
    files: &[Analysis],
    arch: &str,
    added: &HashSet<String>,
    from: &Providers<'_>,
    installed: &HashSet<String>,
    entrypoint: Option<&str>,
) -> Result<Found, Error> {
    let mut found = Found::default();
    let contents: Vec<&ContentsIndex> = from.contents.iter().collect();
    let add = |found: &mut Found, file: &str, need: &str, paths: &[String]| {
        if let Some(p) = paths.iter().find(|p| added.contains(&merged_usr(p))) {
            found
                .satisfied_by_added
                .push(format!("{file} needs {need}: added at /{}", merged_usr(p)));
            return Ok(());
        }
        let (candidates, found_by) = match providers(&contents, paths) {
            c if c.is_empty() => (providers(&[from.by_name], paths), FoundBy::PackageName),
            c => (c, FoundBy::Contents),
        };
        if let Some(have) = candidates.iter().find(|c| installed.contains(**c)) {
            found
                .already_installed
                .push(format!("{file} needs {need}: {have} is installed"));
            return Ok(());
        }
        let Some(first) = candidates.first() else {
            found.missing.push(Missing {
                file: file.to_string(),
                need: need.to_string(),
                paths: paths.to_vec(),
            });
            return Ok(());
        };
        if candidates.len() > 1 {
            let others: Vec<&str> = candidates.iter().skip(1).copied().collect();
            found.notes.push(format!(
                "{need} is shipped by several packages; chose {first} over {}",
                others.join(", ")
            ));
        }
        found
            .packages
            .entry(first.to_string())
            .or_default()
            .push(format!("{file} needs {need} (found by {found_by})"));
        Ok::<(), Error>(())
    };
    for a in files {
        match &a.kind {
            FileKind::Data if entrypoint == Some(a.path.as_str()) => {
                return Err(Error::NotAProgram {
                    file: a.path.clone(),
                });
            }
            FileKind::Data => {}
            FileKind::Static { arch: found_arch }
            | FileKind::Dynamic {
                arch: found_arch, ..
            } if found_arch != arch => {
                return Err(Error::WrongArch {
                    file: a.path.clone(),
                    found: found_arch.clone(),
                    arch: arch.to_string(),
                });
            }
            FileKind::Static { .. } => found.notes.push(format!(
                "{} is statically linked and needs no packages: catalog:static is all it needs",
                a.path
            )),
            FileKind::Dynamic {
                interpreter,
                needed,
                search,
                ..
            } => {
                if let Some(interp) = interpreter {
                    add(&mut found, &a.path, interp, std::slice::from_ref(interp))?;
                }
                for soname in needed {
                    add(
                        &mut found,
                        &a.path,
                        soname,
                        // Before any package is chosen there is no image whose
                        // ld.so.conf could add directories.
                        &search_paths(soname, search, &[], arch),
                    )?;
                }
            }
            FileKind::Script {
                interpreter,
                via_env,
            } => match via_env {
                Some(program) => {
                    let path = format!("/usr/bin/{program}");
                    if entrypoint == Some(a.path.as_str()) {
                        return Err(Error::EnvEntrypoint {
                            file: a.path.clone(),
                            program: program.clone(),
                            interpreter: path,
                        });
                    }
                    found.notes.push(format!(
                        "{} starts with #!/usr/bin/env {program}; the image has no /usr/bin/env, so run it as {path} {}",
                        a.path, a.path
                    ));
                    add(&mut found, &a.path, &path, std::slice::from_ref(&path))?;
                }
                None => add(
                    &mut found,
                    &a.path,
                    interpreter,
                    std::slice::from_ref(interpreter),
                )?,
            },
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bareboat_apt::index::Compression;

    const CONTENTS: &str = "\
usr/lib/x86_64-linux-gnu/libc.so.6 libs/libc6
usr/lib64/ld-linux-x86-64.so.2 libs/libc6
usr/lib/x86_64-linux-gnu/libssl.so.3 libs/libssl3t64
usr/lib/x86_64-linux-gnu/libz.so.1 libs/zlib1g
usr/bin/python3.13 python/python3.13-minimal
usr/bin/python3 python/python3-minimal
";

    fn contents() -> Vec<ContentsIndex> {
        vec![ContentsIndex::parse(CONTENTS.as_bytes(), Compression::None, "t").unwrap()]
    }

    /// Looks needs up in [`CONTENTS`] alone, and refuses what it does not answer.
    fn lookup(
        files: &[Analysis],
        arch: &str,
        added: &HashSet<String>,
        installed: &HashSet<String>,
        entrypoint: Option<&str>,
    ) -> Result<Found, Error> {
        let contents = contents();
        let from = Providers {
            contents: &contents,
            by_name: &ContentsIndex::default(),
        };
        find_packages(files, arch, added, &from, installed, entrypoint)?.require_all(arch)
    }

    fn dynamic(path: &str, needed: &[&str], search: &[&str]) -> Analysis {
        Analysis {
            path: path.into(),
            kind: FileKind::Dynamic {
                arch: "amd64".into(),
                interpreter: Some("/lib64/ld-linux-x86-64.so.2".into()),
                needed: needed.iter().map(|s| s.to_string()).collect(),
                search: search.iter().map(|s| s.to_string()).collect(),
                versions: Vec::new(),
                time32: false,
            },
        }
    }

    #[test]
    fn libraries_map_to_packages_unless_added_or_installed() {
        let files = [dynamic(
            "/app/server",
            &["libssl.so.3", "libz.so.1", "libc.so.6", "libown.so"],
            &["/app/lib"],
        )];
        let added: HashSet<String> = ["app/lib/libown.so".to_string()].into();
        let installed: HashSet<String> = ["libc6".to_string()].into();
        let found = lookup(&files, "amd64", &added, &installed, None).unwrap();
        let names: Vec<&str> = found.packages.keys().map(String::as_str).collect();
        assert_eq!(names, ["libssl3t64", "zlib1g"]);
        assert_eq!(
            found.packages["zlib1g"],
            ["/app/server needs libz.so.1 (found by contents)"]
        );
        assert_eq!(found.satisfied_by_added.len(), 1);
        assert_eq!(found.already_installed.len(), 2, "libc and the loader");
    }

    #[test]
    fn package_names_follow_policy_and_the_exceptions() {
        let table: &[(&str, &[&str])] = &[
            ("libfoo.so.1", &["libfoo1t64", "libfoo1"]),
            ("libfoo-2.0.so.0", &["libfoo-2.0-0t64", "libfoo-2.0-0"]),
            ("libbar2.so.5", &["libbar2-5t64", "libbar2-5"]),
            ("libsqlite3.so.0", &["libsqlite3-0t64", "libsqlite3-0"]),
            ("libX11.so.6", &["libx11-6t64", "libx11-6"]),
            ("libcrypt.so.1", &["libcrypt1t64", "libcrypt1"]),
            ("libfoo.so", &["libfoo"]),
            ("libc.so.6", &["libc6"]),
            ("libm.so.6", &["libc6"]),
            ("libpthread.so.0", &["libc6"]),
            ("libnss_dns.so.2", &["libc6"]),
            ("/lib64/ld-linux-x86-64.so.2", &["libc6"]),
            ("ld-linux-aarch64.so.1", &["libc6"]),
            ("/lib/ld-linux-armhf.so.3", &["libc6"]),
            ("/lib/ld-linux.so.3", &["libc6"]),
            ("/lib64/ld64.so.2", &["libc6"]),
            ("/lib/ld64.so.1", &["libc6"]),
            ("/lib/ld-linux-riscv64-lp64d.so.1", &["libc6"]),
            ("libz.so.1", &["zlib1g"]),
            ("libssl.so.3", &["libssl3t64", "libssl3"]),
            ("libcrypto.so.3", &["libssl3t64", "libssl3"]),
            ("libgcc_s.so.1", &["libgcc-s1"]),
            ("libstdc++.so.6", &["libstdc++6"]),
            ("/usr/bin/python3", &["python3", "python3-minimal"]),
            ("notalibrary", &[]),
        ];
        for (need, expected) in table {
            assert_eq!(name_candidates(need), *expected, "{need}");
        }
    }

    #[test]
    fn needs_contents_does_not_answer_are_found_by_package_name() {
        let files = [dynamic(
            "/app/server",
            &["libz.so.1", "libyaml-0.so.2"],
            &[],
        )];
        let by_name = ContentsIndex::parse(
            "usr/lib/x86_64-linux-gnu/libyaml-0.so.2 libs/libyaml-0-2\n".as_bytes(),
            Compression::None,
            "names",
        )
        .unwrap();
        let contents = contents();
        let none = HashSet::new();
        let from = Providers {
            contents: &contents,
            by_name: &ContentsIndex::default(),
        };
        let found = find_packages(&files, "amd64", &none, &from, &none, None).unwrap();
        assert_eq!(found.missing.len(), 1, "{:?}", found.missing);
        assert_eq!(found.missing[0].need, "libyaml-0.so.2");
        assert_eq!(
            found.missing[0].paths[0],
            "usr/lib/x86_64-linux-gnu/libyaml-0.so.2"
        );
        let from = Providers {
            contents: &contents,
            by_name: &by_name,
        };
        let found = find_packages(&files, "amd64", &none, &from, &none, None)
            .unwrap()
            .require_all("amd64")
            .unwrap();
        assert_eq!(
            found.packages["libyaml-0-2"],
            ["/app/server needs libyaml-0.so.2 (found by package-name)"]
        );
        assert_eq!(
            found.packages["zlib1g"],
            ["/app/server needs libz.so.1 (found by contents)"]
        );
    }

    #[test]
    fn a_library_nobody_ships_is_an_error_naming_file_and_library() {
        let files = [dynamic("/app/server", &["libnowhere.so.9"], &[])];
        let err = lookup(&files, "amd64", &HashSet::new(), &HashSet::new(), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/app/server needs libnowhere.so.9"), "{err}");
    }

    #[test]
    fn scripts_pull_in_their_interpreter_and_env_entrypoints_are_refused() {
        let script = |path: &str, interpreter: &str, via_env: Option<&str>| Analysis {
            path: path.into(),
            kind: FileKind::Script {
                interpreter: interpreter.into(),
                via_env: via_env.map(String::from),
            },
        };
        let none = HashSet::new();
        let files = [script("/app/run.py", "/usr/bin/python3", None)];
        let found = lookup(&files, "amd64", &none, &none, None).unwrap();
        assert!(found.packages.contains_key("python3-minimal"));

        let files = [script("/app/tool.py", "/usr/bin/env", Some("python3"))];
        let found = lookup(&files, "amd64", &none, &none, None).unwrap();
        assert!(found.packages.contains_key("python3-minimal"));
        assert!(
            found.notes[0].contains("no /usr/bin/env"),
            "{:?}",
            found.notes
        );
        let err = lookup(&files, "amd64", &none, &none, Some("/app/tool.py"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("entrypoint = [\"/usr/bin/python3\""), "{err}");
    }

    #[test]
    fn a_binary_for_another_architecture_is_refused() {
        let mut a = dynamic("/app/server", &[], &[]);
        if let FileKind::Dynamic { arch, .. } = &mut a.kind {
            *arch = "arm64".into();
        }
        let none = HashSet::new();
        let err = lookup(&[a], "amd64", &none, &none, None).unwrap_err();
        assert!(err.to_string().contains("built for arm64"), "{err}");
    }

    #[test]
    fn reads_real_elf_files_and_shebangs() {
        let dir = tempfile::tempdir().unwrap();
        // This test binary is a dynamically linked program of the host's architecture.
        let me = std::env::current_exe().unwrap();
        let a = analyze(&me, "app/test").unwrap();
        let FileKind::Dynamic {
            interpreter,
            needed,
            ..
        } = &a.kind
        else {
            panic!("{a:?}")
        };
        assert!(interpreter.as_deref().unwrap().contains("ld-linux"));
        assert!(needed.iter().any(|n| n == "libc.so.6"), "{needed:?}");
        assert_eq!(a.path, "/app/test");

        let script = dir.path().join("s");
        std::fs::write(&script, "#!/usr/bin/env -S python3 -u\nprint(1)\n").unwrap();
        assert_eq!(
            analyze(&script, "s").unwrap().kind,
            FileKind::Script {
                interpreter: "/usr/bin/env".into(),
                via_env: Some("python3".into())
            }
        );
        let data = dir.path().join("d");
        std::fs::write(&data, "hello").unwrap();
        assert_eq!(analyze(&data, "d").unwrap().kind, FileKind::Data);
    }
}
