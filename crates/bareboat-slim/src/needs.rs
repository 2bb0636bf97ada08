//! What an application needs of the image it runs in, found without running it: the
//! program its entrypoint (or command) starts, found on the image's `PATH`; that program's
//! ELF closure, its interpreter and libraries looked up as the image's own loader would
//! (`RUNPATH`, the image's `ld.so.conf`, the system's directories, merged /usr or not); the
//! interpreters of `#!` scripts; the application's own files (in its working directory and
//! where applications live, that no package's file list names), analysed alike; every symlink
//! on the way to each; and the runtime data every catalogue image carries anyway. Each path
//! comes with why it is kept, and a need the image cannot meet is reported, never guessed.
//!
//! Nothing of the image is run: files are read from where [`read_keeping`] kept them, and
//! analysed by [`bareboat_elf`].
//!
//! [`read_keeping`]: bareboat_inspect::filesystem::read_keeping

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{self, Read};
use std::path::Path;

use bareboat_elf::FileKind;
use bareboat_inspect::filesystem::{Kept, Kind};
use bareboat_oci::stack;
use oci_spec::image::Config;
use serde::Serialize;

/// Why a path is kept.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case", tag = "why", content = "of")]
pub enum Why {
    /// The program the image's entrypoint (or command) starts.
    Entrypoint,
    /// A library, or the loader, that this program or library needs.
    NeededBy(String),
    /// The interpreter a script's `#!` line names, or the program `env` starts.
    InterpreterOf(String),
    /// A symlink on the way to this kept path.
    LinkTo(String),
    /// Data every catalogue image carries: the CA bundle, time zones, accounts.
    RuntimeData,
    /// A file of the application's own, where applications live, that no package owns.
    Application,
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::Entrypoint => write!(f, "the entrypoint"),
            Why::NeededBy(p) => write!(f, "needed by {p}"),
            Why::InterpreterOf(p) => write!(f, "interpreter of {p}"),
            Why::LinkTo(p) => write!(f, "a link on the way to {p}"),
            Why::RuntimeData => write!(f, "runtime data"),
            Why::Application => write!(f, "an application file no package owns"),
        }
    }
}

/// A need the image cannot meet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Missing {
    /// What is needed: a program, a path, a library's soname.
    pub need: String,
    /// Who needs it: a path, or `the entrypoint`.
    pub by: String,
}

/// What an application needs of its image.
#[derive(Debug, Default, Serialize)]
pub struct Needs {
    /// Each path kept, without a leading `/`, with every reason it is kept.
    pub paths: BTreeMap<String, BTreeSet<Why>>,
    /// What is needed and not in the image.
    pub missing: Vec<Missing>,
}

/// The runtime data kept when the image has it: a directory with everything under it.
pub const RUNTIME_DATA: &[&str] = &[
    "etc/ssl/certs/ca-certificates.crt",
    "usr/share/zoneinfo",
    "etc/passwd",
    "etc/group",
    "etc/nsswitch.conf",
    "usr/lib/locale/C.utf8",
];

/// Where applications live, besides the working directory: what no package owns there is
/// the application's own.
pub const APPLICATION_DIRS: &[&str] = &["app", "srv", "opt", "usr/local"];

/// The largest list of a package's files read.
const MAX_FILE_LIST: u64 = 64 << 20;

/// The `PATH` a runtime sets when the config sets none (Docker's, podman's, runc specs').
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How far into a file its kind is read before it is known to be ELF, or a script's line.
const HEAD: u64 = 256;

/// What `image`, for Debian architecture `arch`, needs to run as `config` says; programs are
/// copied to `scratch` to be analysed, one at a time.
pub fn find(image: &Kept, config: &Config, arch: &str, scratch: &Path) -> io::Result<Needs> {
    let path_env = (config.env().iter().flatten())
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH)
        .to_string();
    let mut finder = Finder {
        image,
        arch,
        scratch,
        conf: bareboat_elf::ld_so_conf(image),
        path_env,
        workdir: config.working_dir().clone().unwrap_or_default(),
        needs: Needs::default(),
        queue: Vec::new(),
        analysed: BTreeSet::new(),
    };
    let run = (config.entrypoint().iter().flatten()).chain(config.cmd().iter().flatten());
    if let Some(program) = run.into_iter().next() {
        match finder.program(program) {
            Some(path) => {
                finder.keep(&path, Why::Entrypoint);
            }
            None => finder.missing(program, "the entrypoint"),
        }
    }
    for data in RUNTIME_DATA {
        finder.keep_tree(data, Why::RuntimeData);
    }
    finder.keep_application()?;
    while let Some(path) = finder.queue.pop() {
        finder.analyse(&path)?;
    }
    Ok(finder.needs)
}

/// The search for what an image needs, under way.
struct Finder<'a> {
    image: &'a Kept,
    arch: &'a str,
    scratch: &'a Path,
    /// The directories the image's `ld.so.conf` adds.
    conf: Vec<String>,
    path_env: String,
    workdir: String,
    needs: Needs,
    /// Kept regular files still to analyse.
    queue: Vec<String>,
    analysed: BTreeSet<String>,
}

impl Finder<'_> {
    /// Keeps `path` (absolute or not) for `why`, with every symlink on the way to it, and
    /// queues it for analysis; false when the image has nothing there.
    fn keep(&mut self, path: &str, why: Why) -> bool {
        let Some((real, links)) = self.follow(path) else {
            return false;
        };
        if !self.image.view.contains_key(&real) {
            return false;
        }
        let shown = format!("/{real}");
        for link in links {
            self.add(&link, Why::LinkTo(shown.clone()));
        }
        self.add(&real, why);
        if self.analysed.insert(real.clone()) {
            self.queue.push(real);
        }
        true
    }

    /// Keeps `path` and, for a directory, everything under it, when the image has it.
    fn keep_tree(&mut self, path: &str, why: Why) {
        for p in self.under(path) {
            self.keep(&p, why.clone());
        }
    }

    /// `path` (when the image has it) and, for a directory, everything under it, real
    /// paths.
    fn under(&self, path: &str) -> Vec<String> {
        let Some((real, _)) = self.follow(path) else {
            return Vec::new();
        };
        if !self.image.view.contains_key(&real) {
            return Vec::new();
        }
        let prefix = format!("{real}/");
        let from = std::ops::Bound::Included(prefix.as_str());
        let view = &self.image.view;
        let mut out = vec![real.clone()];
        out.extend(
            (view.range::<str, _>((from, std::ops::Bound::Unbounded)))
                .take_while(|(p, _)| p.starts_with(&prefix))
                .map(|(p, _)| p.clone()),
        );
        out
    }

    /// Keeps the files under the working directory and where applications live that no
    /// package's file list names.
    fn keep_application(&mut self) -> io::Result<()> {
        let owned = self.owned()?;
        let mut roots: Vec<String> = APPLICATION_DIRS.iter().map(|d| d.to_string()).collect();
        roots.extend(Some(self.workdir.clone()).filter(|w| !w.trim_matches('/').is_empty()));
        for root in roots {
            for path in self.under(&root) {
                let node = &self.image.view[&path];
                let file = matches!(node.kind, Kind::File | Kind::Hardlink(_) | Kind::Symlink(_));
                if file && !owned.contains(&path) {
                    self.keep(&path, Why::Application);
                }
            }
        }
        Ok(())
    }

    /// The real paths the packages of the image own, by dpkg's file lists.
    fn owned(&self) -> io::Result<BTreeSet<String>> {
        let view = &self.image.view;
        let mut owned = BTreeSet::new();
        let lists = (view.iter())
            .filter(|(p, n)| bareboat_apt::dpkg::is_file_list(p) && n.kind == Kind::File)
            .map(|(p, _)| p);
        for path in lists {
            let Some(bytes) = view.read(path, MAX_FILE_LIST) else {
                continue;
            };
            let listed = bareboat_apt::dpkg::owned_paths(path, &bytes)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            // As the image has them: a list from before merged /usr names `/lib/...`.
            owned.extend(listed.iter().filter_map(|p| Some(self.follow(p)?.0)));
        }
        Ok(owned)
    }

    fn add(&mut self, path: &str, why: Why) {
        self.needs
            .paths
            .entry(path.to_string())
            .or_default()
            .insert(why);
    }

    fn missing(&mut self, need: &str, by: &str) {
        self.needs.missing.push(Missing {
            need: need.to_string(),
            by: by.to_string(),
        });
    }

    /// Where `path` leads in the image, by the one resolver every reader of an image uses,
    /// and the symlinks it passes on the way.
    fn follow(&self, path: &str) -> Option<(String, Vec<String>)> {
        let view = &self.image.view;
        let links = RefCell::new(Vec::new());
        let link_at = |p: &str| {
            let Kind::Symlink(target) = &view.get(p)?.kind else {
                return None;
            };
            links.borrow_mut().push(p.to_string());
            Some(target.as_str())
        };
        let mut budget = stack::MAX_LINK_STEPS;
        let real = stack::resolve(path.trim_start_matches('/'), link_at, &mut budget).ok()?;
        Some((real, links.into_inner()))
    }

    /// `path`, if it leads (links followed) to a regular file of the image: as named, so
    /// that keeping it keeps the links on the way.
    fn file(&self, path: &str) -> Option<String> {
        let (real, _) = self.follow(path)?;
        let node = self.image.view.get(&real)?;
        matches!(node.kind, Kind::File | Kind::Hardlink(_)).then(|| path.to_string())
    }

    /// The program a command names: a path (from the working directory when relative), or
    /// a name found on `PATH`.
    fn program(&self, name: &str) -> Option<String> {
        if name.starts_with('/') {
            return self.file(name);
        }
        if name.contains('/') {
            return self.file(&format!("{}/{name}", self.workdir));
        }
        (self.path_env.split(':'))
            .filter(|dir| dir.starts_with('/'))
            .find_map(|dir| self.file(&format!("{dir}/{name}")))
    }

    /// Where the loader finds `soname` for a file whose own search directories are
    /// `search`: those, the image's `ld.so.conf`, then the system's, merged /usr or not.
    fn library(&self, soname: &str, search: &[String]) -> Option<String> {
        let triplet = bareboat_elf::multiarch(self.arch);
        let unmerged = [format!("/lib/{triplet}/{soname}"), format!("/lib/{soname}")];
        (bareboat_elf::search_paths(soname, search, &self.conf, self.arch).iter())
            .chain(&unmerged)
            .find_map(|p| self.file(p))
    }

    /// Queues what the kept file at `path` (a real path) needs.
    fn analyse(&mut self, path: &str) -> io::Result<()> {
        let Some(kind) = self.kind_of(path)? else {
            return Ok(());
        };
        let by = format!("/{path}");
        match kind {
            FileKind::Dynamic {
                interpreter,
                needed,
                search,
                ..
            } => {
                if let Some(loader) = interpreter
                    && !self.keep(&loader, Why::NeededBy(by.clone()))
                {
                    self.missing(&loader, &by);
                }
                for soname in needed {
                    match self.library(&soname, &search) {
                        Some(library) => {
                            self.keep(&library, Why::NeededBy(by.clone()));
                        }
                        None => self.missing(&soname, &by),
                    }
                }
            }
            FileKind::Script {
                interpreter,
                via_env,
            } => {
                if !self.keep(&interpreter, Why::InterpreterOf(by.clone())) {
                    self.missing(&interpreter, &by);
                }
                if let Some(program) = via_env {
                    match self.program(&program) {
                        Some(found) => {
                            self.keep(&found, Why::InterpreterOf(by.clone()));
                        }
                        None => self.missing(&program, &by),
                    }
                }
            }
            FileKind::Static { .. } | FileKind::Data => {}
        }
        Ok(())
    }

    /// What the kept file at `path` is; `None` for one whose content was not kept (a
    /// directory, a device, a sparse file).
    fn kind_of(&self, path: &str) -> io::Result<Option<FileKind>> {
        let view = &self.image.view;
        let Some(stored) = view.get(path).and_then(|n| n.content) else {
            return Ok(None);
        };
        let mut head = Vec::new();
        view.open(&stored)?.take(HEAD).read_to_end(&mut head)?;
        let shown = format!("/{path}");
        if !head.starts_with(b"\x7fELF") {
            return Ok(bareboat_elf::classify(&head, &shown).ok());
        }
        // An ELF file is analysed from a file, mapped: programs can be hundreds of
        // megabytes, and are never held in memory.
        let mut copy = tempfile::NamedTempFile::new_in(self.scratch)?;
        io::copy(&mut view.open(&stored)?, &mut copy)?;
        Ok(bareboat_elf::analyze(copy.path(), &shown)
            .ok()
            .map(|a| a.kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bareboat_inspect::filesystem::{Limits, read_keeping};
    use bareboat_oci::layout::Layout;
    use bareboat_oci::stack::Store;
    use oci_spec::image::{ConfigBuilder, MediaType};

    /// The host's multiarch directory, where this machine's libraries are.
    fn host_libs() -> String {
        format!("/lib/{}-linux-gnu", std::env::consts::ARCH)
    }

    /// This machine's Debian architecture, whose programs the fixture takes.
    fn host_arch() -> &'static str {
        match std::env::consts::ARCH {
            "aarch64" => "arm64",
            _ => "amd64",
        }
    }

    /// The host's `/bin/ls` and the libraries it needs, found as a test fixture (by name
    /// in the host's multiarch directory), with the loader.
    fn closure_of_ls() -> BTreeMap<String, Vec<u8>> {
        let mut files = BTreeMap::new();
        let mut queue = vec!["/bin/ls".to_string()];
        while let Some(host) = queue.pop() {
            let a = bareboat_elf::analyze(Path::new(&host), &host).unwrap();
            files.insert(host.clone(), std::fs::read(&host).unwrap());
            if let FileKind::Dynamic {
                interpreter,
                needed,
                ..
            } = a.kind
            {
                let libs = needed.iter().map(|n| format!("{}/{n}", host_libs()));
                for p in interpreter.into_iter().chain(libs) {
                    if !files.contains_key(&p) && !queue.contains(&p) {
                        queue.push(p);
                    }
                }
            }
        }
        files
    }

    /// A one-layer image of `entries` (path, content or symlink target), read whole.
    fn image(dir: &Path, entries: &[(String, Result<Vec<u8>, String>)]) -> Kept {
        let mut tar = tar::Builder::new(Vec::new());
        for (path, what) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o755);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(1);
            match what {
                Ok(bytes) => {
                    h.set_size(bytes.len() as u64);
                    tar.append_data(&mut h, path, &bytes[..]).unwrap();
                }
                Err(target) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_size(0);
                    tar.append_link(&mut h, path, target).unwrap();
                }
            }
        }
        let bytes = tar.into_inner().unwrap();
        let layout = Layout::create(&dir.join("layout")).unwrap();
        let descriptor = layout.put_json(MediaType::ImageLayer, &bytes).unwrap();
        let diff_id = descriptor.digest().to_string().parse().unwrap();
        let layer = bareboat_oci::blob::Layer {
            descriptor,
            diff_id,
        };
        let store = Store::new(&dir.join("kept"), 1 << 30).unwrap();
        read_keeping(&layout, &[layer], Limits::default(), store).unwrap()
    }

    #[test]
    fn a_programs_closure_its_links_the_application_and_the_runtime_data_are_found() {
        let dir = tempfile::tempdir().unwrap();
        // The host's files under merged /usr, reached through the image's own links.
        let mut entries: Vec<(String, Result<Vec<u8>, String>)> = closure_of_ls()
            .into_iter()
            .map(|(host, bytes)| (format!("usr{host}"), Ok(bytes)))
            .collect();
        let file = |p: &str, b: &[u8]| (p.to_string(), Ok(b.to_vec()));
        let link = |p: &str, t: &str| (p.to_string(), Err(t.to_string()));
        entries.extend([
            link("bin", "usr/bin"),
            link("lib", "usr/lib"),
            file("etc/passwd", b"root:x:0:0::/:/bin/sh\n"),
            file("usr/share/zoneinfo/UTC", b"TZif"),
            file("usr/share/doc/junk", b"not needed"),
            file("scripts/run", b"#!/bin/sh\nls\n"),
            file("scripts/env", b"#!/usr/bin/env ls -l\n"),
            // What the application installed itself, and what a package owns beside it.
            file("work/config.yaml", b"port: 8080\n"),
            file("opt/vendor/data.bin", b"data"),
            file("usr/local/share/owned.txt", b"a package's"),
            file(
                "var/lib/dpkg/info/vendor-extras.list",
                b"/.\n/usr/local/share\n/usr/local/share/owned.txt\n",
            ),
        ]);
        if Path::new("/lib64").exists() {
            entries.push(link("lib64", "usr/lib64"));
        }
        let kept = image(dir.path(), &entries);
        let config = ConfigBuilder::default()
            .entrypoint(vec!["ls".to_string()])
            .env(vec!["PATH=/usr/local/bin:/bin".to_string()])
            .working_dir("/work")
            .build()
            .unwrap();
        let needs = find(&kept, &config, host_arch(), dir.path()).unwrap();
        let why = |p: &str| needs.paths.get(p).cloned().unwrap_or_default();
        // Found on PATH through the `bin` link.
        assert!(why("usr/bin/ls").contains(&Why::Entrypoint), "{needs:?}");
        assert!(why("bin").contains(&Why::LinkTo("/usr/bin/ls".into())));
        let libc = format!("usr{}/libc.so.6", host_libs());
        assert!(
            why(&libc).contains(&Why::NeededBy("/usr/bin/ls".into())),
            "{needs:?}"
        );
        assert!(why("etc/passwd").contains(&Why::RuntimeData));
        assert!(why("usr/share/zoneinfo/UTC").contains(&Why::RuntimeData));
        // The application's own files, in the working directory and where applications
        // live; not what a package owns there.
        assert!(why("work/config.yaml").contains(&Why::Application));
        assert!(why("opt/vendor/data.bin").contains(&Why::Application));
        assert_eq!(needs.missing, []);
        // Every file of the program's closure is kept, and no other file: not the junk,
        // not the owned file, not the scripts nothing runs.
        let files: BTreeSet<&str> = (needs.paths.keys())
            .map(String::as_str)
            .filter(|p| matches!(kept.view[*p].kind, Kind::File))
            .collect();
        let closure: BTreeSet<String> = (entries.iter())
            .filter(|(p, e)| e.is_ok() && p.starts_with("usr/"))
            .filter(|(p, _)| !p.contains("share/doc") && !p.starts_with("usr/local"))
            .map(|(p, _)| p.clone())
            .collect();
        let expected: BTreeSet<&str> = (closure.iter().map(String::as_str))
            .chain(["etc/passwd", "work/config.yaml", "opt/vendor/data.bin"])
            .collect();
        assert_eq!(files, expected);

        // A script: its interpreter is missing from the image, and is reported as such.
        let config = ConfigBuilder::default()
            .entrypoint(vec!["/scripts/run".to_string()])
            .build()
            .unwrap();
        let needs = find(&kept, &config, host_arch(), dir.path()).unwrap();
        assert_eq!(
            needs.missing,
            [Missing {
                need: "/bin/sh".into(),
                by: "/scripts/run".into()
            }]
        );
        // `env` is missing too, and the program it starts is found on PATH. (Run from its
        // working directory, the other script is an application file, and analysed.)
        let config = ConfigBuilder::default()
            .cmd(vec!["./env".to_string()])
            .working_dir("/scripts")
            .build()
            .unwrap();
        let needs = find(&kept, &config, host_arch(), dir.path()).unwrap();
        assert!(needs.paths["usr/bin/ls"].contains(&Why::InterpreterOf("/scripts/env".into())));
        let missing = |need: &str, by: &str| Missing {
            need: need.into(),
            by: by.into(),
        };
        assert!(
            needs
                .missing
                .contains(&missing("/usr/bin/env", "/scripts/env"))
        );
        assert!(needs.missing.contains(&missing("/bin/sh", "/scripts/run")));
        // A program that names a library the image lacks.
        let without_libc: Vec<_> = entries
            .iter()
            .filter(|(p, _)| !p.ends_with("/libc.so.6"))
            .cloned()
            .collect();
        let other = tempfile::tempdir().unwrap();
        let kept = image(other.path(), &without_libc);
        let config = ConfigBuilder::default()
            .entrypoint(vec!["/bin/ls".to_string()])
            .build()
            .unwrap();
        let needs = find(&kept, &config, host_arch(), other.path()).unwrap();
        assert!(
            needs.missing.contains(&missing("libc.so.6", "/usr/bin/ls")),
            "{needs:?}"
        );
    }
}
