//! What a rebuild needs besides a build: the files the image's own layer added, taken back
//! out of it and checked against the provenance, and, when the rebuilt image differs, the
//! first layer and the first entry in it that do.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use bareboat_oci::model::Image;
use bareboat_oci::tar_bounds::BoundedTar;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::Error;

/// The most entries, and bytes of the files the provenance names, taken out of a layer of
/// added files: a layer made to exhaust the disk is refused.
const MAX_ENTRIES: usize = 1_000_000;
const MAX_BYTES: u64 = 16 << 30;

/// What the history of an image's files layer starts with.
const FILES_LAYER: &str = "bareboat: files";

/// Writes the entries of `image`'s files layer (the spec's host files) under `into`, as
/// they are in the image: directories, the regular files `expected` names (by their paths in
/// the image) and symbolic links, with their modes and times. Each of those files must be
/// there, and match its SHA256. Links are made last, so that nothing is written through
/// one.
pub fn extract_added(
    image: &Image,
    expected: &BTreeMap<String, String>,
    into: &Path,
) -> Result<(), Error> {
    let refused = |reason: String| Error::Rebuild(reason);
    let Some(layer) = files_layer(image) else {
        return match expected.is_empty() {
            true => Ok(()),
            false => Err(refused(format!(
                "{} has no layer of added files, and its provenance names {} of them",
                image.descriptor.digest(),
                expected.len()
            ))),
        };
    };
    let mut found = BTreeMap::new();
    let mut directories = Vec::new();
    let mut links = Vec::new();
    let reader = image.open_layer(layer)?;
    let mut tar = tar::Archive::new(BoundedTar::new(reader));
    let io = |e: std::io::Error| refused(format!("reading the layer of added files: {e}"));
    let mut written = 0u64;
    for (count, entry) in tar.entries().map_err(io)?.enumerate() {
        if count >= MAX_ENTRIES {
            return Err(refused(format!(
                "the layer of added files has more than {MAX_ENTRIES} entries"
            )));
        }
        let mut entry = entry.map_err(io)?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some(relative) = inside(&name) else {
            return Err(refused(format!(
                "the layer of added files names {name:?}, outside the image"
            )));
        };
        let path = into.join(&relative);
        let image_path = format!("/{}", relative.display());
        let header = entry.header().clone();
        let mode = header.mode().map_err(io)? & 0o7777;
        let mtime = header.mtime().map_err(io)?;
        let kind = header.entry_type();
        let wanted = match kind {
            tar::EntryType::Regular => expected.contains_key(&image_path),
            tar::EntryType::Directory | tar::EntryType::Symlink => true,
            // Whiteouts, devices and hard links are not what a spec adds.
            _ => false,
        };
        if !wanted {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io_at(parent, e))?;
        }
        match kind {
            tar::EntryType::Directory => {
                std::fs::create_dir_all(&path).map_err(|e| io_at(&path, e))?;
                directories.push((path, mode, mtime));
            }
            tar::EntryType::Regular => {
                written = written.saturating_add(header.size().map_err(io)?);
                if written > MAX_BYTES {
                    return Err(refused(format!(
                        "the files the provenance names hold more than {MAX_BYTES} bytes"
                    )));
                }
                let mut out = std::fs::File::create(&path).map_err(|e| io_at(&path, e))?;
                let mut hasher = Sha256::new();
                let mut buf = vec![0u8; 64 << 10];
                loop {
                    let n = entry.read(&mut buf).map_err(io)?;
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                    std::io::Write::write_all(&mut out, &buf[..n]).map_err(|e| io_at(&path, e))?;
                }
                found.insert(image_path, hex::encode(hasher.finalize()));
                set_time(&path, mtime)?;
                set_mode(&path, mode)?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(io)?
                    .unwrap_or_default()
                    .into_owned();
                links.push((target, path, mtime));
            }
            _ => {}
        }
    }
    for (target, path, mtime) in links {
        std::os::unix::fs::symlink(&target, &path).map_err(|e| io_at(&path, e))?;
        set_time(&path, mtime)?;
    }
    // Last, since writing into a directory changes its time; the deepest first, so that a
    // directory made read-only is not written into after.
    for (path, mode, mtime) in directories.iter().rev() {
        set_time(path, *mtime)?;
        set_mode(path, *mode)?;
    }
    for (path, sha256) in expected {
        match found.get(path) {
            Some(actual) if actual == sha256 => {}
            Some(actual) => {
                return Err(refused(format!(
                    "the image's {path} has SHA256 {actual}, and its provenance records {sha256}"
                )));
            }
            None => {
                return Err(refused(format!(
                    "the provenance names the added file {path}, which the image's layer of added files lacks"
                )));
            }
        }
    }
    Ok(())
}

/// The index of `image`'s files layer, by its history.
fn files_layer(image: &Image) -> Option<usize> {
    let history = image.config.history().clone().unwrap_or_default();
    let layered = history.iter().filter(|h| h.empty_layer() != Some(true));
    layered
        .enumerate()
        .filter(|(_, h)| {
            h.created_by()
                .as_deref()
                .is_some_and(|c| c.starts_with(FILES_LAYER))
        })
        .map(|(i, _)| i)
        .last()
        .filter(|i| *i < image.layers.len())
}

/// `name`, a path in a layer, as a relative path that stays inside it.
fn inside(name: &str) -> Option<PathBuf> {
    let path = Path::new(name.trim_start_matches("./").trim_start_matches('/'));
    let normal = path.components().all(|c| matches!(c, Component::Normal(_)));
    (normal && !path.as_os_str().is_empty()).then(|| path.to_path_buf())
}

/// An I/O failure at `path`.
fn io_at(path: &Path, e: std::io::Error) -> Error {
    bareboat_apt::Error::io(path, e).into()
}

fn set_mode(path: &Path, mode: u32) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| io_at(path, e))
}

/// Makes every directory under `dir` writable again, so that it can be removed: the added
/// files came out with their own modes, which may deny that.
pub fn make_removable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            let path = entry.path();
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700));
            make_removable(&path);
        }
    }
}

/// Sets the time of `path` itself (a link's own, not what it points at), whatever its
/// mode.
fn set_time(path: &Path, mtime: u64) -> Result<(), Error> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| io_at(path, std::io::Error::other(e)))?;
    let secs = libc::timespec {
        tv_sec: mtime as libc::time_t,
        tv_nsec: 0,
    };
    let times = [secs, secs];
    // SAFETY: `c` is a NUL-terminated path and `times` two timespecs, as utimensat asks.
    let done = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    match done {
        0 => Ok(()),
        _ => Err(io_at(path, std::io::Error::last_os_error())),
    }
}

/// Where two images first differ.
#[derive(Debug, Serialize)]
pub struct Difference {
    /// The index of the first layer that differs, from the bottom.
    pub layer: usize,
    /// That layer's digest in each image (none when one image has fewer layers).
    pub digests: (Option<String>, Option<String>),
    /// What made it, as the image's history says.
    pub created_by: Option<String>,
    /// The first entry (in path order) that differs, and how.
    pub entry: Option<String>,
}

/// Where `built` first differs from `original`: the first layer whose digest differs, and
/// in it the first entry that differs; `None` when their layers are the same (their config
/// differs).
pub fn first_difference(original: &Image, built: &Image) -> Result<Option<Difference>, Error> {
    let count = original.layers.len().max(built.layers.len());
    let digest =
        |image: &Image, i: usize| (image.layers.get(i)).map(|l| l.descriptor.digest().to_string());
    let Some(layer) = (0..count).find(|&i| digest(original, i) != digest(built, i)) else {
        return Ok(None);
    };
    let history = original.config.history().clone().unwrap_or_default();
    let created_by = (history.iter().filter(|h| h.empty_layer() != Some(true)))
        .nth(layer)
        .and_then(|h| h.created_by().clone());
    let listed = |image: &Image| match layer < image.layers.len() {
        true => entries(image, layer),
        false => Ok(BTreeMap::new()),
    };
    let entry = first_entry(&listed(original)?, &listed(built)?);
    Ok(Some(Difference {
        layer,
        digests: (digest(original, layer), digest(built, layer)),
        created_by,
        entry,
    }))
}

/// What a layer holds, by path: kind, mode, owner, time, size, link target and content
/// SHA256.
fn entries(image: &Image, layer: usize) -> Result<BTreeMap<String, String>, Error> {
    let io = |e: std::io::Error| Error::Rebuild(format!("reading layer {layer}: {e}"));
    let mut out = BTreeMap::new();
    let mut tar = tar::Archive::new(BoundedTar::new(image.open_layer(layer)?));
    for (count, entry) in tar.entries().map_err(io)?.enumerate() {
        if count >= MAX_ENTRIES {
            return Err(Error::Rebuild(format!(
                "layer {layer} has more than {MAX_ENTRIES} entries"
            )));
        }
        let mut entry = entry.map_err(io)?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let h = entry.header().clone();
        let mut hasher = Sha256::new();
        std::io::copy(&mut entry, &mut hasher).map_err(io)?;
        let link = h
            .link_name()
            .ok()
            .flatten()
            .map(|l| l.display().to_string());
        let described = format!(
            "{:?} mode {:o} owner {}:{} mtime {} size {} link {} sha256 {}",
            h.entry_type(),
            h.mode().unwrap_or(0),
            h.uid().unwrap_or(0),
            h.gid().unwrap_or(0),
            h.mtime().unwrap_or(0),
            h.size().unwrap_or(0),
            link.unwrap_or_default(),
            hex::encode(hasher.finalize())
        );
        out.insert(name, described);
    }
    Ok(out)
}

/// The first path, in order, at which `a` and `b` differ, with both sides.
fn first_entry(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Option<String> {
    let paths = a
        .keys()
        .chain(b.keys())
        .collect::<std::collections::BTreeSet<_>>();
    paths.into_iter().find_map(|p| {
        let (x, y) = (a.get(p), b.get(p));
        (x != y).then(|| {
            let side = |s: Option<&String>| s.cloned().unwrap_or_else(|| "absent".into());
            format!("{p}: {} in the image, {} rebuilt", side(x), side(y))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bareboat_oci::digest::Digest;
    use bareboat_oci::layout::Layout;
    use oci_spec::image::MediaType;

    enum E {
        Dir,
        File(&'static [u8]),
        Link(&'static str),
    }

    /// An image in a new layout under `dir` whose one layer, its files layer, holds
    /// `entries`.
    fn image_of(dir: &Path, entries: &[(&str, E)]) -> Layout {
        let mut tar = tar::Builder::new(Vec::new());
        for (name, e) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_mtime(1_000_000);
            h.set_mode(0o751);
            match e {
                E::Dir => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_size(0);
                    tar.append_data(&mut h, name, std::io::empty()).unwrap();
                }
                E::File(bytes) => {
                    h.set_size(bytes.len() as u64);
                    // Set as the bytes are, since the tar crate refuses to write `..`.
                    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
                    h.set_cksum();
                    tar.append(&h, *bytes).unwrap();
                }
                E::Link(target) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_size(0);
                    tar.append_link(&mut h, name, target).unwrap();
                }
            }
        }
        let layer = tar.into_inner().unwrap();
        let layout = Layout::create(dir).unwrap();
        let blob = layout.put_json(MediaType::ImageLayer, &layer).unwrap();
        let config = serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [Digest::of(&layer).to_string()]},
            "history": [{"created_by": "bareboat: files /app"}],
        });
        let config = layout
            .put_json(MediaType::ImageConfig, config.to_string().as_bytes())
            .unwrap();
        let manifest = serde_json::json!({"schemaVersion": 2, "config": config, "layers": [blob]});
        let manifest = layout
            .put_json(MediaType::ImageManifest, manifest.to_string().as_bytes())
            .unwrap();
        layout.tag(&manifest, &["t".into()]).unwrap();
        layout
    }

    fn extract(
        dir: &Path,
        entries: &[(&str, E)],
        expected: &[(&str, &[u8])],
    ) -> Result<PathBuf, Error> {
        let layout = image_of(&dir.join("layout"), entries);
        let top = layout.resolve("t").unwrap();
        let image = Image::open(&layout, &top, "amd64").unwrap();
        let expected = (expected.iter())
            .map(|(p, b)| (p.to_string(), hex::encode(Sha256::digest(b))))
            .collect();
        let into = dir.join("files");
        extract_added(&image, &expected, &into).map(|()| into)
    }

    #[test]
    fn added_files_come_back_out_as_they_were_and_checked() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let entries = [
            ("app/", E::Dir),
            ("app/hello", E::File(b"hello\n")),
            ("app/other", E::File(b"not named\n")),
            ("app/link", E::Link("hello")),
        ];
        let into = extract(dir.path(), &entries, &[("/app/hello", b"hello\n")]).unwrap();
        let hello = std::fs::metadata(into.join("app/hello")).unwrap();
        assert_eq!(
            (hello.permissions().mode() & 0o7777, hello.mtime()),
            (0o751, 1_000_000)
        );
        assert_eq!(
            std::fs::read_link(into.join("app/link")).unwrap(),
            Path::new("hello")
        );
        assert_eq!(
            std::fs::metadata(into.join("app")).unwrap().mtime(),
            1_000_000
        );
        assert!(
            !into.join("app/other").exists(),
            "a file the provenance does not name"
        );

        let e = extract(
            &dir.path().join("b"),
            &entries,
            &[("/app/hello", b"other\n")],
        );
        assert!(
            e.unwrap_err()
                .to_string()
                .contains("its provenance records")
        );
        let e = extract(&dir.path().join("c"), &entries, &[("/app/gone", b"x")]);
        assert!(e.unwrap_err().to_string().contains("lacks"));
    }

    #[test]
    fn nothing_is_written_through_a_link_or_outside() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::create_dir(&victim).unwrap();
        let target: &'static str = Box::leak(victim.display().to_string().into_boxed_str());
        let through = [("app/l", E::Link(target)), ("app/l/file", E::File(b"x"))];
        let e = extract(dir.path(), &through, &[("/app/l/file", b"x")]);
        let err = format!("{:#}", e.unwrap_err());
        assert!(
            err.contains("File exists"),
            "a link over a directory: {err}"
        );
        assert!(!victim.join("file").exists());
        let outside = [("../escape", E::File(b"x"))];
        let e = extract(&dir.path().join("b"), &outside, &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("outside the image"), "{e}");
    }
}
