//! Rebasing: an image's own layers, unchanged, on another base. The old base's layers must
//! be the image's first; the new base must not install a package the image's own layers
//! record in `status.d`; and the image's programs must start on the new base's libraries
//! (the ABI guard). The image is then changed with [`bareboat_oci::mutate`].

use std::collections::BTreeSet;
use std::io::{self, Read};
use std::path::Path;

use bareboat_apt::dpkg::is_database;
use bareboat_apt::sources::Distribution;
use bareboat_oci::model::Image;
use bareboat_oci::mutate::Mutable;
use bareboat_oci::overlay::Limits;
use bareboat_rootfs::policy::Slicing;
use bareboat_rootfs::rootfs::{NodeKind, Rootfs};

use crate::Error;
use crate::base::{BASE_DIGEST, BASE_NAME, BaseImage};
use crate::{abi, content};

/// One platform's image, its old base and its new one.
pub struct Rebase<'a> {
    /// The image.
    pub image: &'a Image<'a>,
    /// The base it was built on.
    pub old: &'a BaseImage<'a>,
    /// Its layers as the old base's image lists them.
    pub old_image: &'a Image<'a>,
    /// The base it is put on.
    pub new: &'a BaseImage<'a>,
    /// Its layers as the new base's image lists them.
    pub new_image: &'a Image<'a>,
    /// The Debian architecture.
    pub arch: &'a str,
}

impl Rebase<'_> {
    /// The image on the new base, checked: its own layers are the same blobs, the base's
    /// are the new base's, and its config's history and `rootfs.diff_ids`, and its base
    /// annotations, say so.
    pub fn rebased(&self, scratch: &Path) -> Result<Mutable, Error> {
        let mut image = Mutable::of(self.image)?;
        let old = Mutable::of(self.old_image)?;
        image
            .rebase(&old, &Mutable::of(self.new_image)?)
            .map_err(|e| {
                Error::Rebase(format!(
                    "{e}: name the base it was built on with --old-base"
                ))
            })?;
        let own = &self.image.layers[old.layers.len()..];
        let (tree, first) = self.stacked(own, scratch)?;
        self.check_packages(&tree, first)?;
        self.check_abi(&tree, first, scratch)?;
        for (key, value) in self.new.annotations() {
            image.annotate(&key, &value);
        }
        Ok(image)
    }

    /// The image as it will be, stacked as runtimes stack it: the new base, and its own
    /// layers `own` over it, each checked against its digest as it streams; with the first
    /// of the tree's layers that is the image's own.
    fn stacked(
        &self,
        own: &[bareboat_oci::blob::Layer],
        scratch: &Path,
    ) -> Result<(Rootfs, usize), Error> {
        let setuid = globset::GlobSet::empty();
        let mut tree = Rootfs::new(scratch, Slicing::default(), setuid, Limits::BUILD)?;
        self.new.unpack(&mut tree)?;
        let first = tree.layer_count();
        for layer in own {
            let at = tree.push_layer();
            let origin = format!("layer {}", layer.descriptor.digest());
            let mut reader = self.image.source.open_layer(layer)?;
            let read = tree.add_image_layer(at, &origin, &mut reader);
            // Read to the end, so the blob's digest and diff_id are checked.
            let rest = io::copy(&mut reader, &mut io::sink());
            if let Some(damage) = reader.damage() {
                return Err(Error::Rebase(format!("{origin}: {damage}")));
            }
            read?;
            rest.map_err(|e| Error::Rebase(format!("{origin}: {e}")))?;
        }
        tree.seal()?;
        Ok((tree, first))
    }

    /// Refuses a new base that installs a package the image's own layers (those of `tree`
    /// from `first` on) record.
    fn check_packages(&self, tree: &Rootfs, first: usize) -> Result<(), Error> {
        let installed = self.new.installed()?;
        let base: BTreeSet<&str> = installed.iter().map(|p| p.name()).collect();
        let recorded: BTreeSet<&str> = (first..tree.layer_count())
            .flat_map(|l| tree.layer_paths(l))
            .filter(|path| is_database(path) && path.contains("status.d/"))
            .map(|path| path.rsplit('/').next().unwrap_or_default())
            .collect();
        let both: Vec<&str> = recorded.intersection(&base).copied().collect();
        match both.is_empty() {
            true => Ok(()),
            false => Err(Error::Rebase(format!(
                "the new base installs {}, which the image's own layers install too: the two would conflict",
                both.join(", ")
            ))),
        }
    }

    /// Refuses the new base when a program of the image's own layers (those of `tree` from
    /// `first` on) needs what the image as it will be lacks: a library, an interpreter, or
    /// a symbol version.
    fn check_abi(&self, tree: &Rootfs, first: usize, scratch: &Path) -> Result<(), Error> {
        let mut analysis = Vec::new();
        for path in (first..tree.layer_count()).flat_map(|l| tree.layer_paths(l)) {
            // The layer's own files: not what its links lead to in the base.
            let file = matches!(tree.get(path).map(|n| &n.kind), Some(NodeKind::File { .. }));
            let Some(content) = tree.open(path).filter(|_| file) else {
                continue;
            };
            let io_err = |e: io::Error| Error::Rebase(format!("/{path}: {e}"));
            let (mut content, _) = content.map_err(io_err)?;
            // Up to four bytes, however the stream hands them over.
            let mut head = Vec::with_capacity(4);
            (&mut content)
                .take(4)
                .read_to_end(&mut head)
                .map_err(io_err)?;
            if head != b"\x7fELF" {
                continue;
            }
            // Analysed from a file, mapped, as a host file is: programs can be large.
            let mut file = tempfile::NamedTempFile::new_in(scratch).map_err(io_err)?;
            io::Write::write_all(&mut file, &head).map_err(io_err)?;
            io::copy(&mut content, &mut file).map_err(io_err)?;
            if let Ok(a) = bareboat_elf::analyze(file.path(), path) {
                analysis.push(a);
            }
        }
        if analysis.is_empty() {
            return Ok(());
        }
        content::check_needs(tree, &analysis, self.arch)?;
        let release = release_of(tree);
        let mismatches = abi::check(tree, None, &analysis, self.arch, release);
        match mismatches.is_empty() {
            true => Ok(()),
            false => Err(Error::Abi(mismatches)),
        }
    }
}

/// The release a tree's os-release names, by its `VERSION_CODENAME`; trixie if none does.
fn release_of(tree: &Rootfs) -> Distribution {
    let text = tree
        .read("usr/lib/os-release")
        .or_else(|| tree.read("etc/os-release"));
    let text = String::from_utf8_lossy(&text.unwrap_or_default()).into_owned();
    let codename = text
        .lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|c| c.trim_matches('"').to_string());
    codename
        .and_then(|c| Distribution::parse(&c).ok())
        .unwrap_or(Distribution::DEFAULT)
}

/// The base an image names in its annotations: its reference and digest.
pub fn named_base(image: &Image) -> Option<(String, String)> {
    let annotations = image.manifest.annotations().clone().unwrap_or_default();
    Some((
        annotations.get(BASE_NAME)?.clone(),
        annotations.get(BASE_DIGEST)?.clone(),
    ))
}
