//! One engine for reading a layer's tar stream as an overlay filesystem stacks it, with
//! the checks every reader of a layer needs, made once: an entry cap, size caps, one path
//! normaliser (no `..`, no NUL, nothing longer than a runtime can create), link targets,
//! long names and PAX records bounded ([`crate::tar_bounds`]), and whiteouts told from
//! entries. What an entry means is left to a [`Visitor`]: the build's tree and inspect's
//! view are two of them. A visitor applies the [`Change`]s it is handed to its own tree;
//! how a parent that is a symlink is treated is its choice (a package may not write
//! through one, and inspect resolves one as runtimes do).

use std::io::{self, Read};

use crate::layer::Whiteout;
use crate::tar_bounds::BoundedTar;

/// The longest path an entry may have: Linux's PATH_MAX, beyond which no runtime can
/// create it. It also keeps the parents an entry implies (each kept by its whole path) from
/// costing the square of its depth.
pub const MAX_PATH: usize = 4096;

/// Caps on one layer (or one package's data archive) that stop a decompression bomb.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The most entries it may hold.
    pub max_entries: u64,
    /// The largest single file.
    pub max_file_size: u64,
    /// The most bytes its files may hold together.
    pub max_size: u64,
}

impl Limits {
    /// For the layers of any image, as inspect reads them: files may be as large as a
    /// layer, which the caller bounds by what it decompresses to.
    pub const IMAGE: Limits = Limits {
        max_entries: 4 << 20,
        max_file_size: u64::MAX,
        max_size: u64::MAX,
    };

    /// For what a build unpacks: a package's data, or a base image's layer.
    pub const BUILD: Limits = Limits {
        max_entries: 1 << 20,
        max_file_size: 2 << 30,
        max_size: 8 << 30,
    };
}

/// For each layer of an image, bottom first, where it is listed again above, if it is.
/// Such a layer need not be read: its higher copy writes again every path it writes and
/// deletes again what it deletes, and whatever lies between stacks under that copy alike,
/// so the image's files are the same without the lower one. A blob listed many times is
/// then read once, whatever the manifest repeats.
pub fn listed_again<T: Eq + std::hash::Hash>(layers: &[T]) -> Vec<Option<usize>> {
    let last: std::collections::HashMap<&T, usize> =
        layers.iter().enumerate().map(|(i, l)| (l, i)).collect();
    layers
        .iter()
        .enumerate()
        .map(|(i, l)| Some(last[l]).filter(|&j| j != i))
        .collect()
}

/// What an entry is.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file.
    File,
    /// A symbolic link to this target, as the entry gives it.
    Symlink(String),
    /// A path earlier in the same layer, as its entry names it (not normalised).
    Hardlink(String),
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A named pipe.
    Fifo,
    /// A kind of entry tar has, but no filesystem a runtime unpacks to.
    Other,
}

/// An entry of a layer, checked.
pub struct Entry<'a> {
    /// Its name as the layer gives it, for messages.
    pub raw: String,
    /// Its name [`normalize`]d.
    pub path: String,
    /// What it is.
    pub kind: Kind,
    /// Permission bits, setuid, setgid and sticky.
    pub mode: u32,
    /// Its owner's user id.
    pub uid: u64,
    /// Its group id.
    pub gid: u64,
    /// Its modification time, in seconds since the epoch.
    pub mtime: u64,
    /// A regular file's size (for a sparse file, its apparent size), else 0.
    pub size: u64,
    /// A GNU sparse file, whose holes read as zeros: its apparent size may be far beyond
    /// what the layer stores.
    pub sparse: bool,
    /// The first header field that did not parse, and so reads as 0.
    pub malformed: Option<&'static str>,
    /// A regular file's content.
    pub content: &'a mut dyn Read,
}

/// What one entry of a layer does to the layers below it.
pub enum Change<'a> {
    /// `DIR/.wh.NAME`: the path `DIR/NAME`, and everything under it, deleted.
    Delete {
        /// The whiteout's name as the layer gives it.
        raw: String,
        /// The path deleted, normalised.
        path: String,
    },
    /// `DIR/.wh..wh..opq`: everything under `DIR` deleted, but not `DIR` itself.
    Empty {
        /// The whiteout's name as the layer gives it.
        raw: String,
        /// The directory emptied, normalised.
        dir: String,
    },
    /// An entry that puts something at its path.
    Put(Entry<'a>),
}

/// Why the engine refused a layer: `entry` is the entry's name as the layer gives it, or
/// empty when the stream itself is at fault.
#[derive(Debug)]
pub struct Refusal {
    /// The entry's name as the layer gives it; empty when the stream is at fault.
    pub entry: String,
    /// Why it was refused.
    pub reason: String,
}

impl Refusal {
    fn of(entry: &str, reason: String) -> Refusal {
        Refusal {
            entry: entry.to_string(),
            reason,
        }
    }
}

/// What a reader of layers does with each change, in the layer's order.
pub trait Visitor {
    /// The visitor's error, which a refusal of the engine's converts into.
    type Error: From<Refusal>;
    /// Applies one change; an error stops the reading of the layer.
    fn visit(&mut self, change: Change<'_>) -> Result<(), Self::Error>;
}

/// What reading a layer found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// How many entries it has, whiteouts included.
    pub entries: u64,
    /// The bytes of its regular files.
    pub file_bytes: u64,
}

/// Reads the tar stream `layer` entry by entry, within `limits`, and hands each change to
/// `visitor`. The stream is read only as far as its last entry: a caller that checks its
/// digest reads the rest.
pub fn apply<R: Read, V: Visitor>(
    layer: R,
    limits: &Limits,
    visitor: &mut V,
) -> Result<Stats, V::Error> {
    let mut archive = tar::Archive::new(BoundedTar::new(layer));
    let stream = |e: io::Error| Refusal::of("", e.to_string());
    let mut stats = Stats::default();
    for entry in archive.entries().map_err(stream)? {
        let mut entry = entry.map_err(stream)?;
        stats.entries += 1;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let refuse = |reason: String| Refusal::of(&raw, reason);
        if stats.entries > limits.max_entries {
            return Err(refuse(format!(
                "more than {} entries: refused as a decompression bomb",
                limits.max_entries
            ))
            .into());
        }
        let path = normalize(&raw).map_err(refuse)?;
        if path.is_empty() {
            continue;
        }
        match Whiteout::of(&path) {
            Some(Whiteout::Path(path)) => visitor.visit(Change::Delete { raw, path })?,
            Some(Whiteout::Opaque(dir)) => visitor.visit(Change::Empty { raw, dir })?,
            None => {
                let checked = check(&mut entry, raw, path, limits, &mut stats)?;
                visitor.visit(Change::Put(checked))?;
            }
        }
    }
    Ok(stats)
}

/// An entry's kind, metadata and size, checked against `limits` and counted in `stats`.
fn check<'a, R: Read>(
    entry: &'a mut tar::Entry<'_, R>,
    raw: String,
    path: String,
    limits: &Limits,
    stats: &mut Stats,
) -> Result<Entry<'a>, Refusal> {
    let header = entry.header();
    let refuse = |reason: String| Refusal::of(&raw, reason);
    // A link without a target reads as one to "": any image is read, and a reader that
    // makes links refuses it.
    let link = || {
        let target = entry.link_name_bytes().unwrap_or_default();
        String::from_utf8_lossy(&target).into_owned()
    };
    let entry_type = header.entry_type();
    let kind = match entry_type {
        tar::EntryType::Directory => Kind::Dir,
        tar::EntryType::Symlink => Kind::Symlink(link()),
        tar::EntryType::Link => Kind::Hardlink(link()),
        tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
            Kind::File
        }
        tar::EntryType::Char => Kind::CharDevice,
        tar::EntryType::Block => Kind::BlockDevice,
        tar::EntryType::Fifo => Kind::Fifo,
        _ => Kind::Other,
    };
    let mut size = 0;
    if kind == Kind::File {
        size = entry.size();
        stats.file_bytes = stats.file_bytes.saturating_add(size);
        if size > limits.max_file_size {
            return Err(refuse(format!(
                "{size} bytes is past the {}-byte cap on a file: refused as a decompression bomb",
                limits.max_file_size
            )));
        }
        if stats.file_bytes > limits.max_size {
            return Err(refuse(format!(
                "the files pass {} bytes in all: refused as a decompression bomb",
                limits.max_size
            )));
        }
    }
    // Odd metadata reads as 0, not as an error: any image is read, and a reader that
    // keeps metadata refuses it.
    let (mode, uid, gid, mtime) = (header.mode(), header.uid(), header.gid(), header.mtime());
    let malformed = [
        ("mode", mode.is_err()),
        ("uid", uid.is_err()),
        ("gid", gid.is_err()),
        ("mtime", mtime.is_err()),
    ]
    .into_iter()
    .find_map(|(field, bad)| bad.then_some(field));
    let (mode, uid, gid, mtime) = (
        mode.unwrap_or_default() & 0o7777,
        uid.unwrap_or_default(),
        gid.unwrap_or_default(),
        mtime.unwrap_or_default(),
    );
    Ok(Entry {
        raw,
        path,
        kind,
        mode,
        uid,
        gid,
        mtime,
        size,
        sparse: entry_type.is_gnu_sparse(),
        malformed,
        content: entry,
    })
}

/// A tar entry's name as a clean path relative to the root (no leading `./` or `/`, no
/// trailing `/`): runtimes unpack an absolute name under the root too. A name that climbs
/// out of the root with `..`, holds a NUL or is longer than [`MAX_PATH`] is refused.
pub fn normalize(raw: &str) -> Result<String, String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("'..' leads out of the image's root: refused".into()),
            p if p.contains('\0') => return Err("a NUL in a name is refused".into()),
            p => parts.push(p),
        }
    }
    let path = parts.join("/");
    if path.len() > MAX_PATH {
        return Err(format!(
            "a path of {} bytes is longer than {MAX_PATH}, which no runtime can create: refused",
            path.len()
        ));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bareboat_testkit::tar_of;

    #[test]
    fn names_are_normalised_and_escapes_refused() {
        assert_eq!(normalize("./usr/bin/").unwrap(), "usr/bin");
        assert_eq!(normalize("/etc//passwd").unwrap(), "etc/passwd");
        assert_eq!(normalize("./").unwrap(), "");
        assert!(normalize("usr/../../etc").unwrap_err().contains("'..'"));
        assert!(normalize("a\0b").unwrap_err().contains("NUL"));
        let deep = "d/".repeat(MAX_PATH / 2) + "f";
        assert!(normalize(&deep).unwrap_err().contains("longer than 4096"));
    }

    /// Records each change as a line.
    #[derive(Default)]
    struct Log(Vec<String>);

    impl Visitor for Log {
        type Error = Refusal;
        fn visit(&mut self, change: Change<'_>) -> Result<(), Refusal> {
            self.0.push(match change {
                Change::Delete { path, .. } => format!("delete {path}"),
                Change::Empty { dir, .. } => format!("empty {dir}"),
                Change::Put(e) => {
                    let mut content = String::new();
                    e.content.read_to_string(&mut content).unwrap();
                    format!("{:?} {} {content}", e.kind, e.path)
                }
            });
            Ok(())
        }
    }

    #[test]
    fn whiteouts_are_told_from_entries_and_caps_apply() {
        let tar = tar_of(&[
            ("./etc/.wh.motd", b""),
            ("usr/.wh..wh..opq", b""),
            ("etc/hosts", b"127.0.0.1"),
        ]);
        let mut log = Log::default();
        let stats = apply(&tar[..], &Limits::IMAGE, &mut log).unwrap();
        assert_eq!(
            log.0,
            ["delete etc/motd", "empty usr", "File etc/hosts 127.0.0.1"]
        );
        assert_eq!(
            stats,
            Stats {
                entries: 3,
                file_bytes: 9
            }
        );

        let tight = Limits {
            max_entries: 2,
            ..Limits::IMAGE
        };
        let e = apply(&tar[..], &tight, &mut Log::default()).unwrap_err();
        assert!(e.reason.contains("more than 2 entries"), "{e:?}");
        let small = Limits {
            max_file_size: 4,
            ..Limits::IMAGE
        };
        let e = apply(&tar[..], &small, &mut Log::default()).unwrap_err();
        assert_eq!(e.entry, "etc/hosts");
        assert!(e.reason.contains("decompression bomb"), "{e:?}");
    }

    #[test]
    fn a_layer_listed_again_is_read_at_its_last_listing() {
        assert_eq!(
            listed_again(&["a", "b", "a", "c", "a", "b"]),
            [Some(4), Some(5), Some(4), None, None, None]
        );
        assert_eq!(listed_again::<&str>(&[]), []);
    }
}
