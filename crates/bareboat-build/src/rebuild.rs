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

/// What the history of an image's files layer starts with.
const FILES_LAYER: &str = "bareboat: files";

/// Writes the entries of `image`'s files layer (the spec's host files) under `into`, as
/// they are in the image: directories, regular files and symbolic links, with their modes
/// and times. Each regular file that `expected` names (by its path in the image) must
/// match its SHA256, and each file `expected` names must be there.
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
    let reader = image.open_layer(layer)?;
    let mut tar = tar::Archive::new(BoundedTar::new(reader));
    let io = |e: std::io::Error| refused(format!("reading the layer of added files: {e}"));
    for entry in tar.entries().map_err(io)? {
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
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io_at(parent, e))?;
        }
        match header.entry_type() {
            tar::EntryType::Directory => {
                std::fs::create_dir_all(&path).map_err(|e| io_at(&path, e))?;
                directories.push((path, mode, mtime));
            }
            tar::EntryType::Regular => {
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
                set_mode_and_time(&path, mode, mtime)?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(io)?
                    .unwrap_or_default()
                    .into_owned();
                std::os::unix::fs::symlink(&target, &path).map_err(|e| io_at(&path, e))?;
            }
            // Whiteouts, devices and hard links are not what a spec adds.
            _ => {}
        }
    }
    // Last, since writing into a directory changes its time.
    for (path, mode, mtime) in directories.iter().rev() {
        set_mode_and_time(path, *mode, *mtime)?;
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

fn set_mode_and_time(path: &Path, mode: u32, mtime: u64) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| io_at(path, e))?;
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime);
    let file = std::fs::File::open(path).map_err(|e| io_at(path, e))?;
    file.set_modified(time).map_err(|e| io_at(path, e))
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
    for entry in tar.entries().map_err(io)? {
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
