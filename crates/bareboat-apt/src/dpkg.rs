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

/// The longest line an md5sums file may have: an MD5, two characters and a path as long as
/// Linux allows.
const MAX_MD5SUMS_LINE: usize = 32 + 2 + 4096;

/// Whether `path` (relative to the root) is one of dpkg's lists of the files a package owns:
/// `info/NAME.list` (every path it installed, directories too), or an md5sums file in
/// `info/` or, in distroless images, `status.d/` (its regular files).
pub fn is_file_list(path: &str) -> bool {
    let listed = |dir: &str| {
        path.strip_prefix(dir)
            .and_then(|p| p.strip_prefix('/'))
            .is_some_and(|name| !name.contains('/'))
    };
    (listed("var/lib/dpkg/info") && (path.ends_with(".list") || path.ends_with(".md5sums")))
        || (listed(STATUS_D) && path.ends_with(".md5sums"))
}

/// The paths a file list [`is_file_list`] names (`what` in errors) owns, without a leading
/// `/`, as it names them: a `.list` has one path a line (`/.` for the root is passed over),
/// an md5sums file is read by [`md5sums`].
pub fn owned_paths(path: &str, text: &[u8]) -> Result<Vec<String>, Error> {
    if path.ends_with(".md5sums") {
        return Ok(md5sums(text, path)?.into_iter().map(|(p, _)| p).collect());
    }
    Ok(String::from_utf8_lossy(text)
        .lines()
        .map(|l| l.trim_start_matches('/'))
        .filter(|l| !l.is_empty() && *l != ".")
        .map(String::from)
        .collect())
}

/// Where dpkg keeps the md5sums of package `name` of architecture `arch`, most likely first:
/// `var/lib/dpkg/info/NAME.md5sums`, `NAME:ARCH.md5sums` for a package installable for
/// several architectures at once, and, in distroless images, `status.d/NAME.md5sums`.
pub fn md5sums_paths(name: &str, arch: &str) -> [String; 3] {
    [
        format!("var/lib/dpkg/info/{name}.md5sums"),
        format!("var/lib/dpkg/info/{name}:{arch}.md5sums"),
        format!("{STATUS_D}/{name}.md5sums"),
    ]
}

/// The files an md5sums file `text` (named `what` in errors) lists, each with its MD5, in
/// its order: lines of 32 hex digits, two spaces (or a space and `*`, as md5sum writes a
/// binary file) and a path relative to the root, which comes back without a leading `/`
/// and as merged /usr lays it out. A line that is none of that is refused, naming it.
pub fn md5sums(text: &[u8], what: &str) -> Result<Vec<(String, [u8; 16])>, Error> {
    let mut out = Vec::new();
    for (i, line) in text.split(|b| *b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let refuse = |reason: &str| Error::BadDatabase {
            what: what.to_string(),
            reason: format!("line {}: {reason}", i + 1),
        };
        if line.len() > MAX_MD5SUMS_LINE {
            return Err(refuse(&format!("longer than {MAX_MD5SUMS_LINE} bytes")));
        }
        let (sum, path) = match (line.get(..32), line.get(32..34), line.get(34..)) {
            (Some(sum), Some(b"  " | b" *"), Some(path)) if !path.is_empty() => (sum, path),
            _ => return Err(refuse("not an MD5, two spaces and a path")),
        };
        let mut md5 = [0u8; 16];
        hex::decode_to_slice(sum, &mut md5).map_err(|_| refuse("the MD5 is not hex"))?;
        let path = std::str::from_utf8(path).map_err(|_| refuse("the path is not UTF-8"))?;
        if path.contains('\0') || path.split('/').any(|part| part == "..") {
            return Err(refuse("the path leads out of the root"));
        }
        out.push((merged_usr(path), md5));
    }
    Ok(out)
}

/// The value of the field `name` of a control paragraph, its continuation lines joined
/// with spaces; empty when the paragraph has no such field.
pub fn field(paragraph: &str, name: &str) -> String {
    let mut lines = paragraph.lines().skip_while(|l| {
        l.strip_prefix(name)
            .is_none_or(|rest| !rest.starts_with(':'))
    });
    let Some(first) = lines.next() else {
        return String::new();
    };
    let mut value = first[name.len() + 1..].trim().to_string();
    for more in lines.take_while(|l| l.starts_with(' ') || l.starts_with('\t')) {
        value.push(' ');
        value.push_str(more.trim());
    }
    value
}

/// The configuration files a package's paragraph lists in `Conffiles`, each with the MD5 it
/// was installed with (md5sums files leave them out), without a leading `/` and as merged
/// /usr lays them out. Entries dpkg marks `obsolete` or `remove-on-upgrade`, and lines
/// that are not a path and an MD5, are passed over: a conffile without a sum is one whose
/// copy cannot be told from the package's.
pub fn conffiles(paragraph: &str) -> Vec<(String, [u8; 16])> {
    let mut lines = paragraph
        .lines()
        .skip_while(|l| !l.starts_with("Conffiles:"));
    lines.next();
    lines
        .take_while(|l| l.starts_with(' '))
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let (path, sum) = (words.next()?, words.next()?);
            if words.next().is_some() || path.split('/').any(|part| part == "..") {
                return None;
            }
            let mut md5 = [0u8; 16];
            hex::decode_to_slice(sum, &mut md5).ok()?;
            Some((merged_usr(path), md5))
        })
        .collect()
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
    fn the_files_a_package_owns_are_read_from_its_lists() {
        assert!(is_file_list("var/lib/dpkg/info/coreutils.list"));
        assert!(is_file_list("var/lib/dpkg/info/libc6:amd64.md5sums"));
        assert!(is_file_list("var/lib/dpkg/status.d/base.md5sums"));
        assert!(!is_file_list("var/lib/dpkg/status.d/base"));
        assert!(!is_file_list("var/lib/dpkg/info/x/y.list"));
        let list = b"/.\n/usr\n/usr/bin\n/usr/bin/ls\n";
        let owned = owned_paths("var/lib/dpkg/info/coreutils.list", list).unwrap();
        assert_eq!(owned, ["usr", "usr/bin", "usr/bin/ls"]);
        let sums = b"d41d8cd98f00b204e9800998ecf8427e  usr/bin/ls\n";
        let owned = owned_paths("var/lib/dpkg/status.d/x.md5sums", sums).unwrap();
        assert_eq!(owned, ["usr/bin/ls"]);
    }

    #[test]
    fn md5sums_are_read_as_dpkg_writes_them_and_bad_lines_refused() {
        let text = b"d41d8cd98f00b204e9800998ecf8427e  usr/bin/true\n\
                     0123456789abcdef0123456789ABCDEF *lib/x86_64-linux-gnu/libc.so.6\n";
        let sums = md5sums(text, "libc6.md5sums").unwrap();
        assert_eq!(sums[0].0, "usr/bin/true");
        assert_eq!(hex::encode(sums[0].1), "d41d8cd98f00b204e9800998ecf8427e");
        // Where merged /usr puts it, as the tree has it.
        assert_eq!(sums[1].0, "usr/lib/x86_64-linux-gnu/libc.so.6");
        for (bad, reason) in [
            (
                &b"d41d8cd98f00b204e9800998ecf8427e usr/bin/true"[..],
                "two spaces",
            ),
            (b"zz1d8cd98f00b204e9800998ecf8427e  usr/bin/true", "not hex"),
            (b"d41d8cd98f00b204e9800998ecf8427e  ", "two spaces"),
            (
                b"d41d8cd98f00b204e9800998ecf8427e  usr/../../etc/shadow",
                "out of the root",
            ),
        ] {
            let e = md5sums(bad, "x.md5sums").unwrap_err().to_string();
            assert!(
                e.starts_with("x.md5sums: line 1: ") && e.contains(reason),
                "{e}"
            );
        }
        let long = [b'a'; MAX_MD5SUMS_LINE + 1];
        let e = md5sums(&long, "x").unwrap_err().to_string();
        assert!(e.contains("longer than"), "{e}");
        assert_eq!(
            md5sums_paths("libc6", "amd64")[1],
            "var/lib/dpkg/info/libc6:amd64.md5sums"
        );
    }

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
    fn a_field_is_read_with_its_continuation_lines() {
        let para = "Package: a\nDepends: libc6 (>= 2.36),\n libssl3t64\nPre-Depends: awk\nDescription: x\n";
        assert_eq!(field(para, "Depends"), "libc6 (>= 2.36), libssl3t64");
        assert_eq!(field(para, "Pre-Depends"), "awk");
        assert_eq!(field(para, "Provides"), "");
    }

    #[test]
    fn conffiles_come_with_their_sums_and_obsolete_ones_are_passed_over() {
        let para = "Package: base-files\nConffiles:\n /etc/issue 0123456789abcdef0123456789abcdef\n \
/etc/old 0123456789abcdef0123456789abcdef obsolete\n /etc/../x 0123456789abcdef0123456789abcdef\n \
/etc/bad nothex\nDescription: x\n /not/a/conffile 0123456789abcdef0123456789abcdef\n";
        let sum: [u8; 16] = hex::decode("0123456789abcdef0123456789abcdef")
            .unwrap()
            .try_into()
            .unwrap();
        assert_eq!(conffiles(para), [("etc/issue".to_string(), sum)]);
        assert_eq!(conffiles("Package: a\n"), []);
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
