//! The report `bareboat inspect` prints: an image's config, its layers with their sizes and
//! what made them, where its bytes are, its packages, what later layers waste of earlier
//! ones, and content repeated across layers.

use std::collections::{BTreeMap, HashMap};

use bareboat_oci::model::Image;
use serde::Serialize;

use crate::Error;
use crate::filesystem::{self, Filesystem, Kind, Limits, Waste};
use crate::packages::{self, Distribution, Package};

/// How many of the largest files and directories a report lists.
const LARGEST: usize = 10;

/// What an image's config says about running it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RunSummary {
    /// The user it runs as; empty for root.
    pub user: String,
    /// The entrypoint, an argument a string.
    pub entrypoint: Vec<String>,
    /// The command, or the arguments to the entrypoint.
    pub cmd: Vec<String>,
    /// The working directory; empty for `/`.
    pub workdir: String,
    /// The environment, as `NAME=value`.
    pub env: Vec<String>,
    /// The ports it says it listens on, as `80/tcp`.
    pub exposed_ports: Vec<String>,
    /// The config's labels.
    pub labels: BTreeMap<String, String>,
}

/// One layer, with what made it.
#[derive(Clone, Debug, Serialize)]
pub struct LayerReport {
    /// What reading it found.
    #[serde(flatten)]
    pub read: filesystem::LayerRead,
    /// The config history's `created_by` for it, if any.
    pub created_by: Option<String>,
}

/// A path and the bytes under it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Sized {
    /// The absolute path in the image.
    pub path: String,
    /// The bytes of the file, or of the regular files under the directory.
    pub size: u64,
}

/// The same content in files of several layers.
#[derive(Clone, Debug, Serialize)]
pub struct Repeat {
    /// The content's SHA256, in hex.
    pub sha256: String,
    /// The size of one copy.
    pub size: u64,
    /// `(layer, path)` of each copy.
    pub copies: Vec<(usize, String)>,
    /// What all copies but one cost.
    pub wasted: u64,
}

/// Everything `bareboat inspect` reports about one image.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The manifest's digest.
    pub image: String,
    /// The config's architecture, as OCI names it (`amd64`, `arm64`).
    pub architecture: String,
    /// The config's operating system: `linux`.
    pub os: String,
    /// When the config says the image was made, if it says.
    pub created: Option<String>,
    /// How the image runs.
    pub config: RunSummary,
    /// The layers' blobs, together.
    pub size: u64,
    /// The layers' tar streams, together.
    pub uncompressed_size: u64,
    /// The regular files the finished image shows.
    pub files: usize,
    /// Their bytes.
    pub file_bytes: u64,
    /// The layers, bottom first.
    pub layers: Vec<LayerReport>,
    /// The largest files the finished image shows, largest first.
    pub largest_files: Vec<Sized>,
    /// The directories with the most bytes under them, largest first.
    pub largest_dirs: Vec<Sized>,
    /// The packages its databases list, by name.
    pub packages: Vec<Package>,
    /// The distribution the image's `os-release` names.
    pub distribution: Option<Distribution>,
    /// Bytes of files that later layers overwrite or delete.
    pub wasted_bytes: u64,
    /// Each file that later layers overwrite or delete.
    pub waste: Vec<Waste>,
    /// Content that more than one layer carries, biggest cost first.
    pub repeated: Vec<Repeat>,
}

/// Reads the image and reports on it.
pub fn inspect(image: &Image) -> Result<Report, Error> {
    Ok(inspect_with_filesystem(image)?.0)
}

/// [`inspect`], with the filesystem it read, for `--tree`.
pub fn inspect_with_filesystem(image: &Image) -> Result<(Report, Filesystem), Error> {
    let fs = filesystem::read(image.source, &image.layers, Limits::default())?;
    Ok((report(image, &fs), fs))
}

/// The report on `image`, whose layers `fs` has read (kept or not).
pub fn report(image: &Image, fs: &Filesystem) -> Report {
    let config = &image.config;
    // History entries marked empty made no layer.
    let made_layers: Vec<Option<String>> = config
        .history()
        .iter()
        .flatten()
        .filter(|h| !h.empty_layer().unwrap_or(false))
        .map(|h| h.created_by().clone())
        .collect();
    let layers = fs
        .layers
        .iter()
        .enumerate()
        .map(|(i, read)| LayerReport {
            read: read.clone(),
            created_by: made_layers.get(i).cloned().flatten(),
        })
        .collect();
    let run = config.config().clone().unwrap_or_default();
    let summary = RunSummary {
        user: run.user().clone().unwrap_or_default(),
        entrypoint: run.entrypoint().clone().unwrap_or_default(),
        cmd: run.cmd().clone().unwrap_or_default(),
        workdir: run.working_dir().clone().unwrap_or_default(),
        env: run.env().clone().unwrap_or_default(),
        exposed_ports: run.exposed_ports().clone().unwrap_or_default(),
        labels: run
            .labels()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
    };
    let shown: Vec<(&String, u64)> = fs
        .view
        .iter()
        .filter(|(_, n)| n.kind == Kind::File)
        .map(|(p, n)| (p, n.size))
        .collect();
    let mut largest_files: Vec<Sized> = shown
        .iter()
        .map(|(p, size)| Sized {
            path: format!("/{p}"),
            size: *size,
        })
        .collect();
    largest_files.sort_by(|a, b| b.size.cmp(&a.size).then(a.path.cmp(&b.path)));
    largest_files.truncate(LARGEST);
    let mut dirs: HashMap<&str, u64> = HashMap::new();
    for (path, size) in &shown {
        let mut p = path.as_str();
        while let Some((parent, _)) = p.rsplit_once('/') {
            *dirs.entry(parent).or_default() += size;
            p = parent;
        }
    }
    let mut largest_dirs: Vec<Sized> = dirs
        .into_iter()
        .map(|(p, size)| Sized {
            path: format!("/{p}"),
            size,
        })
        .collect();
    largest_dirs.sort_by(|a, b| b.size.cmp(&a.size).then(a.path.cmp(&b.path)));
    largest_dirs.truncate(LARGEST);
    Report {
        image: image.descriptor.digest().to_string(),
        architecture: config.architecture().to_string(),
        os: config.os().to_string(),
        created: config.created().clone(),
        config: summary,
        size: fs.layers.iter().map(|l| l.size).sum(),
        uncompressed_size: fs.layers.iter().map(|l| l.uncompressed_size).sum(),
        files: shown.len(),
        file_bytes: shown.iter().map(|(_, s)| s).sum(),
        layers,
        largest_files,
        largest_dirs,
        packages: packages::packages(&fs.metadata),
        distribution: packages::distribution(&fs.metadata),
        wasted_bytes: fs.waste.iter().map(|w| w.size).sum(),
        waste: fs.waste.clone(),
        repeated: repeated(fs),
    }
}

/// Content found in files of more than one layer, biggest cost first.
pub(crate) fn repeated(fs: &Filesystem) -> Vec<Repeat> {
    let mut by_content: BTreeMap<[u8; 32], Vec<&filesystem::Content>> = BTreeMap::new();
    for c in fs.contents.iter().filter(|c| c.size > 0) {
        if let Some(sha256) = c.sha256 {
            by_content.entry(sha256).or_default().push(c);
        }
    }
    let mut out: Vec<Repeat> = by_content
        .into_iter()
        .filter_map(|(sha256, copies)| {
            let mut layers: Vec<usize> = copies.iter().map(|c| c.layer).collect();
            layers.dedup();
            (layers.len() > 1).then(|| Repeat {
                sha256: hex::encode(sha256),
                size: copies[0].size,
                wasted: copies[0].size * (layers.len() as u64 - 1),
                copies: copies
                    .iter()
                    .map(|c| (c.layer, format!("/{}", c.path)))
                    .collect(),
            })
        })
        .collect();
    out.sort_by(|a, b| b.wasted.cmp(&a.wasted).then(a.sha256.cmp(&b.sha256)));
    out
}
