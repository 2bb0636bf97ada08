//! bareboat-elf: what a program or script needs at run time, from its bytes.
//!
//! An ELF file names its program interpreter (`PT_INTERP`), the sonames it needs
//! (`DT_NEEDED`), where to look for them (`DT_RPATH`, or `DT_RUNPATH` which overrides it,
//! `$ORIGIN` expanded; then the directories a tree's `/etc/ld.so.conf` adds, [`ld_so_conf`]),
//! and, in `.gnu.version_r`, the symbol versions it needs from each
//! library (`GLIBC_2.38`); a library lists those it defines in `.gnu.version_d`. A script's
//! `#!` line names its interpreter. [`classify`] reads all of it; [`unmet_versions`] is the
//! ABI check, against any [`Tree`] (a host directory, a rootfs being built, a stacked
//! image): which of a program's symbol versions the libraries the loader would find lack.
//!
//! ```
//! let kind = bareboat_elf::classify(b"#!/usr/bin/python3 -u\nprint(1)\n", "/app/run").unwrap();
//! assert!(matches!(kind, bareboat_elf::FileKind::Script { .. }));
//! ```

#![deny(missing_docs)]

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;

use serde::Serialize;

/// What a file is, as far as running it goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FileKind {
    /// A statically linked program: it needs nothing from the image.
    Static {
        /// The architecture it is built for.
        arch: String,
    },
    /// A dynamically linked program or library.
    Dynamic {
        /// The architecture it is built for.
        arch: String,
        /// The ELF interpreter (dynamic loader) it names.
        interpreter: Option<String>,
        /// The libraries it needs (DT_NEEDED).
        needed: Vec<String>,
        /// Directories searched first, from RUNPATH (or RPATH), with `$ORIGIN` expanded.
        search: Vec<String>,
        /// The symbol versions it needs, by the library (soname) that must define them.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        versions: Vec<VersionNeed>,
        /// Whether it is a 32-bit program built with a 32-bit `time_t`: it calls glibc's
        /// 32-bit time functions (`time`, `clock_gettime`, `stat`), not their 64-bit ones
        /// (`__time64`), as bookworm's armhf and armel programs do.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        time32: bool,
    },
    /// A `#!` script.
    Script {
        /// The interpreter its `#!` line names.
        interpreter: String,
        /// The program `#!/usr/bin/env` runs, if that is how the line reads.
        via_env: Option<String>,
    },
    /// Anything else: data, which needs nothing.
    Data,
}

/// Symbol versions a program needs from one library.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VersionNeed {
    /// The library's soname, such as `libc.so.6`.
    pub library: String,
    /// The versions, such as `GLIBC_2.38`.
    pub versions: Vec<String>,
}

/// A file and what it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Analysis {
    /// The file's path in the image, absolute.
    pub path: String,
    #[serde(flatten)]
    /// What it is, and so what it needs.
    pub kind: FileKind,
}

/// The Debian architecture an ELF file is built for. 32-bit ARM tells armhf from armel by
/// its float ABI flag, which symbol versions do not show.
fn arch_of(header: &goblin::elf::header::Header) -> String {
    use goblin::elf::header::{EM_AARCH64, EM_ARM, EM_PPC64, EM_RISCV, EM_S390, EM_X86_64};
    // EF_ARM_ABI_FLOAT_HARD: the file passes floats in VFP registers (armhf).
    const FLOAT_HARD: u32 = 0x400;
    use goblin::elf::header::{EI_CLASS, EI_DATA, ELFCLASS64, ELFDATA2LSB};
    let little = header.e_ident[EI_DATA] == ELFDATA2LSB;
    let wide = header.e_ident[EI_CLASS] == ELFCLASS64;
    match header.e_machine {
        EM_X86_64 => "amd64".into(),
        EM_AARCH64 => "arm64".into(),
        EM_ARM if little && header.e_flags & FLOAT_HARD != 0 => "armhf".into(),
        EM_ARM if little => "armel".into(),
        EM_PPC64 if little => "ppc64el".into(),
        EM_RISCV if wide => "riscv64".into(),
        EM_S390 if wide => "s390x".into(),
        m => goblin::elf::header::machine_to_str(m).to_string(),
    }
}

/// The multiarch directory of a Debian architecture (`x86_64-linux-gnu` for amd64), where
/// its libraries are.
pub fn multiarch(arch: &str) -> &'static str {
    match arch {
        "arm64" => "aarch64-linux-gnu",
        "armhf" => "arm-linux-gnueabihf",
        "armel" => "arm-linux-gnueabi",
        "ppc64el" => "powerpc64le-linux-gnu",
        "riscv64" => "riscv64-linux-gnu",
        "s390x" => "s390x-linux-gnu",
        _ => "x86_64-linux-gnu",
    }
}

/// Where the loader looks for `soname`, as absolute paths: the file's own directories
/// (`search`), then those the image's `/etc/ld.so.conf` adds (`conf`, see [`ld_so_conf`]),
/// then the system's.
pub fn search_paths(soname: &str, search: &[String], conf: &[String], arch: &str) -> Vec<String> {
    if soname.contains('/') {
        return vec![soname.to_string()];
    }
    // Merged /usr: /lib is /usr/lib.
    let defaults = [format!("/usr/lib/{}", multiarch(arch)), "/usr/lib".into()];
    (search.iter().chain(conf).chain(defaults.iter()))
        .map(|d| format!("{}/{soname}", d.trim_end_matches('/')))
        .collect()
}

/// Analyses the host file `src`, which the image will hold at `path`; the error says why
/// it cannot be read.
pub fn analyze(src: &Path, path: &str) -> Result<Analysis, String> {
    let mut file = std::fs::File::open(src).map_err(|e| e.to_string())?;
    let mut head = [0u8; 256];
    let mut len = 0;
    while len < head.len() {
        match file.read(&mut head[len..]).map_err(|e| e.to_string())? {
            0 => break,
            n => len += n,
        }
    }
    let head = &head[..len];
    let kind = if head.starts_with(b"\x7fELF") {
        // Mapped, not read: programs can be hundreds of megabytes.
        // SAFETY: the map is read-only and dropped before this function returns; a file
        // changed underneath it gives wrong answers, not undefined behaviour in safe code
        // that only reads bytes.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| e.to_string())?;
        classify(&map, path)
    } else {
        classify(head, path)
    }?;
    Ok(Analysis {
        path: format!("/{}", path.trim_start_matches('/')),
        kind,
    })
}

/// What a file that will be at `path` in the image is, from its bytes: the whole file for
/// an ELF file, at least its first line for a script.
pub fn classify(bytes: &[u8], path: &str) -> Result<FileKind, String> {
    if bytes.starts_with(b"\x7fELF") {
        return elf_kind(bytes, path);
    }
    let Some(line) = bytes.strip_prefix(b"#!") else {
        return Ok(FileKind::Data);
    };
    let line = line.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_whitespace();
    let interpreter = words
        .next()
        .ok_or_else(|| "a #! line without an interpreter".to_string())?
        .to_string();
    let via_env = (interpreter == "/usr/bin/env" || interpreter == "/bin/env")
        .then(|| words.find(|w| !w.starts_with('-')).map(String::from))
        .flatten();
    Ok(FileKind::Script {
        interpreter,
        via_env,
    })
}

fn parse(bytes: &[u8]) -> Result<goblin::elf::Elf<'_>, String> {
    goblin::elf::Elf::parse(bytes).map_err(|e| format!("not a readable ELF file: {e}"))
}

fn elf_kind(bytes: &[u8], path: &str) -> Result<FileKind, String> {
    let elf = parse(bytes)?;
    let arch = arch_of(&elf.header);
    let interpreter = elf.interpreter.map(String::from);
    let needed: Vec<String> = elf.libraries.iter().map(|s| s.to_string()).collect();
    if interpreter.is_none() && needed.is_empty() {
        return Ok(FileKind::Static { arch });
    }
    let origin = Path::new(path.trim_start_matches('/'))
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    // The loader ignores RPATH when RUNPATH is present.
    let dirs = if elf.runpaths.is_empty() {
        &elf.rpaths
    } else {
        &elf.runpaths
    };
    let search = dirs
        .iter()
        .flat_map(|d| d.split(':'))
        .filter(|d| !d.is_empty())
        .map(|d| {
            let d = d.replace("${ORIGIN}", "$ORIGIN");
            match d.strip_prefix("$ORIGIN") {
                Some(rest) => format!("/{origin}{rest}"),
                None => d,
            }
        })
        .collect();
    Ok(FileKind::Dynamic {
        arch,
        interpreter,
        needed,
        search,
        versions: version_needs(&elf),
        time32: !elf.is_64 && imports_any(&elf, TIME32_FUNCTIONS),
    })
}

/// glibc's functions that take or give a `time_t` (or a struct holding one) in their 32-bit
/// form: a 32-bit program built with `_TIME_BITS=64` calls `__time64`, `__clock_gettime64`,
/// `__stat64_time64` and the like in their place.
const TIME32_FUNCTIONS: &[&str] = &[
    "time",
    "stime",
    "difftime",
    "mktime",
    "timegm",
    "timelocal",
    "ctime",
    "ctime_r",
    "localtime",
    "localtime_r",
    "gmtime",
    "gmtime_r",
    "gettimeofday",
    "settimeofday",
    "clock_gettime",
    "clock_settime",
    "clock_getres",
    "clock_nanosleep",
    "nanosleep",
    "select",
    "pselect",
    "ppoll",
    "utime",
    "utimes",
    "futimes",
    "lutimes",
    "futimens",
    "utimensat",
    "stat",
    "fstat",
    "lstat",
    "fstatat",
    "stat64",
    "fstat64",
    "lstat64",
    "fstatat64",
    "__xstat",
    "__fxstat",
    "__lxstat",
    "__xstat64",
    "__fxstat64",
    "__lxstat64",
    "timer_settime",
    "timer_gettime",
    "timerfd_settime",
    "timerfd_gettime",
    "setitimer",
    "getitimer",
    "getrusage",
    "wait3",
    "wait4",
    "adjtime",
    "sigtimedwait",
    "sem_timedwait",
    "pthread_cond_timedwait",
    "pthread_mutex_timedlock",
    "mq_timedsend",
    "mq_timedreceive",
    "recvmmsg",
    "semtimedop",
    "sched_rr_get_interval",
];

/// Whether `elf` imports (needs from a library) any of the functions `names`.
fn imports_any(elf: &goblin::elf::Elf, names: &[&str]) -> bool {
    (elf.dynsyms.iter())
        .filter(|sym| sym.st_shndx == 0 && sym.st_name != 0)
        .filter_map(|sym| elf.dynstrtab.get_at(sym.st_name))
        .any(|name| names.contains(&name))
}

/// The symbol versions `elf` needs, by library, from `.gnu.version_r`.
fn version_needs(elf: &goblin::elf::Elf) -> Vec<VersionNeed> {
    let Some(verneed) = &elf.verneed else {
        return Vec::new();
    };
    let name = |offset: usize| elf.dynstrtab.get_at(offset).map(String::from);
    verneed
        .iter()
        .filter_map(|need| {
            let library = name(need.vn_file)?;
            let versions = need.iter().filter_map(|aux| name(aux.vna_name)).collect();
            Some(VersionNeed { library, versions })
        })
        .collect()
}

/// The symbol versions the library `bytes` defines, from `.gnu.version_d` (its own soname,
/// the base definition, left out).
pub fn version_definitions(bytes: &[u8]) -> Result<BTreeSet<String>, String> {
    let elf = parse(bytes)?;
    let Some(verdef) = &elf.verdef else {
        return Ok(BTreeSet::new());
    };
    let base = goblin::elf::symver::VER_FLG_BASE;
    Ok(verdef
        .iter()
        .filter(|d| d.vd_flags & base == 0)
        .filter_map(|d| d.iter().next())
        .filter_map(|aux| elf.dynstrtab.get_at(aux.vda_name).map(String::from))
        .collect())
}

/// A tree of files programs are looked up in: a host directory ([`HostDir`]), a rootfs being
/// built, an image's layers stacked.
pub trait Tree {
    /// The content of the regular file at `path` (absolute, links followed), if there is
    /// one.
    fn read(&self, path: &str) -> Option<Vec<u8>>;

    /// The names of the entries of the directory `dir` (absolute, links followed), sorted.
    fn list(&self, dir: &str) -> Vec<String>;

    /// The symbol versions the library at `path` (absolute, links followed) defines, if
    /// there is one that parses; by default read from its content. A tree that holds a
    /// library's recorded versions but not its bytes says them here.
    fn defined_versions(&self, path: &str) -> Option<BTreeSet<String>> {
        version_definitions(&self.read(path)?).ok()
    }
}

/// A directory of this machine as a [`Tree`]: paths are taken under it, and a link that
/// leads out of it is not followed.
pub struct HostDir<'a>(pub &'a Path);

impl HostDir<'_> {
    /// Where `path` is on this machine, if it is inside the directory.
    fn inside(&self, path: &str) -> Option<std::path::PathBuf> {
        let full = self.0.join(path.trim_start_matches('/'));
        let real = std::fs::canonicalize(&full).ok()?;
        let root = std::fs::canonicalize(self.0).ok()?;
        real.starts_with(&root).then_some(real)
    }
}

impl Tree for HostDir<'_> {
    fn read(&self, path: &str) -> Option<Vec<u8>> {
        std::fs::read(self.inside(path)?).ok()
    }

    fn list(&self, dir: &str) -> Vec<String> {
        let entries = self.inside(dir).and_then(|d| std::fs::read_dir(d).ok());
        let mut names: Vec<String> = (entries.into_iter().flatten().flatten())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

/// The configuration files of the loader's cache that [`ld_so_conf`] reads at most, with
/// the ones they include: `/etc/ld.so.conf` and Debian's `/etc/ld.so.conf.d/*.conf`.
const MAX_LD_SO_CONF_FILES: usize = 256;

/// The largest such file it reads.
const MAX_LD_SO_CONF_SIZE: usize = 64 << 10;

/// The directories `/etc/ld.so.conf` of `tree` adds to the loader's search (through the
/// cache `ldconfig` makes of them), in order: each line a directory, `include PATTERN`
/// reading the files a `*` pattern matches in their directory's order, `#` a comment, and
/// `hwcap` lines passed over, as ldconfig reads them. Bounded: at most
/// [`MAX_LD_SO_CONF_FILES`] files of at most [`MAX_LD_SO_CONF_SIZE`] bytes, each once.
pub fn ld_so_conf(tree: &dyn Tree) -> Vec<String> {
    let mut dirs = Vec::new();
    read_conf(tree, "/etc/ld.so.conf", &mut dirs, &mut BTreeSet::new());
    let mut seen = BTreeSet::new();
    dirs.retain(|d| seen.insert(d.clone()));
    dirs
}

/// Adds to `dirs` what the configuration file `file` of `tree` names, reading what it
/// includes where it includes it; `read` holds the files read so far.
fn read_conf(tree: &dyn Tree, file: &str, dirs: &mut Vec<String>, read: &mut BTreeSet<String>) {
    if read.len() >= MAX_LD_SO_CONF_FILES || !read.insert(file.to_string()) {
        return;
    }
    let Some(bytes) = tree.read(file).filter(|b| b.len() <= MAX_LD_SO_CONF_SIZE) else {
        return;
    };
    for line in String::from_utf8_lossy(&bytes).lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if let Some(pattern) = line.strip_prefix("include").map(str::trim) {
            for included in matching(tree, file, pattern) {
                read_conf(tree, &included, dirs, read);
            }
        } else if !line.is_empty() && !line.starts_with("hwcap") {
            dirs.extend(
                (line.split([' ', '\t', ':', ',']))
                    .filter(|d| d.starts_with('/'))
                    .map(|d| d.trim_end_matches('/').to_string()),
            );
        }
    }
}

/// The files an `include` pattern of `from` names: relative to `from`'s directory unless
/// absolute, with `*` and `?` matched within the last component only.
fn matching(tree: &dyn Tree, from: &str, pattern: &str) -> Vec<String> {
    let pattern = match pattern.starts_with('/') {
        true => pattern.to_string(),
        false => format!("{}/{pattern}", from.rsplit_once('/').map_or("", |(d, _)| d)),
    };
    let (dir, name) = pattern.rsplit_once('/').unwrap_or(("", &pattern));
    if !name.contains(['*', '?']) {
        return vec![pattern.clone()];
    }
    (tree
        .list(if dir.is_empty() { "/" } else { dir })
        .into_iter())
    .filter(|n| glob_match(name.as_bytes(), n.as_bytes()))
    .map(|n| format!("{dir}/{n}"))
    .collect()
}

/// Whether `name` matches the shell pattern `pattern` of `*` and `?` (no other syntax).
fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    // The classic two-pointer match, linear in both: the last `*` is where to go on from.
    let (mut p, mut n, mut star, mut from) = (0, 0, None, 0);
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some(p);
                from = n;
                p += 1;
            }
            Some(c) if *c == b'?' || *c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some(s) => {
                    p = s + 1;
                    from += 1;
                    n = from;
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == b'*')
}

/// A symbol version a program needs that the library the loader would find lacks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Unmet {
    /// The program, by its path in the tree.
    pub program: String,
    /// The symbol version it needs.
    pub needs: String,
    /// The library that should define it, by its path in the tree.
    pub library: String,
    /// The highest version of that name the library defines, if any.
    pub highest: Option<String>,
}

/// The symbol versions `analysis` (a program in `tree`) needs that the libraries of `tree`
/// lack; `paths` gives where the loader looks for a library, first first. A library the
/// tree lacks is passed over: that is a missing library, not a version.
pub fn unmet_versions(
    tree: &dyn Tree,
    analysis: &Analysis,
    paths: impl Fn(&str) -> Vec<String>,
) -> Vec<Unmet> {
    let FileKind::Dynamic { versions, .. } = &analysis.kind else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for need in versions {
        let found = paths(&need.library)
            .into_iter()
            .find_map(|p| Some((tree.defined_versions(&p)?, p)));
        let Some((defined, library)) = found else {
            continue;
        };
        for missing in missing_versions(&need.versions, &defined) {
            out.push(Unmet {
                program: analysis.path.clone(),
                needs: missing.to_string(),
                library: format!("/{}", library.trim_start_matches('/')),
                highest: highest_like(missing, &defined),
            });
        }
    }
    out
}

/// Which of `needed` (symbol versions such as `GLIBC_2.38`) are not among `defined`.
pub fn missing_versions<'a>(needed: &'a [String], defined: &BTreeSet<String>) -> Vec<&'a str> {
    (needed.iter())
        .filter(|v| !defined.contains(*v))
        .map(String::as_str)
        .collect()
}

/// The highest of the versions of `defined` that share `version`'s name (`GLIBC_2.36` for
/// `GLIBC_2.38` in a bookworm libc), compared number by number.
pub fn highest_like(version: &str, defined: &BTreeSet<String>) -> Option<String> {
    let (name, _) = split_version(version);
    defined
        .iter()
        .filter(|d| split_version(d).0 == name)
        .max_by(|a, b| split_version(a).1.cmp(&split_version(b).1))
        .cloned()
}

/// Whether version `a` is older than `b` of the same name (`GLIBC_2.36` than `GLIBC_2.38`).
pub fn is_older(a: &str, b: &str) -> bool {
    let (a, b) = (split_version(a), split_version(b));
    a.0 == b.0 && a.1 < b.1
}

/// `GLIBC_2.38` as `("GLIBC", [2, 38])`.
fn split_version(v: &str) -> (&str, Vec<u64>) {
    let (name, number) = v.rsplit_once('_').unwrap_or((v, ""));
    (
        name,
        number.split('.').filter_map(|n| n.parse().ok()).collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_release_architecture_is_told_by_its_elf_header() {
        use goblin::elf::header::{
            EI_DATA, ELFDATA2LSB, ELFDATA2MSB, EM_ARM, EM_PPC64, EM_RISCV, EM_S390,
        };
        let host = std::fs::read("/bin/true").unwrap();
        let mut header = goblin::elf::Elf::parse(&host).unwrap().header;
        for (machine, flags, data, arch, triplet) in [
            (
                EM_ARM,
                0x0500_0400,
                ELFDATA2LSB,
                "armhf",
                "arm-linux-gnueabihf",
            ),
            (
                EM_ARM,
                0x0500_0200,
                ELFDATA2LSB,
                "armel",
                "arm-linux-gnueabi",
            ),
            (EM_PPC64, 2, ELFDATA2LSB, "ppc64el", "powerpc64le-linux-gnu"),
            (EM_RISCV, 5, ELFDATA2LSB, "riscv64", "riscv64-linux-gnu"),
            (EM_S390, 0, ELFDATA2MSB, "s390x", "s390x-linux-gnu"),
        ] {
            (header.e_machine, header.e_flags, header.e_ident[EI_DATA]) = (machine, flags, data);
            assert_eq!(arch_of(&header), arch);
            assert_eq!(multiarch(arch), triplet);
        }
        // Big-endian POWER and ARM, and 32-bit RISC-V and s390, are not release
        // architectures.
        (header.e_machine, header.e_ident[EI_DATA]) = (EM_PPC64, ELFDATA2MSB);
        assert_eq!(arch_of(&header), "PPC64");
        (header.e_machine, header.e_ident[EI_DATA]) = (EM_ARM, ELFDATA2MSB);
        assert_eq!(arch_of(&header), "ARM");
        header.e_ident[goblin::elf::header::EI_CLASS] = goblin::elf::header::ELFCLASS32;
        for machine in [EM_RISCV, EM_S390] {
            header.e_machine = machine;
            assert!(!["riscv64", "s390x"].contains(&arch_of(&header).as_str()));
        }
    }

    #[test]
    fn scripts_and_data_are_told_apart() {
        assert_eq!(
            classify(b"#!/usr/bin/env -S python3 -u\n", "/app/x").unwrap(),
            FileKind::Script {
                interpreter: "/usr/bin/env".into(),
                via_env: Some("python3".into())
            }
        );
        assert_eq!(classify(b"plain", "/x").unwrap(), FileKind::Data);
        let err = classify(b"#!\n", "/x").unwrap_err().to_string();
        assert!(err.contains("a #! line without an interpreter"), "{err}");
    }

    #[test]
    fn versions_are_compared_number_by_number() {
        let defined: BTreeSet<String> =
            ["GLIBC_2.2.5", "GLIBC_2.36", "GLIBC_2.4", "GLIBCXX_3.4.30"]
                .iter()
                .map(ToString::to_string)
                .collect();
        assert_eq!(
            highest_like("GLIBC_2.38", &defined).as_deref(),
            Some("GLIBC_2.36")
        );
        assert_eq!(
            highest_like("GLIBCXX_3.4.31", &defined).as_deref(),
            Some("GLIBCXX_3.4.30")
        );
        let needed = vec!["GLIBC_2.4".to_string(), "GLIBC_2.38".to_string()];
        assert_eq!(missing_versions(&needed, &defined), ["GLIBC_2.38"]);
    }

    #[test]
    fn the_loaders_configuration_adds_its_directories_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let write = |path: &str, text: &str| {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write(
            "etc/ld.so.conf",
            "include /etc/ld.so.conf.d/*.conf\n/opt/last/ # after the included\n",
        );
        write(
            "etc/ld.so.conf.d/b-local.conf",
            "/usr/local/lib\nhwcap 0 nosegneg\n",
        );
        write(
            "etc/ld.so.conf.d/a-app.conf",
            "# comment\n/opt/app/lib:/opt/app/lib2\ninclude more/*.conf\n",
        );
        write("etc/ld.so.conf.d/more/x.conf", "/srv/x\n");
        // An include of itself is read once.
        write(
            "etc/ld.so.conf.d/loop.conf",
            "include /etc/ld.so.conf\n/opt/loop\n",
        );
        write("etc/ld.so.conf.d/ignored.txt", "/never\n");
        let dirs = ld_so_conf(&HostDir(root));
        assert_eq!(
            dirs,
            [
                "/opt/app/lib",
                "/opt/app/lib2",
                "/srv/x",
                "/usr/local/lib",
                "/opt/loop",
                "/opt/last"
            ]
        );
        let paths = search_paths("libx.so.1", &["/app/lib".into()], &dirs[..1], "amd64");
        assert_eq!(
            paths,
            [
                "/app/lib/libx.so.1",
                "/opt/app/lib/libx.so.1",
                "/usr/lib/x86_64-linux-gnu/libx.so.1",
                "/usr/lib/libx.so.1"
            ]
        );
        assert!(glob_match(b"*.conf", b"a.conf") && !glob_match(b"*.conf", b"a.conf~"));
        assert!(glob_match(b"a?c*", b"abcdef") && !glob_match(b"a?c", b"ac"));
        // Without the file, nothing is added.
        assert_eq!(
            ld_so_conf(&HostDir(&root.join("etc"))),
            Vec::<String>::new()
        );
    }

    #[test]
    fn the_host_programs_need_nothing_their_libraries_lack() {
        // This machine's own programs start: their needs are met in its own tree.
        let ls = analyze(Path::new("/bin/ls"), "/bin/ls").unwrap();
        let root = HostDir(Path::new("/"));
        let paths = |lib: &str| {
            [
                "/lib/x86_64-linux-gnu",
                "/lib/aarch64-linux-gnu",
                "/usr/lib",
            ]
            .iter()
            .map(|d| format!("{d}/{lib}"))
            .collect()
        };
        assert!(unmet_versions(&root, &ls, paths).is_empty());
        // A tree without the library passes it over: that is another check's to report.
        let nowhere = HostDir(Path::new("/nonexistent-bareboat-tree"));
        assert!(unmet_versions(&nowhere, &ls, paths).is_empty());
    }

    #[test]
    fn the_host_libc_defines_what_the_host_programs_need() {
        // Real ELF files of this machine: a program's needs are among its libc's definitions.
        let libc = [
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/lib/aarch64-linux-gnu/libc.so.6",
        ]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("the host has a libc");
        let defined = version_definitions(&std::fs::read(libc).unwrap()).unwrap();
        assert!(
            defined.iter().any(|d| d.starts_with("GLIBC_2.")),
            "{defined:?}"
        );
        let FileKind::Dynamic { versions, .. } =
            analyze(Path::new("/bin/ls"), "/bin/ls").unwrap().kind
        else {
            panic!("ls is dynamic");
        };
        let libc_needs = versions.iter().find(|v| v.library == "libc.so.6").unwrap();
        assert!(missing_versions(&libc_needs.versions, &defined).is_empty());
    }
}
