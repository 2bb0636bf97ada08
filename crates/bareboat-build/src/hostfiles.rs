//! The spec's `[[files]]` expanded into the entries they put in the image: a file, a whole
//! directory (walked in name order), or a glob whose matches go into `dst` as a directory.
//! Host symlinks are copied as symlinks and never followed, also while a glob is matched.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use bareboat_spec::spec::FileSpec;

use crate::Error;

/// One entry a `[[files]]` item puts in the image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostEntry {
    /// The host path it is copied from.
    pub src: PathBuf,
    /// Where it goes, relative to the image root.
    pub dst: String,
    /// What it is.
    pub kind: HostKind,
    /// Its permission bits.
    pub mode: u32,
    /// Its owner's uid in the image.
    pub uid: u32,
    /// Its group's gid in the image.
    pub gid: u32,
    /// Its modification time, in seconds since the epoch.
    pub mtime: u64,
}

/// What a host entry is; a symlink is copied as a link, never followed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostKind {
    /// A directory.
    Dir,
    /// A regular file.
    File,
    /// A symbolic link, with its target.
    Symlink(String),
}

/// Whether a `src` is a glob pattern rather than a path.
pub fn is_glob(src: &Path) -> bool {
    src.to_string_lossy().contains(['*', '?', '['])
}

/// Expands every item, in spec order.
pub fn expand(files: &[FileSpec]) -> Result<Vec<HostEntry>, Error> {
    let mut out = Vec::new();
    for f in files {
        if is_glob(&f.src) {
            let pattern = f.src.to_string_lossy();
            let matches = glob_matches(&pattern)?;
            if matches.is_empty() {
                return Err(Error::NoMatch {
                    pattern: pattern.into_owned(),
                });
            }
            for m in matches {
                let name = m.file_name().unwrap_or_default().to_string_lossy();
                add(&mut out, &m, &format!("{}/{name}", f.dst), f)?;
            }
        } else {
            add(&mut out, &f.src, &f.dst, f)?;
        }
    }
    Ok(out)
}

/// The paths `pattern` matches, in name order, found by walking from its longest literal
/// prefix without entering a symlinked directory: a match under one would be a host file
/// outside the tree the spec names (`dist/lib/vendor -> /etc` and `dist/**/shadow`). A
/// symlink the pattern matches itself is a match, copied as a link.
fn glob_matches(pattern: &str) -> Result<Vec<PathBuf>, Error> {
    let parts: Vec<&str> = pattern.split('/').collect();
    let literal = parts.iter().take_while(|p| !is_glob(Path::new(p))).count();
    let rest = &parts[literal..];
    let base = match parts[..literal].join("/") {
        b if b.is_empty() && pattern.starts_with('/') => "/".to_string(),
        b => b,
    };
    let matcher = globset::GlobBuilder::new(&rest.join("/"))
        .literal_separator(true)
        .build()
        .map_err(|e| Error::HostFile {
            path: pattern.to_string(),
            reason: format!("bad glob: {e}"),
        })?
        .compile_matcher();
    // Without `**`, nothing deeper than the pattern's own components can match.
    let depth = if rest.contains(&"**") {
        usize::MAX
    } else {
        rest.len()
    };
    let base = PathBuf::from(if base.is_empty() { "." } else { &base });
    // Depth first, in name order; each item is a path, its path below the base, and its
    // depth, and a directory's children are listed only when it is popped.
    let children = |dir: &Path, rel: &Path, level: usize| {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map(|r| r.filter_map(|e| e.ok()).collect())
            .unwrap_or_default();
        entries.sort_by_key(|e| std::cmp::Reverse(e.file_name()));
        entries
            .into_iter()
            .map(|e| {
                // The entry's own type: a symlink to a directory is not a directory here.
                let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
                (
                    dir.join(e.file_name()),
                    rel.join(e.file_name()),
                    level,
                    is_dir,
                )
            })
            .collect::<Vec<_>>()
    };
    let mut matches = Vec::new();
    let mut stack = children(&base, Path::new(""), 1);
    while let Some((path, rel, level, is_dir)) = stack.pop() {
        if matcher.is_match(&rel) {
            matches.push(path.clone());
        }
        if is_dir && level < depth {
            stack.extend(children(&path, &rel, level + 1));
        }
    }
    Ok(matches)
}

fn add(out: &mut Vec<HostEntry>, src: &Path, dst: &str, f: &FileSpec) -> Result<(), Error> {
    let unreadable = |e: std::io::Error| Error::HostFile {
        path: src.display().to_string(),
        reason: e.to_string(),
    };
    let meta = std::fs::symlink_metadata(src).map_err(unreadable)?;
    let kind = if meta.is_dir() {
        HostKind::Dir
    } else if meta.file_type().is_symlink() {
        let target = std::fs::read_link(src).map_err(unreadable)?;
        HostKind::Symlink(target.to_string_lossy().into_owned())
    } else if meta.is_file() {
        HostKind::File
    } else {
        return Err(Error::HostFile {
            path: src.display().to_string(),
            reason: "not a regular file, directory or symlink".into(),
        });
    };
    let host_mode = meta.permissions().mode() & 0o7777;
    let mode = match kind {
        // A mode given for a directory tree applies to its files; directories stay searchable.
        HostKind::Dir => host_mode,
        HostKind::Symlink(_) => 0o777,
        HostKind::File => f.mode.unwrap_or(host_mode),
    };
    out.push(HostEntry {
        src: src.to_path_buf(),
        dst: dst.to_string(),
        kind: kind.clone(),
        mode,
        uid: f.uid,
        gid: f.gid,
        mtime: meta.mtime().max(0) as u64,
    });
    if kind == HostKind::Dir {
        let mut children: Vec<_> = std::fs::read_dir(src)
            .map_err(unreadable)?
            .filter_map(|e| e.ok())
            .collect();
        children.sort_by_key(|e| e.file_name());
        for child in children {
            let name = child.file_name().to_string_lossy().into_owned();
            add(out, &child.path(), &format!("{dst}/{name}"), f)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(src: &Path, dst: &str) -> FileSpec {
        FileSpec {
            src: src.to_path_buf(),
            dst: dst.into(),
            mode: Some(0o700),
            uid: 1,
            gid: 2,
        }
    }

    #[test]
    fn directories_are_walked_in_order_and_globs_fill_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("tree/sub")).unwrap();
        std::fs::write(root.join("tree/b"), "b").unwrap();
        std::fs::write(root.join("tree/sub/a"), "a").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("tree/link")).unwrap();
        std::fs::write(root.join("x.so"), "").unwrap();
        std::fs::write(root.join("y.so"), "").unwrap();
        std::fs::write(root.join("z.txt"), "").unwrap();
        let entries = expand(&[
            spec(&root.join("tree"), "app"),
            spec(&root.join("*.so"), "app/lib"),
        ])
        .unwrap();
        let got: Vec<(&str, &HostKind)> =
            entries.iter().map(|e| (e.dst.as_str(), &e.kind)).collect();
        assert_eq!(
            got,
            [
                ("app", &HostKind::Dir),
                ("app/b", &HostKind::File),
                ("app/link", &HostKind::Symlink("/etc/passwd".into())),
                ("app/sub", &HostKind::Dir),
                ("app/sub/a", &HostKind::File),
                ("app/lib/x.so", &HostKind::File),
                ("app/lib/y.so", &HostKind::File),
            ]
        );
        assert_eq!(entries[1].mode, 0o700, "the spec's mode applies to files");
        assert_eq!((entries[1].uid, entries[1].gid), (1, 2));
    }

    #[test]
    fn globs_do_not_follow_symlinked_directories() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let outside = root.join("host-etc");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("shadow"), "root:secret").unwrap();
        std::fs::create_dir_all(root.join("dist/lib")).unwrap();
        std::fs::create_dir_all(root.join("dist/bin")).unwrap();
        std::fs::write(root.join("dist/bin/shadow"), "a program").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("dist/lib/vendor")).unwrap();
        std::os::unix::fs::symlink(root.join("dist"), root.join("dist/lib/loop")).unwrap();
        let entries = expand(&[spec(&root.join("dist/**/shadow"), "app")]).unwrap();
        let got: Vec<(&Path, &str)> = entries
            .iter()
            .map(|e| (e.src.as_path(), e.dst.as_str()))
            .collect();
        assert_eq!(
            got,
            [(root.join("dist/bin/shadow").as_path(), "app/shadow")]
        );
        // The link itself, when the pattern names it, is copied as a link.
        let entries = expand(&[spec(&root.join("dist/lib/*"), "app")]).unwrap();
        let got: Vec<(&str, &HostKind)> =
            entries.iter().map(|e| (e.dst.as_str(), &e.kind)).collect();
        assert_eq!(
            got,
            [
                (
                    "app/loop",
                    &HostKind::Symlink(root.join("dist").display().to_string())
                ),
                (
                    "app/vendor",
                    &HostKind::Symlink(outside.display().to_string())
                ),
            ]
        );
    }

    #[test]
    fn a_glob_that_matches_nothing_and_a_missing_file_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let e = expand(&[spec(&dir.path().join("*.none"), "x")]).unwrap_err();
        assert!(e.to_string().contains("matches nothing"), "{e}");
        let e = expand(&[spec(&dir.path().join("absent"), "x")]).unwrap_err();
        assert!(e.to_string().contains("absent"), "{e}");
    }
}
