//! `Contents-<arch>` indexes: which package ships which path, for finding the packages that
//! provide a program's shared libraries and interpreters.
//!
//! A Contents file is large (170 MB unpacked for trixie's main), so it is parsed as it streams
//! and only the paths that lookups can ask for are kept: shared objects (a name containing
//! `.so`) anywhere, and programs in the `bin` and `sbin` directories. Paths are stored
//! merged-/usr (`lib/x/libc.so.6` becomes `usr/lib/x/libc.so.6`), so bookworm's split layout
//! and trixie's merged one answer the same question. The kept lines are cached as sorted text
//! under the SHA256 of the compressed file they came from.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

use crate::Error;
use crate::dpkg::merged_usr;
use crate::index::Compression;

const MAGIC: &str = "bareboat contents 1\n";

/// Paths and the packages that ship them, sorted by path.
#[derive(Debug, Default)]
pub struct ContentsIndex {
    /// `path\tpkg,pkg` lines, sorted and without duplicates.
    lines: Vec<String>,
}

fn is_kept(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.contains(".so")
        || ["usr/bin/", "usr/sbin/"]
            .iter()
            .any(|d| path.strip_prefix(d).is_some_and(|rest| !rest.contains('/')))
}

impl ContentsIndex {
    /// Parses a (compressed) Contents stream; `what` names it in errors.
    pub fn parse(
        input: impl Read + Send,
        compression: Compression,
        what: &str,
    ) -> Result<Self, Error> {
        let bad = |reason: String| Error::BadIndex {
            what: what.to_string(),
            reason,
        };
        let mut lines = Vec::new();
        let mut reader = BufReader::with_capacity(1 << 16, compression.decoder(input));
        let mut line = String::new();
        loop {
            line.clear();
            let n = reader
                .read_line(&mut line)
                .map_err(|e| bad(format!("unreadable: {e}")))?;
            if n == 0 {
                break;
            }
            let text = line.trim_end();
            if text.is_empty() {
                continue;
            }
            // The package list is the last column; the path may itself contain spaces.
            let Some((path, packages)) = text.rsplit_once(|c: char| c.is_ascii_whitespace()) else {
                return Err(bad(format!("a line without a package column: {text:?}")));
            };
            let path = merged_usr(path.trim_end());
            if !is_kept(&path) {
                continue;
            }
            let names: Vec<&str> = packages
                .split(',')
                .map(|q| q.rsplit('/').next().unwrap_or(q))
                .collect();
            lines.push(format!("{path}\t{}", names.join(",")));
        }
        lines.sort();
        lines.dedup();
        Ok(ContentsIndex { lines })
    }

    /// The index of packages' own file lists, `(package, path)`, kept as a Contents file
    /// would be.
    pub fn of_packages<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut lines: Vec<String> = files
            .into_iter()
            .map(|(package, path)| (package, merged_usr(path.trim_start_matches("./"))))
            .filter(|(_, path)| is_kept(path))
            .map(|(package, path)| format!("{path}\t{package}"))
            .collect();
        lines.sort();
        lines.dedup();
        ContentsIndex { lines }
    }

    /// The packages that ship `path` (any form; it is looked up merged-/usr).
    pub fn packages(&self, path: &str) -> Vec<&str> {
        let path = merged_usr(path);
        let key = format!("{path}\t");
        let start = self.lines.partition_point(|l| l.as_str() < key.as_str());
        self.lines[start..]
            .iter()
            .take_while(|l| l.starts_with(&key))
            .flat_map(|l| l[key.len()..].split(','))
            .collect()
    }

    /// Number of paths kept.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether no path is kept.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Writes the parsed form for the cache.
    pub fn write_to(&self, w: &mut impl Write) -> std::io::Result<()> {
        w.write_all(MAGIC.as_bytes())?;
        for l in &self.lines {
            w.write_all(l.as_bytes())?;
            w.write_all(b"\n")?;
        }
        Ok(())
    }

    /// Loads the parsed form written by [`ContentsIndex::write_to`].
    pub fn load(path: &Path) -> Result<Self, Error> {
        let bad = |reason: &str| Error::BadIndex {
            what: path.display().to_string(),
            reason: reason.to_string(),
        };
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let body = text
            .strip_prefix(MAGIC)
            .ok_or_else(|| bad("not a bareboat contents index"))?;
        let lines: Vec<String> = body.lines().map(String::from).collect();
        if !lines.is_sorted() || lines.iter().any(|l| !l.contains('\t')) {
            return Err(bad("lines out of order or without packages"));
        }
        Ok(ContentsIndex { lines })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
bin/bash                                                shells/bash
lib/x86_64-linux-gnu/libc.so.6                          libs/libc6
usr/lib/x86_64-linux-gnu/libssl.so.3                    libs/libssl3t64
usr/lib/x86_64-linux-gnu/libGL.so.1                     libs/libgl1,non-free/libs/libgl1-vendor
usr/share/doc/bash/README                               shells/bash
usr/bin/python3                                         python/python3-minimal
usr/lib/python3/dist-packages/x/y.cpython-313-x86_64-linux-gnu.so python/python3-x
usr/share/dir with space/lib.so                         misc/spacey
";

    #[test]
    fn keeps_libraries_and_programs_merged_under_usr() {
        let idx = ContentsIndex::parse(TEXT.as_bytes(), Compression::None, "t").unwrap();
        assert_eq!(idx.packages("/lib/x86_64-linux-gnu/libc.so.6"), ["libc6"]);
        assert_eq!(
            idx.packages("usr/lib/x86_64-linux-gnu/libc.so.6"),
            ["libc6"]
        );
        assert_eq!(idx.packages("/bin/bash"), ["bash"]);
        assert_eq!(idx.packages("/usr/bin/python3"), ["python3-minimal"]);
        assert_eq!(
            idx.packages("/usr/lib/x86_64-linux-gnu/libGL.so.1"),
            ["libgl1", "libgl1-vendor"]
        );
        assert_eq!(idx.packages("/usr/share/dir with space/lib.so"), ["spacey"]);
        assert!(
            idx.packages("/usr/share/doc/bash/README").is_empty(),
            "not kept"
        );
        assert!(idx.packages("/usr/lib/x86_64-linux-gnu/libc.so").is_empty());
        assert_eq!(idx.len(), 7);
    }

    #[test]
    fn the_cached_form_loads_back_and_refuses_other_files() {
        let idx = ContentsIndex::parse(TEXT.as_bytes(), Compression::None, "t").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.idx");
        let mut bytes = Vec::new();
        idx.write_to(&mut bytes).unwrap();
        std::fs::write(&path, &bytes).unwrap();
        let back = ContentsIndex::load(&path).unwrap();
        assert_eq!(back.lines, idx.lines);
        std::fs::write(&path, "usr/bin/x\tx\n").unwrap();
        let err = format!("{:#}", ContentsIndex::load(&path).unwrap_err());
        assert!(err.contains("not a bareboat contents index"), "{err}");
        std::fs::write(&path, format!("{MAGIC}b\tx\na\ty\n")).unwrap();
        let err = format!("{:#}", ContentsIndex::load(&path).unwrap_err());
        assert!(
            err.contains("lines out of order or without packages"),
            "{err}"
        );
    }

    #[test]
    fn packages_file_lists_answer_like_contents() {
        let idx = ContentsIndex::of_packages([
            ("zlib1g", "./usr/lib/x86_64-linux-gnu/libz.so.1"),
            ("zlib1g", "./usr/share/doc/zlib1g/copyright"),
            ("libc6", "./lib/x86_64-linux-gnu/libc.so.6"),
        ]);
        assert_eq!(
            idx.packages("/usr/lib/x86_64-linux-gnu/libz.so.1"),
            ["zlib1g"]
        );
        assert_eq!(
            idx.packages("/usr/lib/x86_64-linux-gnu/libc.so.6"),
            ["libc6"]
        );
        assert_eq!(idx.len(), 2, "only libraries and programs are kept");
    }

    #[test]
    fn a_line_without_packages_is_an_error() {
        let err = ContentsIndex::parse("justapath\n".as_bytes(), Compression::None, "t");
        assert!(err.unwrap_err().to_string().contains("package column"));
    }
}
