//! SLSA provenance v1 of a build, and what a rebuild reads back from it.
//!
//! The predicate records what is needed to build the same image again:
//! - `externalParameters`: what was asked for (the spec, as the command line named it, with
//!   its text when it is a file, and the application's options), the lockfile's text, and
//!   the outputs;
//! - `internalParameters`: `SOURCE_DATE_EPOCH`, the compression and the layer budget;
//! - `resolvedDependencies`: every `.deb` by its URL and SHA256, each source's signed
//!   InRelease by its SHA256, the base image by its digest, and every added file by its
//!   path in the image and SHA256 (annotated with its architecture);
//! - `runDetails`: bareboat as the builder, its version, and the run's id and times.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use bareboat_apt::lockfile::Lockfile;
use bareboat_apt::release::format_rfc3339;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::build::{BuildOptions, BuiltImage};
use crate::pipeline::BaseReport;

/// The build type of bareboat's provenance, versioned.
pub const BUILD_TYPE: &str = "https://github.com/bareboat-dev/bareboat/build-types/image/v1";

/// The builder that bareboat's provenance names.
pub const BUILDER_ID: &str = "https://github.com/bareboat-dev/bareboat";

/// The resolved dependency annotation that says what it is: [`DEB`], [`INRELEASE`],
/// [`BASE`] or [`ADDED_FILE`].
const KIND: &str = "bareboatKind";
const DEB: &str = "deb";
const INRELEASE: &str = "InRelease";
const BASE: &str = "base image";
const ADDED_FILE: &str = "added file";

/// The resolved dependency annotation that gives an added file's architecture.
const ADDED_FILE_ARCH: &str = "addedFileArch";

/// A build, as its provenance records it.
pub struct Provenance<'a> {
    /// What was asked for, from the command line.
    pub request: &'a Value,
    /// The lock built from.
    pub lock: &'a Lockfile,
    /// The outputs written.
    pub outputs: &'a [String],
    /// How it was built.
    pub options: &'a BuildOptions,
    /// The base image, if any.
    pub base: Option<&'a BaseReport>,
    /// Each platform's image, with the added files' digests.
    pub images: &'a [BuiltImage],
    /// When the build started.
    pub started: SystemTime,
    /// The run's id.
    pub invocation: &'a str,
}

impl Provenance<'_> {
    /// The SLSA provenance v1 predicate, for a build that finished at `finished`.
    pub fn predicate(&self, finished: SystemTime) -> Value {
        let Provenance {
            request,
            lock,
            outputs,
            options,
            ..
        } = self;
        json!({
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "request": request,
                    "lockfile": lock.to_toml(),
                    "outputs": outputs,
                },
                "internalParameters": {
                    "SOURCE_DATE_EPOCH": options.source_date_epoch,
                    "compression": options.compression.to_string(),
                    "maxLayers": options.max_layers,
                },
                "resolvedDependencies": self.dependencies(),
            },
            "runDetails": {
                "builder": {
                    "id": BUILDER_ID,
                    "version": {"bareboat": env!("CARGO_PKG_VERSION")},
                },
                "metadata": {
                    "invocationId": self.invocation,
                    "startedOn": rfc3339(self.started),
                    "finishedOn": rfc3339(finished),
                },
            },
        })
    }

    /// Every `.deb` (once), each source's InRelease, the base image and the added files.
    fn dependencies(&self) -> Vec<Value> {
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for p in &self.lock.packages {
            let uri = deb_uri(self.lock, p);
            if !seen.insert((uri.clone(), &p.sha256)) {
                continue;
            }
            out.push(json!({
                "uri": uri,
                "digest": {"sha256": p.sha256},
                "name": p.filename.rsplit('/').next().unwrap_or(&p.filename),
                "annotations": {KIND: DEB},
            }));
        }
        for s in &self.lock.sources {
            if let Some(hash) = &s.inrelease_sha256 {
                out.push(json!({
                    "uri": format!("{}/dists/{}/InRelease", s.url.trim_end_matches('/'), s.suite),
                    "digest": {"sha256": hash},
                    "annotations": {KIND: INRELEASE},
                }));
            }
        }
        if let Some(base) = self.base {
            out.push(json!({
                "uri": base_uri(&base.name),
                "digest": {"sha256": base.digest.trim_start_matches("sha256:")},
                "annotations": {KIND: BASE},
            }));
        }
        for image in self.images {
            for f in image.sbom.iter().flat_map(|s| &s.files) {
                out.push(json!({
                    "name": format!("/{}", f.path.trim_start_matches('/')),
                    "digest": {"sha256": f.sha256},
                    "annotations": {KIND: ADDED_FILE, ADDED_FILE_ARCH: image.arch},
                }));
            }
        }
        out
    }
}

/// Where the lock's package `p` is downloaded from.
fn deb_uri(lock: &Lockfile, p: &bareboat_apt::lockfile::LockedPackage) -> String {
    let url = lock.source_of(p).map(|s| s.url.trim_end_matches('/'));
    format!("{}/{}", url.unwrap_or_default(), p.filename)
}

/// A base image's name (a registry reference, `oci:DIR:TAG`, or an archive's path) as a
/// URI.
fn base_uri(name: &str) -> String {
    if name.starts_with("oci:") {
        name.to_string()
    } else if Path::new(name).is_file() {
        format!("file://{name}")
    } else {
        format!("docker://{name}")
    }
}

/// RFC 3339 in UTC, to the second.
fn rfc3339(t: SystemTime) -> String {
    format_rfc3339(t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
}

/// What a rebuild reads back from a provenance predicate.
pub struct Recorded {
    /// What was asked for, from the command line.
    pub request: Value,
    /// The lock built from, checked against the resolved dependencies.
    pub lock: Lockfile,
    /// `SOURCE_DATE_EPOCH`.
    pub source_date_epoch: Option<u64>,
    /// The compression, as `--compression` names it.
    pub compression: String,
    /// The layer budget.
    pub max_layers: usize,
    /// The SHA256 of each InRelease the build's sources were locked against.
    pub inreleases: Vec<String>,
    /// The added files by architecture, then path in the image, with their SHA256.
    pub added: BTreeMap<String, BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct Dependency {
    #[serde(default)]
    uri: Option<String>,
    #[serde(default)]
    name: Option<String>,
    digest: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, Value>,
}

impl Recorded {
    /// Reads a bareboat provenance predicate. Its lockfile must name each `.deb` with the
    /// SHA256 its resolved dependencies give that file: a lockfile changed after the fact is
    /// refused.
    pub fn read(predicate: &Value) -> Result<Recorded, String> {
        let definition = &predicate["buildDefinition"];
        if definition["buildType"] != BUILD_TYPE {
            return Err(format!(
                "its buildType is {}, not bareboat's {BUILD_TYPE}",
                definition["buildType"]
            ));
        }
        let external = &definition["externalParameters"];
        let lock = external["lockfile"]
            .as_str()
            .ok_or("externalParameters has no lockfile")?;
        let lock = Lockfile::parse(lock).map_err(|e| format!("its lockfile: {e}"))?;
        let dependencies: Vec<Dependency> =
            serde_json::from_value(definition["resolvedDependencies"].clone())
                .map_err(|e| format!("its resolvedDependencies: {e}"))?;
        let sha256 = |d: &Dependency| d.digest.get("sha256").cloned().unwrap_or_default();
        let kind = |d: &Dependency| {
            d.annotations
                .get(KIND)
                .and_then(Value::as_str)
                .map(String::from)
        };
        let mut debs = BTreeMap::new();
        let mut inreleases = Vec::new();
        let mut added: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for d in &dependencies {
            match kind(d).as_deref() {
                Some(ADDED_FILE) => {
                    let arch = (d.annotations.get(ADDED_FILE_ARCH).and_then(Value::as_str))
                        .ok_or("an added file has no architecture")?;
                    // It names a directory the rebuild writes into.
                    bareboat_apt::syntax::architecture(arch, ADDED_FILE_ARCH)?;
                    let path = d.name.clone().ok_or("an added file has no name")?;
                    added
                        .entry(arch.to_string())
                        .or_default()
                        .insert(path, sha256(d));
                }
                Some(INRELEASE) => inreleases.push(sha256(d)),
                Some(DEB) => {
                    let uri = d.uri.clone().ok_or("a .deb has no uri")?;
                    debs.insert(uri, sha256(d));
                }
                _ => {}
            }
        }
        for p in &lock.packages {
            let uri = deb_uri(&lock, p);
            match debs.get(&uri) {
                Some(hash) if *hash == p.sha256 => {}
                Some(hash) => {
                    return Err(format!(
                        "its lockfile names {} with SHA256 {}, and its resolvedDependencies give {uri} the SHA256 {hash}: the provenance does not hold together",
                        p.filename, p.sha256
                    ));
                }
                None => {
                    return Err(format!(
                        "its lockfile names {uri}, which its resolvedDependencies lack"
                    ));
                }
            }
        }
        for s in &lock.sources {
            let named = s.inrelease_sha256.as_ref();
            if named.is_some_and(|hash| !inreleases.contains(hash)) {
                return Err(format!(
                    "its lockfile locks {} {} against an InRelease its resolvedDependencies lack: the provenance does not hold together",
                    s.url, s.suite
                ));
            }
        }
        let internal = &definition["internalParameters"];
        Ok(Recorded {
            request: external["request"].clone(),
            lock,
            source_date_epoch: internal["SOURCE_DATE_EPOCH"].as_u64(),
            compression: internal["compression"]
                .as_str()
                .unwrap_or("gzip")
                .to_string(),
            max_layers: internal["maxLayers"].as_u64().unwrap_or(12) as usize,
            inreleases,
            added,
        })
    }
}
