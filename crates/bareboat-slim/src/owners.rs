//! Which of the image's Debian packages owns each path, and whether the image's copy is
//! still the package's: dpkg's file lists say who owns what, its md5sums files (and the
//! `Conffiles` of a package's paragraph) what each regular file held when it was
//! installed. Paths are where the entries are in the image, parents resolved: a list
//! written before merged /usr names `/lib/...`, which the image's own links lead to
//! `usr/lib/...`; a listed link is the link, not what it leads to.

use std::collections::BTreeMap;
use std::io;

use bareboat_apt::dpkg::{self, Database, Installed};
use bareboat_inspect::filesystem::{Kept, Kind};
use md5::{Digest, Md5};

use crate::needs::entry_path;

/// The largest list of a package's files read.
const MAX_FILE_LIST: u64 = 64 << 20;

/// Where a kept path of the image comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin<'a> {
    /// A package's, as the package ships it (or a directory or link it lists).
    Package(&'a Installed),
    /// A package's file that the image holds with other content than the package's.
    Modified(&'a Installed),
    /// No package's.
    Unowned,
}

/// The image's installed packages, and what each owns.
#[derive(Debug, Default)]
pub struct Owners {
    /// The installed packages, as the image's database lists them.
    pub packages: Vec<Installed>,
    /// Each owned real path, with its package's index in `packages`.
    owner: BTreeMap<String, usize>,
    /// The MD5 each owned regular file had when its package installed it.
    sums: BTreeMap<String, [u8; 16]>,
}

impl Owners {
    /// Reads the image's dpkg database: its packages, their file lists and sums. An image
    /// without one (another distribution, or none) owns nothing.
    pub fn read(image: &Kept) -> io::Result<Owners> {
        let files = image
            .metadata
            .iter()
            .map(|(p, b)| (p.as_str(), b.as_slice()));
        let packages = Database::read(files).packages;
        let mut owners = Owners {
            packages,
            ..Owners::default()
        };
        let bad =
            |e: bareboat_apt::Error| io::Error::new(io::ErrorKind::InvalidData, e.to_string());
        for (i, package) in owners.packages.iter().enumerate() {
            let [info, info_arch, status_d] =
                dpkg::md5sums_paths(&package.name, &package.architecture);
            let lists = [
                format!("var/lib/dpkg/info/{}.list", package.name),
                format!(
                    "var/lib/dpkg/info/{}:{}.list",
                    package.name, package.architecture
                ),
                info.clone(),
                info_arch.clone(),
                status_d.clone(),
            ];
            for list in &lists {
                let Some(bytes) = read_file(image, list) else {
                    continue;
                };
                for path in dpkg::owned_paths(list, &bytes).map_err(bad)? {
                    if let Some(real) = entry_path(image, &path) {
                        owners.owner.entry(real).or_insert(i);
                    }
                }
            }
            for list in [&info, &info_arch, &status_d] {
                let Some(bytes) = read_file(image, list) else {
                    continue;
                };
                for (path, sum) in dpkg::md5sums(&bytes, list).map_err(bad)? {
                    if let Some(real) = entry_path(image, &path) {
                        owners.sums.entry(real).or_insert(sum);
                    }
                }
            }
            for (path, sum) in dpkg::conffiles(&package.paragraph) {
                if let Some(real) = entry_path(image, &path) {
                    owners.owner.entry(real.clone()).or_insert(i);
                    owners.sums.entry(real).or_insert(sum);
                }
            }
        }
        Ok(owners)
    }

    /// The paths each package owns, in the order of `packages`.
    pub fn paths_by_package(&self) -> Vec<Vec<&str>> {
        let mut out = vec![Vec::new(); self.packages.len()];
        for (path, &i) in &self.owner {
            out[i].push(path.as_str());
        }
        out
    }

    /// Whether a package lists the real path `path`.
    pub fn owns(&self, path: &str) -> bool {
        self.owner.contains_key(path)
    }

    /// Where the image's real path `path` comes from: a regular file is its package's only
    /// when its content has the MD5 the package recorded; one without a record is taken as
    /// modified, since nothing tells it from the package's.
    pub fn origin(&self, image: &Kept, path: &str) -> io::Result<Origin<'_>> {
        let Some(&i) = self.owner.get(path) else {
            return Ok(Origin::Unowned);
        };
        let package = &self.packages[i];
        let Some(node) = image.view.get(path) else {
            return Ok(Origin::Unowned);
        };
        if !matches!(node.kind, Kind::File | Kind::Hardlink(_)) {
            return Ok(Origin::Package(package));
        }
        let (Some(sum), Some(stored)) = (self.sums.get(path), node.content) else {
            return Ok(Origin::Modified(package));
        };
        let mut hasher = Md5::new();
        io::copy(&mut image.view.open(&stored)?, &mut HashWriter(&mut hasher))?;
        Ok(match hasher.finalize().as_slice() == sum {
            true => Origin::Package(package),
            false => Origin::Modified(package),
        })
    }
}

/// A regular file of the image, read whole within [`MAX_FILE_LIST`].
fn read_file(image: &Kept, path: &str) -> Option<Vec<u8>> {
    let node = image.view.get(path)?;
    (node.kind == Kind::File).then_some(())?;
    image.view.read(path, MAX_FILE_LIST)
}

/// Feeds what is written to a hasher.
struct HashWriter<'a>(&'a mut Md5);

impl io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
