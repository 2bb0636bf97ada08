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
use bareboat_oci::tar_bounds::BoundedTar;
use bareboat_rootfs::policy::Slicing;
use bareboat_rootfs::rootfs::Rootfs;

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
        self.check_packages(own)?;
        self.check_abi(own, scratch)?;
        for (key, value) in self.new.annotations() {
            image.annotate(&key, &value);
        }
        Ok(image)
    }

    /// Refuses a new base that installs a package the image's own layers record.
    fn check_packages(&self, own: &[bareboat_oci::blob::Layer]) -> Result<(), Error> {
        let installed = self.new.installed()?;
        let base: BTreeSet<&str> = installed.iter().map(|p| p.name()).collect();
        let mut recorded = BTreeSet::new();
        self.each_file(own, |path, _| {
            if is_database(path) && path.contains("status.d/") {
                recorded.insert(path.rsplit('/').next().unwrap_or_default().to_string());
            }
            Ok(())
        })?;
        let both: Vec<&String> = recorded
            .iter()
            .filter(|p| base.contains(p.as_str()))
            .collect();
        match both.first() {
            None => Ok(()),
            Some(_) => Err(Error::Rebase(format!(
                "the new base installs {}, which the image's own layers install too: the two would conflict",
                both.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// Refuses the new base when a program of the image's own layers needs symbol versions
    /// its libraries lack.
    fn check_abi(&self, own: &[bareboat_oci::blob::Layer], scratch: &Path) -> Result<(), Error> {
        let mut analysis = Vec::new();
        self.each_file(own, |path, content| {
            // Up to four bytes, however the stream hands them over.
            let mut head = Vec::with_capacity(4);
            (&mut *content).take(4).read_to_end(&mut head)?;
            if head != b"\x7fELF" {
                return Ok(());
            }
            // Analysed from a file, mapped, as a host file is: programs can be large.
            let mut file = tempfile::NamedTempFile::new_in(scratch)?;
            io::Write::write_all(&mut file, &head)?;
            io::copy(content, &mut file)?;
            if let Ok(a) = bareboat_elf::analyze(file.path(), path) {
                analysis.push(a);
            }
            Ok(())
        })?;
        if analysis.is_empty() {
            return Ok(());
        }
        // The image as it will be: the new base, and its own layers over it, so that what
        // its programs need is looked for where the loader will look.
        let setuid = globset::GlobSet::empty();
        let mut tree = Rootfs::new(scratch, Slicing::default(), setuid, Limits::BUILD)?;
        self.new.unpack(&mut tree)?;
        for layer in own {
            let at = tree.push_layer();
            let origin = format!("layer {}", layer.descriptor.digest());
            let mut reader = self.image.source.open_layer(layer)?;
            tree.add_image_layer(at, &origin, &mut reader)?;
            io::copy(&mut reader, &mut io::sink())
                .map_err(|e| Error::Rebase(format!("{origin}: {e}")))?;
        }
        tree.seal()?;
        content::check_needs(&tree, &analysis, self.arch)?;
        let release = release_of(&tree);
        let mismatches = abi::check(&tree, &analysis, self.arch, release);
        match mismatches.is_empty() {
            true => Ok(()),
            false => Err(Error::Abi(mismatches)),
        }
    }

    /// Calls `visit` with each regular file of `layers` (its path, without a leading `/`,
    /// and its content), each layer checked against its digest as it streams.
    fn each_file(
        &self,
        layers: &[bareboat_oci::blob::Layer],
        mut visit: impl FnMut(&str, &mut dyn Read) -> io::Result<()>,
    ) -> Result<(), Error> {
        for layer in layers {
            let what = format!("layer {}", layer.descriptor.digest());
            let io_err = |e: io::Error| Error::Rebase(format!("{what}: {e}"));
            let mut reader = self.image.source.open_layer(layer)?;
            let mut tar = tar::Archive::new(BoundedTar::new(&mut reader));
            for entry in tar.entries().map_err(io_err)? {
                let mut entry = entry.map_err(io_err)?;
                if entry.header().entry_type() != tar::EntryType::Regular {
                    continue;
                }
                let path = String::from_utf8_lossy(&entry.path_bytes())
                    .trim_start_matches("./")
                    .trim_start_matches('/')
                    .to_string();
                visit(&path, &mut entry).map_err(io_err)?;
            }
            drop(tar);
            // Read to the end, so the blob's digest and diff_id are checked.
            io::copy(&mut reader, &mut io::sink()).map_err(io_err)?;
        }
        Ok(())
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
