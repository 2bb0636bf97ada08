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

use crate::jar;
use crate::owners::Owners;

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
    /// Data the catalogue level carries: the CA bundle (and the JVM's keystore of it), time
    /// zones, accounts, the locale.
    RuntimeData,
    /// A file of the application's own, where applications live, that no package owns.
    Application,
    /// A file the entrypoint's command line names (a script, a jar, a configuration).
    Argument,
    /// Part of a language runtime's library trees, for the interpreter named.
    Runtime(String),
    /// A jar that a kept jar's manifest puts on its class path.
    ClassPathOf(String),
    /// Matched by `--keep`.
    Keep(String),
    /// Opened, executed or looked at by a probe of the running image.
    Probed,
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
            Why::Argument => write!(f, "named on the entrypoint's command line"),
            Why::Runtime(p) => write!(f, "runtime library tree of {p}"),
            Why::ClassPathOf(p) => write!(f, "on the class path of {p}"),
            Why::Keep(glob) => write!(f, "--keep {glob}"),
            Why::Probed => write!(f, "opened by a probe"),
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
    /// The program the entrypoint starts, its real path, when the image has it.
    pub entrypoint: Option<String>,
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
    "etc/ssl/certs/java/cacerts",
];

/// Where applications live, besides the working directory: what no package owns there is
/// the application's own.
pub const APPLICATION_DIRS: &[&str] = &["app", "srv", "opt", "usr/local"];

/// The `PATH` a runtime sets when the config sets none (Docker's, podman's, runc specs').
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How far into a file its kind is read before it is known to be ELF, or a script's line.
const HEAD: u64 = 256;

/// The largest `.pth` file or jar manifest read.
const MAX_SMALL_FILE: u64 = 1 << 20;

/// What the search is told besides the image.
pub struct Request<'a> {
    /// How the image runs: entrypoint, command, working directory, environment.
    pub config: &'a Config,
    /// Its Debian architecture, for the loader's directories.
    pub arch: &'a str,
    /// Who owns what in the image.
    pub owners: &'a Owners,
    /// `--keep` globs, matched against paths relative to the root.
    pub keep: &'a [String],
    /// What probes of the running image touched, relative to the root.
    pub probed: &'a BTreeSet<String>,
    /// Where programs are copied to be analysed, one at a time.
    pub scratch: &'a Path,
}

/// What `image` needs to run as the request says.
pub fn find(image: &Kept, request: &Request<'_>) -> io::Result<Needs> {
    let config = request.config;
    let path_env = (config.env().iter().flatten())
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH)
        .to_string();
    let mut finder = Finder {
        image,
        request,
        conf: bareboat_elf::ld_so_conf(image),
        path_env,
        workdir: config.working_dir().clone().unwrap_or_default(),
        needs: Needs::default(),
        queue: Vec::new(),
        analysed: BTreeSet::new(),
        names: BTreeMap::new(),
    };
    let argv: Vec<String> = (config.entrypoint().iter().flatten())
        .chain(config.cmd().iter().flatten())
        .cloned()
        .collect();
    if let Some(program) = argv.first() {
        match finder.program(program) {
            Some(path) => {
                finder.keep(&path, Why::Entrypoint);
                finder.needs.entrypoint = finder.follow(&path).map(|(real, _)| real);
            }
            None => finder.missing(program, "the entrypoint"),
        }
        finder.keep_arguments(&argv[1..]);
    }
    for data in RUNTIME_DATA {
        finder.keep_tree(data, Why::RuntimeData);
    }
    finder.keep_application();
    finder.keep_globs()?;
    for path in request.probed {
        finder.keep(path, Why::Probed);
    }
    while let Some(path) = finder.queue.pop() {
        finder.analyse(&path)?;
    }
    Ok(finder.needs)
}

/// The search for what an image needs, under way.
struct Finder<'a> {
    image: &'a Kept,
    request: &'a Request<'a>,
    /// The directories the image's `ld.so.conf` adds.
    conf: Vec<String>,
    path_env: String,
    workdir: String,
    needs: Needs,
    /// Kept regular files still to analyse.
    queue: Vec<String>,
    analysed: BTreeSet<String>,
    /// The paths through links that each kept real path was named by: a program's name
    /// says where its runtime looks (a virtual environment's `bin/python`).
    names: BTreeMap<String, BTreeSet<String>>,
}

/// Where `path` leads in `image`, by the one resolver every reader of an image uses, and
/// the symlinks it passes on the way; `None` when the links loop or lead out of bounds.
pub(crate) fn follow(image: &Kept, path: &str) -> Option<(String, Vec<String>)> {
    let view = &image.view;
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

/// Where the entry `path` of `image` is, its parent directories resolved and its last
/// component not followed: the path a file list's entry (a link, too) names in the image.
pub(crate) fn entry_path(image: &Kept, path: &str) -> Option<String> {
    let path = path.trim_start_matches('/');
    match path.rsplit_once('/') {
        Some((parent, name)) => Some(format!("{}/{name}", follow(image, parent)?.0)),
        None => Some(path.to_string()),
    }
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
        if !links.is_empty() {
            let name = path.trim_start_matches('/').to_string();
            self.names.entry(real.clone()).or_default().insert(name);
        }
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
            // A link in the tree is kept for the tree's sake, not only for its target's.
            self.add(&p, why.clone());
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

    /// Keeps the files the entrypoint's arguments name: each argument, and each part of
    /// one split at `:` (a class path) or after `=` (`--config=FILE`), that is a path of
    /// the image, from the working directory when relative.
    fn keep_arguments(&mut self, args: &[String]) {
        for arg in args {
            let value = arg.split_once('=').map_or(arg.as_str(), |(_, v)| v);
            for part in value
                .split(':')
                .filter(|p| !p.is_empty() && !p.starts_with('-'))
            {
                let path = match part.starts_with('/') {
                    true => part.to_string(),
                    false => format!("{}/{part}", self.workdir),
                };
                if self.file(&path).is_some() {
                    self.keep(&path, Why::Argument);
                }
            }
        }
    }

    /// Keeps the files under the working directory and where applications live that no
    /// package's file list names.
    fn keep_application(&mut self) {
        let mut roots: Vec<String> = APPLICATION_DIRS.iter().map(|d| d.to_string()).collect();
        roots.extend(Some(self.workdir.clone()).filter(|w| !w.trim_matches('/').is_empty()));
        for root in roots {
            for path in self.under(&root) {
                let node = &self.image.view[&path];
                let file = matches!(node.kind, Kind::File | Kind::Hardlink(_) | Kind::Symlink(_));
                if file && !self.request.owners.owns(&path) {
                    self.keep(&path, Why::Application);
                }
            }
        }
    }

    /// Keeps what `--keep` matches.
    fn keep_globs(&mut self) -> io::Result<()> {
        for glob in self.request.keep {
            let matcher = globset::GlobBuilder::new(glob.trim_start_matches('/'))
                .literal_separator(true)
                .build()
                .map_err(|e| {
                    io::Error::new(io::ErrorKind::InvalidInput, format!("--keep {glob}: {e}"))
                })?
                .compile_matcher();
            let matched: Vec<String> = (self.image.view.iter())
                .filter(|(p, _)| matcher.is_match(p.as_str()))
                .map(|(p, _)| p.clone())
                .collect();
            for path in matched {
                self.keep_tree(&path, Why::Keep(glob.clone()));
            }
        }
        Ok(())
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

    fn follow(&self, path: &str) -> Option<(String, Vec<String>)> {
        follow(self.image, path)
    }

    /// `path`, if it leads (links followed) to a regular file of the image: as named, so
    /// that keeping it keeps the links on the way.
    fn file(&self, path: &str) -> Option<String> {
        let (real, _) = self.follow(path)?;
        let node = self.image.view.get(&real)?;
        matches!(node.kind, Kind::File | Kind::Hardlink(_)).then(|| path.to_string())
    }

    /// Whether `path` leads to a directory of the image.
    fn is_dir(&self, path: &str) -> bool {
        (self.follow(path)).is_some_and(|(real, _)| {
            (self.image.view.get(&real)).is_some_and(|n| n.kind == Kind::Dir)
        })
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
        let arch = self.request.arch;
        let triplet = bareboat_elf::multiarch(arch);
        let unmerged = [format!("/lib/{triplet}/{soname}"), format!("/lib/{soname}")];
        (bareboat_elf::search_paths(soname, search, &self.conf, arch).iter())
            .chain(&unmerged)
            .find_map(|p| self.file(p))
    }

    /// Whether a library called `soname` is kept already, where the loader would not look
    /// for it: one a runtime loads itself (the JVM's launcher loads `lib/server/libjvm.so`),
    /// which the loader then finds by its name for the libraries beside it.
    fn loaded(&self, soname: &str) -> bool {
        let name = format!("/{soname}");
        (self.needs.paths.keys()).any(|p| p.ends_with(&name) && self.file(p).is_some())
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
                        None if self.loaded(&soname) => {}
                        None => self.missing(&soname, &by),
                    }
                }
                self.runtime(path)?;
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
            FileKind::Static { .. } => self.runtime(path)?,
            FileKind::Data if path.ends_with(".jar") => self.class_path(path)?,
            FileKind::Data => {}
        }
        Ok(())
    }

    /// Keeps the library trees of the language runtime whose interpreter is the program at
    /// `path`, as that interpreter finds them from its own location.
    fn runtime(&mut self, path: &str) -> io::Result<()> {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        let prefix = dir.strip_suffix("/bin").unwrap_or(dir);
        let why = Why::Runtime(format!("/{path}"));
        let triplet = bareboat_elf::multiarch(self.request.arch);
        let trees: Vec<String> = match runtime_of(name) {
            Some(Runtime::Python(version)) => {
                self.python(path, prefix, version, why);
                return Ok(());
            }
            Some(Runtime::Node) => return self.node(why),
            // The JDK's tree: `lib/` (modules, libraries, security), `conf/` and `release`.
            Some(Runtime::Java) => ["lib", "conf", "release"]
                .iter()
                .map(|t| format!("{prefix}/{t}"))
                .collect(),
            Some(Runtime::Ruby) => vec![
                format!("{prefix}/lib/ruby"),
                format!("{prefix}/lib/{triplet}/ruby"),
                "var/lib/gems".into(),
                "usr/share/rubygems-integration".into(),
            ],
            Some(Runtime::Php) => vec![
                format!("{prefix}/lib/php"),
                "usr/share/php".into(),
                "etc/php".into(),
            ],
            None => return Ok(()),
        };
        for tree in trees {
            self.keep_tree(&tree, why.clone());
        }
        Ok(())
    }

    /// Python's trees for the interpreter at the real path `path` in `prefix/bin`: the
    /// prefix's standard library (`lib/pythonX.Y`, with `lib-dynload` and
    /// `site-packages`) and Debian's `dist-packages`; for each name it was started by
    /// whose directory's parent holds a `pyvenv.cfg`, that virtual environment's
    /// site-packages, and the trees of the interpreter its `home` names; and the
    /// directories `.pth` files in those add.
    fn python(&mut self, path: &str, prefix: &str, version: Option<&str>, why: Why) {
        let mut sites = Vec::new();
        let mut prefixes = vec![prefix.to_string()];
        let names = self.names.get(path).cloned().unwrap_or_default();
        for name in names {
            let Some(venv) = name
                .rsplit_once('/')
                .and_then(|(bin, _)| bin.rsplit_once('/'))
            else {
                continue;
            };
            let cfg = format!("{}/pyvenv.cfg", venv.0);
            if self.file(&cfg).is_none() {
                continue;
            }
            self.keep(&cfg, why.clone());
            for v in self.python_versions(venv.0) {
                sites.push(format!("{}/lib/{v}/site-packages", venv.0));
            }
            if let Some(home) = self.venv_home(&cfg) {
                let home = home.trim_matches('/');
                prefixes.push(home.strip_suffix("/bin").unwrap_or(home).to_string());
            }
        }
        prefixes.dedup();
        for prefix in prefixes {
            let versions: Vec<String> = match version {
                Some(v) => vec![format!("python{v}")],
                None => self.python_versions(&prefix),
            };
            for v in &versions {
                sites.push(format!("{prefix}/lib/{v}/site-packages"));
                sites.push(format!("{prefix}/lib/{v}/dist-packages"));
                self.keep_tree(&format!("{prefix}/lib/{v}"), why.clone());
                if prefix == "usr" {
                    sites.push(format!("usr/local/lib/{v}/dist-packages"));
                }
            }
            sites.push(format!("{prefix}/lib/python3/dist-packages"));
        }
        for site in sites {
            if !self.is_dir(&site) {
                continue;
            }
            self.keep_tree(&site, why.clone());
            let pths: Vec<String> = (self.under(&site).into_iter())
                .filter(|p| p.ends_with(".pth"))
                .collect();
            for pth in pths {
                for dir in self.pth_dirs(&pth, &site) {
                    self.keep_tree(&dir, why.clone());
                }
            }
        }
    }

    /// The `pythonX.Y` directories under `prefix/lib`.
    fn python_versions(&self, prefix: &str) -> Vec<String> {
        let Some((real, _)) = self.follow(&format!("{prefix}/lib")) else {
            return Vec::new();
        };
        let lib = format!("{real}/");
        (self.image.view.keys())
            .filter_map(|p| p.strip_prefix(&lib))
            .filter(|name| {
                !name.contains('/')
                    && runtime_of(name).is_some_and(|r| matches!(r, Runtime::Python(Some(_))))
            })
            .map(String::from)
            .collect()
    }

    /// The `home` a virtual environment's `pyvenv.cfg` names.
    fn venv_home(&self, cfg: &str) -> Option<String> {
        let (real, _) = self.follow(cfg)?;
        let text = self.image.view.read(&real, MAX_SMALL_FILE)?;
        String::from_utf8_lossy(&text).lines().find_map(|l| {
            let (key, value) = l.split_once('=')?;
            (key.trim() == "home").then(|| value.trim().to_string())
        })
    }

    /// The directories a `.pth` file adds to `sys.path`: each line that is not a comment
    /// or an `import`, relative to the site directory unless absolute.
    fn pth_dirs(&self, pth: &str, site: &str) -> Vec<String> {
        let Some(text) = self.image.view.read(pth, MAX_SMALL_FILE) else {
            return Vec::new();
        };
        String::from_utf8_lossy(&text)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with("import"))
            .map(|l| match l.starts_with('/') {
                true => l.to_string(),
                false => format!("{site}/{l}"),
            })
            .filter(|d| self.is_dir(d))
            .collect()
    }

    /// Node's module trees: `node_modules` in the working directory, in the directory of
    /// each file the command line names, and in every directory above them.
    fn node(&mut self, why: Why) -> io::Result<()> {
        let mut starts = vec![self.workdir.trim_matches('/').to_string()];
        starts.extend(
            (self.needs.paths.iter())
                .filter(|(_, whys)| whys.contains(&Why::Argument))
                .filter_map(|(p, _)| Some(p.rsplit_once('/')?.0.to_string())),
        );
        for start in starts {
            let mut dir = start.as_str();
            loop {
                let modules = match dir.is_empty() {
                    true => "node_modules".to_string(),
                    false => format!("{dir}/node_modules"),
                };
                if self.is_dir(&modules) {
                    self.keep_tree(&modules, why.clone());
                }
                match dir.rsplit_once('/') {
                    Some((up, _)) => dir = up,
                    None if !dir.is_empty() => dir = "",
                    None => break,
                }
            }
        }
        Ok(())
    }

    /// Keeps the jars the manifest of the jar at `path` puts on its class path (relative
    /// to the jar's directory).
    fn class_path(&mut self, path: &str) -> io::Result<()> {
        let Some(stored) = self.image.view.get(path).and_then(|n| n.content) else {
            return Ok(());
        };
        // A zip archive is read from its end: from a copy, as ELF files are.
        let mut copy = tempfile::NamedTempFile::new_in(self.request.scratch)?;
        io::copy(&mut self.image.view.open(&stored)?, &mut copy)?;
        let Ok(manifest) = jar::manifest(copy.reopen()?, MAX_SMALL_FILE) else {
            return Ok(());
        };
        let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
        let by = format!("/{path}");
        for entry in jar::class_path(&manifest) {
            let named = match entry.starts_with('/') {
                true => entry,
                false => format!("{dir}/{entry}"),
            };
            if !self.keep(&named, Why::ClassPathOf(by.clone())) {
                self.missing(&named, &by);
            }
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
        let mut copy = tempfile::NamedTempFile::new_in(self.request.scratch)?;
        io::copy(&mut view.open(&stored)?, &mut copy)?;
        Ok(bareboat_elf::analyze(copy.path(), &shown)
            .ok()
            .map(|a| a.kind))
    }
}

/// A language runtime, known by its interpreter's file name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Runtime<'a> {
    /// `python3`, or `python3.13` with its version.
    Python(Option<&'a str>),
    Node,
    Java,
    Ruby,
    Php,
}

/// The runtime whose interpreter is called `name`.
fn runtime_of(name: &str) -> Option<Runtime<'_>> {
    let digits = |v: &str| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '.');
    match name {
        "python3" | "python" => Some(Runtime::Python(None)),
        "node" | "nodejs" => Some(Runtime::Node),
        "java" => Some(Runtime::Java),
        "ruby" => Some(Runtime::Ruby),
        "php" => Some(Runtime::Php),
        _ => {
            if let Some(v) = name
                .strip_prefix("python")
                .filter(|v| digits(v) && v.contains('.'))
            {
                return Some(Runtime::Python(Some(v)));
            }
            if name.strip_prefix("ruby").is_some_and(digits) {
                return Some(Runtime::Ruby);
            }
            name.strip_prefix("php")
                .is_some_and(digits)
                .then_some(Runtime::Php)
        }
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

    /// What the image needs, with no `--keep`.
    fn needs_of(kept: &Kept, config: &Config, scratch: &Path) -> Needs {
        let owners = Owners::read(kept).unwrap();
        let request = Request {
            config,
            arch: host_arch(),
            owners: &owners,
            keep: &[],
            probed: &BTreeSet::new(),
            scratch,
        };
        find(kept, &request).unwrap()
    }

    /// An entry of a test image: a path, and its content or (`Err`) a symlink's target.
    type Entry = (String, Result<Vec<u8>, String>);

    fn file(path: &str, bytes: &[u8]) -> Entry {
        (path.to_string(), Ok(bytes.to_vec()))
    }

    fn link(path: &str, target: &str) -> Entry {
        (path.to_string(), Err(target.to_string()))
    }

    /// The host's `ls` and its closure under merged /usr, reached through the image's own
    /// links, as a root to add to.
    fn merged_usr_ls() -> Vec<Entry> {
        let mut entries: Vec<Entry> = closure_of_ls()
            .into_iter()
            .map(|(host, bytes)| (format!("usr{host}"), Ok(bytes)))
            .collect();
        entries.extend([link("bin", "usr/bin"), link("lib", "usr/lib")]);
        if Path::new("/lib64").exists() {
            entries.push(link("lib64", "usr/lib64"));
        }
        entries
    }

    /// A one-layer image of `entries` (path, content or symlink target), read whole.
    fn image(dir: &Path, entries: &[Entry]) -> Kept {
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
        let mut entries = merged_usr_ls();
        entries.extend([
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
                "var/lib/dpkg/status",
                b"Package: vendor-extras\nStatus: install ok installed\nVersion: 1\nArchitecture: all\n",
            ),
            file(
                "var/lib/dpkg/info/vendor-extras.list",
                b"/.\n/usr/local/share\n/usr/local/share/owned.txt\n",
            ),
        ]);
        let kept = image(dir.path(), &entries);
        let config = ConfigBuilder::default()
            .entrypoint(vec!["ls".to_string()])
            .env(vec!["PATH=/usr/local/bin:/bin".to_string()])
            .working_dir("/work")
            .build()
            .unwrap();
        let needs = needs_of(&kept, &config, dir.path());
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
        let needs = needs_of(&kept, &config, dir.path());
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
        let needs = needs_of(&kept, &config, dir.path());
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
        let needs = needs_of(&kept, &config, other.path());
        assert!(
            needs.missing.contains(&missing("libc.so.6", "/usr/bin/ls")),
            "{needs:?}"
        );
    }

    #[test]
    fn python_and_node_find_their_trees_from_the_interpreter_they_are_started_by() {
        let dir = tempfile::tempdir().unwrap();
        let ls = std::fs::read("/bin/ls").unwrap();
        let mut entries = merged_usr_ls();
        entries.extend([
            // Two interpreters (any ELF program, known by its name).
            file("usr/bin/python3.13", &ls),
            file("usr/bin/node", &ls),
            file("usr/lib/python3.13/os.py", b""),
            file("usr/lib/python3/dist-packages/debpkg/__init__.py", b""),
            file("usr/share/unrelated.txt", b""),
            // A virtual environment, and a directory its .pth file adds.
            file("venv/pyvenv.cfg", b"home = /usr/bin\nversion = 3.13.5\n"),
            link("venv/bin/python3", "/usr/bin/python3.13"),
            file(
                "venv/lib/python3.13/site-packages/extra.pth",
                b"# a comment\nimport sitecustomize\n../../../src\n",
            ),
            file("venv/lib/python3.13/site-packages/pkg/mod.py", b""),
            file("venv/src/local.py", b""),
            file("work/main.py", b"print()"),
            // Node's module trees: beside the script, above it, at the root; not elsewhere.
            file("code/app/index.js", b""),
            file("code/app/node_modules/b/index.js", b""),
            file("code/node_modules/a/index.js", b""),
            file("node_modules/c/index.js", b""),
            file("other/node_modules/d/index.js", b""),
        ]);
        let kept = image(dir.path(), &entries);
        let python = ConfigBuilder::default()
            .entrypoint(vec!["/venv/bin/python3".to_string(), "main.py".to_string()])
            .working_dir("/work")
            .build()
            .unwrap();
        let needs = needs_of(&kept, &python, dir.path());
        let runtime = Why::Runtime("/usr/bin/python3.13".into());
        for path in [
            "venv/pyvenv.cfg",
            "usr/lib/python3.13/os.py",
            "usr/lib/python3/dist-packages/debpkg/__init__.py",
            "venv/lib/python3.13/site-packages/extra.pth",
            "venv/lib/python3.13/site-packages/pkg/mod.py",
            "venv/src/local.py",
        ] {
            assert!(needs.paths[path].contains(&runtime), "{path}: {needs:?}");
        }
        assert!(needs.paths["work/main.py"].contains(&Why::Argument));
        assert!(
            needs.paths["venv/bin/python3"].contains(&Why::LinkTo("/usr/bin/python3.13".into()))
        );
        assert!(!needs.paths.contains_key("usr/share/unrelated.txt"));
        assert!(!needs.paths.contains_key("code/app/index.js"));

        let node = ConfigBuilder::default()
            .entrypoint(vec!["node".to_string(), "/code/app/index.js".to_string()])
            .env(vec!["PATH=/bin".to_string()])
            .build()
            .unwrap();
        let needs = needs_of(&kept, &node, dir.path());
        let runtime = Why::Runtime("/usr/bin/node".into());
        for path in [
            "code/app/node_modules/b/index.js",
            "code/node_modules/a/index.js",
            "node_modules/c/index.js",
        ] {
            assert!(needs.paths[path].contains(&runtime), "{path}: {needs:?}");
        }
        assert!(needs.paths["code/app/index.js"].contains(&Why::Argument));
        assert!(!needs.paths.contains_key("other/node_modules/d/index.js"));
        assert!(!needs.paths.contains_key("venv/pyvenv.cfg"));
    }

    #[test]
    fn runtimes_are_known_by_their_interpreters_names() {
        let cases = [
            ("python3", Some(Runtime::Python(None))),
            ("python3.13", Some(Runtime::Python(Some("3.13")))),
            ("python3-config", None),
            ("node", Some(Runtime::Node)),
            ("nodejs", Some(Runtime::Node)),
            ("java", Some(Runtime::Java)),
            ("ruby3.3", Some(Runtime::Ruby)),
            ("php8.4", Some(Runtime::Php)),
            ("phpize", None),
            ("ls", None),
        ];
        for (name, runtime) in cases {
            assert_eq!(runtime_of(name), runtime, "{name}");
        }
    }
}
