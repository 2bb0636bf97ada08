//! What an installed Debian system's files say about its packages: dpkg's database
//! (`status`, and `status.d` with one file a package, as distroless and bareboat write it),
//! and merged /usr, the one rule for where a package's paths end up. One reader for a base
//! image's packages, inspect's package list and the SBOM of an existing image.

use crate::Error;
use crate::index::PackageIndex;
use crate::relation::SourceRef;

/// dpkg's database of every package, with each one's state.
pub const STATUS: &str = "var/lib/dpkg/status";
/// One file a package, each an installed package's paragraph.
pub const STATUS_D: &str = "var/lib/dpkg/status.d";

/// The largest database file a reader of an image's layers keeps in memory.
pub const MAX_DATABASE: u64 = 64 << 20;
/// The most bytes of database files a reader of an image's layers keeps in all.
pub const MAX_DATABASES: u64 = 128 << 20;

/// The top-level directories that merged /usr makes links into `usr/`.
pub const MERGED_DIRS: [&str; 6] = ["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/// A path as merged /usr lays it out (`lib/x/libc.so.6` becomes `usr/lib/x/libc.so.6`),
/// without a leading `/`. The top-level directories themselves are left as they are, for
/// the caller to keep as links.
pub fn merged_usr(path: &str) -> String {
    let path = path.trim_start_matches('/');
    let merged = MERGED_DIRS.iter().any(|dir| {
        path.strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
    });
    if merged {
        format!("usr/{path}")
    } else {
        path.to_string()
    }
}

/// Whether `path` (relative to the root) is a file of dpkg's database that lists packages:
/// `status`, or a package's `status.d` entry (not its `.md5sums` or another list; package
/// names may hold dots, as `libstdc++6` and `python3.13` do).
pub fn is_database(path: &str) -> bool {
    path == STATUS
        || path
            .strip_prefix(STATUS_D)
            .and_then(|p| p.strip_prefix('/'))
            .is_some_and(|name| {
                !name.contains('/')
                    && ![".md5sums", ".list", ".conffiles"]
                        .iter()
                        .any(|suffix| name.ends_with(suffix))
            })
}

/// A package the database lists as installed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installed {
    /// The package's name.
    pub name: String,
    /// Its installed version.
    pub version: String,
    /// Its architecture, or `all`.
    pub architecture: String,
    /// The source package, when the paragraph names one (it does when it differs), as
    /// [`SourceRef`] parses it; of a field that does not parse, its first word.
    pub source: Option<String>,
    /// The source's version, when `Source: NAME (VERSION)` gives one (a binNMU's differs
    /// from the package's by its `+bN`).
    pub source_version: Option<String>,
    /// The database file that lists it, as `/var/lib/dpkg/...`.
    pub database: String,
    /// Its paragraph, as the database has it.
    pub paragraph: String,
}

impl Installed {
    /// The source package it was built from.
    pub fn source_name(&self) -> &str {
        self.source.as_deref().unwrap_or(&self.name)
    }

    /// The source package's version.
    pub fn source_version(&self) -> &str {
        self.source_version.as_deref().unwrap_or(&self.version)
    }
}

/// The installed packages a dpkg database lists.
#[derive(Clone, Debug, Default)]
pub struct Database {
    /// Sorted by name and architecture, each once.
    pub packages: Vec<Installed>,
}

impl Database {
    /// Reads the database files among `files` (paths relative to the root, and their
    /// content): every `status.d` entry, and the paragraphs of `status` whose `Status` says
    /// the package is installed. Other files are passed over.
    pub fn read<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Database {
        let mut packages = Vec::new();
        for (path, bytes) in files.into_iter().filter(|(p, _)| is_database(p)) {
            let text = String::from_utf8_lossy(bytes);
            let installed_only = path == STATUS;
            for para in text.split("\n\n").filter(|p| !p.trim().is_empty()) {
                if let Some(p) = installed(para, path, installed_only) {
                    packages.push(p);
                }
            }
        }
        packages.sort_by(|a, b| (&a.name, &a.architecture).cmp(&(&b.name, &b.architecture)));
        packages.dedup_by(|a, b| a.name == b.name && a.architecture == b.architecture);
        Database { packages }
    }

    /// The packages as an index the solver takes as already installed; `what` names the
    /// database in errors.
    pub fn index(&self, what: &str) -> Result<PackageIndex, Error> {
        let mut text = String::new();
        for p in &self.packages {
            text.push_str(p.paragraph.trim_matches('\n'));
            text.push_str("\n\n");
        }
        let index = PackageIndex::parse_installed(&text, what)?;
        // The solver compares these versions: one that does not parse (a folded line, a
        // stray character) is refused here, naming the package, rather than surfacing in
        // a solver message as a package that cannot be installed.
        for p in index.iter() {
            crate::relation::parse_version(p.version()).map_err(|reason| Error::BadIndex {
                what: what.to_string(),
                reason: format!("package {}: {reason}", p.name()),
            })?;
        }
        Ok(index)
    }
}

/// The package a paragraph of `database` describes, unless it lacks a name or version, or
/// (with `installed_only`) its `Status` is not `... installed`.
fn installed(para: &str, database: &str, installed_only: bool) -> Option<Installed> {
    let field = |name: &str| {
        para.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    };
    if installed_only && !field("Status").is_some_and(|s| s.ends_with(" installed")) {
        return None;
    }
    let name = field("Package")?;
    // A database may be odd (any image is read): of a `Source` that does not parse, the
    // name is still taken, for matching the security tracker's data.
    let source = field("Source").map(|s| {
        SourceRef::parse(Some(s), name).unwrap_or_else(|_| SourceRef {
            name: s.split_whitespace().next().unwrap_or(name).to_string(),
            version: None,
        })
    });
    Some(Installed {
        name: name.to_string(),
        version: field("Version")?.to_string(),
        architecture: field("Architecture").unwrap_or_default().to_string(),
        source_version: source
            .as_ref()
            .and_then(|s| s.version.as_ref())
            .map(ToString::to_string),
        source: source.map(|s| s.name),
        database: format!("/{database}"),
        paragraph: para.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_usr_moves_paths_under_the_merged_directories_only() {
        for (from, to) in [
            ("bin/ls", "usr/bin/ls"),
            (
                "/lib/x86_64-linux-gnu/libc.so.6",
                "usr/lib/x86_64-linux-gnu/libc.so.6",
            ),
            (
                "lib64/ld-linux-x86-64.so.2",
                "usr/lib64/ld-linux-x86-64.so.2",
            ),
            ("usr/bin/ls", "usr/bin/ls"),
            ("libexec/x", "libexec/x"),
            ("binutils/x", "binutils/x"),
            ("etc/bin/x", "etc/bin/x"),
            ("bin", "bin"),
            ("etc/passwd", "etc/passwd"),
        ] {
            assert_eq!(merged_usr(from), to, "{from}");
        }
    }

    #[test]
    fn database_files_are_status_and_status_d_entries() {
        assert!(is_database("var/lib/dpkg/status"));
        assert!(is_database("var/lib/dpkg/status.d/libstdc++6"));
        assert!(is_database("var/lib/dpkg/status.d/python3.13"));
        assert!(!is_database("var/lib/dpkg/status.d/base.md5sums"));
        assert!(!is_database("var/lib/dpkg/status.d/x/y"));
        assert!(!is_database("var/lib/dpkg/status-old"));
        assert!(!is_database("var/lib/dpkg/status.dx"));
    }

    #[test]
    fn installed_packages_come_from_status_d_and_installed_status_paragraphs() {
        let status =
            b"Package: a\nStatus: install ok installed\nVersion: 1\nArchitecture: amd64\n\n\
Package: b\nStatus: deinstall ok config-files\nVersion: 2\n\n";
        let busybox = b"Package: busybox-static\nSource: busybox (1:1.37.0-6)\nVersion: 1:1.37.0-6+b9\nArchitecture: amd64\n";
        let db = Database::read([
            ("var/lib/dpkg/status", &status[..]),
            ("var/lib/dpkg/status.d/busybox-static", &busybox[..]),
            (
                "var/lib/dpkg/status.d/busybox-static.md5sums",
                b"x  bin/busybox\n",
            ),
            ("etc/os-release", b"ID=debian\n"),
        ]);
        let names: Vec<&str> = db.packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["a", "busybox-static"]);
        let b = &db.packages[1];
        assert_eq!(b.source_name(), "busybox");
        assert_eq!(b.source_version(), "1:1.37.0-6");
        assert_eq!(b.database, "/var/lib/dpkg/status.d/busybox-static");
        assert_eq!(db.packages[0].source_name(), "a");
        assert_eq!(db.packages[0].source_version(), "1");
        let index = db.index("t").unwrap();
        assert_eq!(index.len(), 2);
    }
}
