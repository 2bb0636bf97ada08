//! Writing a finished tree out as a directory, as a runtime's unpacked rootfs would be: for
//! a debugging toolbox, or for an image's files to be looked at.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use bareboat_oci::unpack::{is_dir, make_parents, perms};

use super::{NodeKind, Rootfs};
use crate::Error;

impl Rootfs {
    /// Writes the tree the finished image shows into `dest`, a directory that must be
    /// empty or absent: directories, files with their content, symlinks and hard links,
    /// each with its mode, and, when `owners` is set (running as root), its owner.
    ///
    /// Nothing is written through a link: the tree never has a path under a symlink, paths
    /// are created parents first in a directory that started empty, each parent is checked
    /// to be a directory (not a link), and files are created new (`O_EXCL`, `O_NOFOLLOW`).
    pub fn materialize(&self, dest: &Path, owners: bool) -> Result<(), Error> {
        let io = |path: &str, error: io::Error| Error::Io {
            origin: format!("writing {} out to {}", path, dest.display()),
            error,
        };
        fs::create_dir_all(dest).map_err(|e| io("/", e))?;
        if fs::read_dir(dest).map_err(|e| io("/", e))?.next().is_some() {
            return Err(io(
                "/",
                io::Error::new(io::ErrorKind::AlreadyExists, "the directory is not empty"),
            ));
        }
        let mut paths: Vec<&String> = self.top.keys().collect();
        paths.sort();
        // Directories' modes are set last: a directory without write permission would stop
        // its own entries from being made.
        let mut dirs = Vec::new();
        // A hard link may sort before the file it names: links are made once all files are.
        let (links, paths): (Vec<&String>, Vec<&String>) = paths
            .into_iter()
            .partition(|p| matches!(self.get(p).map(|n| &n.kind), Some(NodeKind::Hardlink(_))));
        for path in paths.into_iter().chain(links) {
            let node = self.get(path).expect("a path of the tree has a node");
            let at = dest.join(path);
            make_parents(dest, path).map_err(|e| io(path, e))?;
            match &node.kind {
                NodeKind::Dir => {
                    fs::create_dir(&at).or_else(|e| match e.kind() {
                        // An implied parent made earlier.
                        io::ErrorKind::AlreadyExists if is_dir(&at) => Ok(()),
                        _ => Err(e),
                    })
                }
                NodeKind::File { offset, size, .. } => {
                    self.write_content(&at, *offset, *size, node.mode)
                }
                NodeKind::Symlink(target) => std::os::unix::fs::symlink(target, &at),
                NodeKind::Hardlink(target) => fs::hard_link(dest.join(target), &at),
            }
            .map_err(|e| io(path, e))?;
            if owners {
                std::os::unix::fs::lchown(&at, Some(node.uid), Some(node.gid))
                    .map_err(|e| io(path, e))?;
            }
            match node.kind {
                NodeKind::Dir => dirs.push((at, node.mode)),
                NodeKind::File { .. } => {
                    fs::set_permissions(&at, perms(node.mode)).map_err(|e| io(path, e))?
                }
                NodeKind::Symlink(_) | NodeKind::Hardlink(_) => {}
            }
        }
        for (at, mode) in dirs.into_iter().rev() {
            fs::set_permissions(&at, perms(mode)).map_err(|e| Error::Io {
                origin: format!("setting the mode of {}", at.display()),
                error: e,
            })?;
        }
        Ok(())
    }

    /// Creates the file `at` and copies its staged content into it.
    fn write_content(&self, at: &Path, offset: u64, size: u64, mode: u32) -> io::Result<()> {
        let (staged, start) = self.locate(offset)?;
        let mut from = File::open(staged)?;
        from.seek(SeekFrom::Start(start))?;
        let mut to = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode & 0o777)
            .custom_flags(libc::O_NOFOLLOW)
            .open(at)?;
        let copied = io::copy(&mut io::Read::take(from, size), &mut to)?;
        if copied != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("its staged content ends after {copied} of {size} bytes"),
            ));
        }
        Ok(())
    }
}
