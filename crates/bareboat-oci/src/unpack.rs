//! Writing what a stack keeps out as a directory, as a runtime's unpacked rootfs would be:
//! for a probe that runs an image. And the one rule for making a path's parents, which
//! every writer of a tree into a directory follows: nothing is made through a link.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::overlay::Kind;
use crate::stack::Stack;

impl Stack {
    /// Writes the finished image this stack shows into `dest`, a directory that must be
    /// empty: directories, regular files with their kept content (a hard link as a copy),
    /// symlinks, each with its mode and, when `owners` is set (running as root), its owner
    /// and group. Device nodes and pipes are left out: a runtime makes its own `/dev`.
    ///
    /// Paths are made parents first ([`make_parents`]), files new (`O_EXCL`,
    /// `O_NOFOLLOW`), and directories' modes are set last, deepest first.
    pub fn unpack(&self, dest: &Path, owners: bool) -> io::Result<()> {
        if fs::read_dir(dest)?.next().is_some() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} is not empty", dest.display()),
            ));
        }
        let mut dirs = Vec::new();
        for (path, node) in self.iter() {
            let at = dest.join(path);
            let failed = |e: io::Error| io::Error::new(e.kind(), format!("writing /{path}: {e}"));
            make_parents(dest, path).map_err(failed)?;
            match (&node.kind, node.content) {
                (Kind::Dir, _) => match fs::create_dir(&at) {
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists && is_dir(&at) => Ok(()),
                    made => made,
                }
                .map(|()| dirs.push((at.clone(), node.mode))),
                (Kind::Symlink(target), _) => std::os::unix::fs::symlink(target, &at),
                (Kind::File | Kind::Hardlink(_), Some(stored)) => {
                    let mut file = OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(node.mode & 0o777)
                        .custom_flags(libc::O_NOFOLLOW)
                        .open(&at)?;
                    io::copy(&mut self.open(&stored)?, &mut file).map(drop)
                }
                (Kind::File | Kind::Hardlink(_), None) => Err(io::Error::other(
                    "its content was not kept: the stack keeps no contents, or ran out of room",
                )),
                _ => continue,
            }
            .map_err(failed)?;
            if owners {
                let (uid, gid) = (node.uid.try_into().ok(), node.gid.try_into().ok());
                std::os::unix::fs::lchown(&at, uid, gid).map_err(failed)?;
            }
            if !matches!(node.kind, Kind::Dir | Kind::Symlink(_)) {
                fs::set_permissions(&at, perms(node.mode)).map_err(failed)?;
            }
        }
        for (at, mode) in dirs.into_iter().rev() {
            fs::set_permissions(&at, perms(mode))?;
        }
        Ok(())
    }
}

/// Makes the directories above `path` under `dest` that do not exist (the tree implies
/// them), refusing any that is not a directory: nothing is made through a link.
pub fn make_parents(dest: &Path, path: &str) -> io::Result<()> {
    let mut at = dest.to_path_buf();
    let parents: Vec<&str> = path.split('/').collect();
    for part in &parents[..parents.len() - 1] {
        at.push(part);
        match fs::symlink_metadata(&at) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{} is not a directory", at.display()),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => fs::create_dir(&at)?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Whether `path` is a directory, not a link to one.
pub fn is_dir(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
}

/// A mode's permission bits, setuid, setgid and sticky included, as permissions to set.
pub fn perms(mode: u32) -> fs::Permissions {
    fs::Permissions::from_mode(mode & 0o7777)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::{Keep, Store};

    #[test]
    fn a_kept_stack_is_written_out_and_nothing_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let mut tar = tar::Builder::new(Vec::new());
        let mut add = |path: &str, kind: tar::EntryType, target: &str, body: &[u8], mode| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(mode);
            h.set_size(body.len() as u64);
            if target.is_empty() {
                tar.append_data(&mut h, path, body).unwrap();
            } else {
                tar.append_link(&mut h, path, target).unwrap();
            }
        };
        add("usr/bin/", tar::EntryType::Directory, "", b"", 0o755);
        add(
            "usr/bin/prog",
            tar::EntryType::Regular,
            "",
            b"#!/bin/true\n",
            0o4755,
        );
        add("bin", tar::EntryType::Symlink, "usr/bin", b"", 0o777);
        add(
            "usr/bin/again",
            tar::EntryType::Link,
            "usr/bin/prog",
            b"",
            0o755,
        );
        add("secret/", tar::EntryType::Directory, "", b"", 0o700);
        add("secret/key", tar::EntryType::Regular, "", b"k", 0o600);
        let bytes = tar.into_inner().unwrap();
        let mut stack = Stack::keeping(Store::new(dir.path(), 1 << 20).unwrap());
        let limits = crate::overlay::Limits::IMAGE;
        (stack.apply(&bytes[..], 0, &limits, &mut Keep(|_: &str, _| true))).unwrap();
        let out = dir.path().join("out");
        fs::create_dir(&out).unwrap();
        stack.unpack(&out, false).unwrap();
        assert_eq!(
            fs::read(out.join("usr/bin/prog")).unwrap(),
            b"#!/bin/true\n"
        );
        assert_eq!(
            fs::read(out.join("usr/bin/again")).unwrap(),
            b"#!/bin/true\n"
        );
        let mode = |p: &str| {
            fs::symlink_metadata(out.join(p))
                .unwrap()
                .permissions()
                .mode()
        };
        assert_eq!(mode("usr/bin/prog") & 0o7777, 0o4755);
        assert_eq!(mode("secret") & 0o7777, 0o700);
        assert_eq!(
            fs::read_link(out.join("bin")).unwrap(),
            Path::new("usr/bin")
        );
        // A second time, into what is not empty, is refused.
        assert_eq!(
            stack.unpack(&out, false).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        // A path whose parent is a link on disk is never written through.
        let sneaky = dir.path().join("sneaky");
        fs::create_dir(&sneaky).unwrap();
        std::os::unix::fs::symlink(dir.path(), sneaky.join("usr")).unwrap();
        let err = format!("{:#}", make_parents(&sneaky, "usr/bin/prog").unwrap_err());
        assert!(err.contains("usr is not a directory"), "{err}");
    }
}
