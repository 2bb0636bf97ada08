//! The arguments several commands share: how to reach registries and the archive, which
//! spec to read, and an application on top of it; and the context a library call runs in.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use bareboat_apt::cache::Cache;
use bareboat_apt::download::{Client, Progress};
use bareboat_apt::proxy::Proxies;
use bareboat_apt::sources::Mirrors;
use bareboat_build::lock::{Archive, Settings};
use bareboat_build::pipeline::{self, Stages};
use bareboat_oci::registry::{MinRate, RegistryOptions};
use bareboat_sbom::Format;
use bareboat_spec::spec::{FileSpec, Spec, SpecRef, image_path};
use clap::Args;
use serde::{Deserialize, Serialize};

use crate::progress;

#[derive(Args)]
pub struct RegistryArgs {
    /// Talk to registries over plain HTTP, for a local test registry
    #[arg(long)]
    insecure: bool,
    /// Trust this CA certificate (PEM) for registries, besides the system's (repeat)
    #[arg(long = "ca-cert", value_name = "FILE")]
    ca_certs: Vec<PathBuf>,
    /// Registry credentials, USER:PASSWORD
    #[arg(
        long,
        env = "BAREBOAT_REGISTRY_CREDS",
        value_name = "USER:PASSWORD",
        hide_env_values = true
    )]
    creds: Option<String>,
    /// How many blobs to push or pull at once
    #[arg(long, default_value_t = 4)]
    registry_jobs: usize,
    /// Stop a blob transfer slower than BYTES a second over each SECONDS (retry one that stalls)
    #[arg(
        long,
        env = "BAREBOAT_MIN_RATE",
        value_name = "BYTES/SECONDS",
        default_value = "32000/60"
    )]
    min_rate: MinRate,
}

impl RegistryArgs {
    pub fn options(&self) -> Result<RegistryOptions> {
        let creds = match &self.creds {
            Some(c) => {
                let (user, password) = c
                    .split_once(':')
                    .ok_or_else(|| anyhow!("--creds: expected USER:PASSWORD"))?;
                Some((user.to_string(), password.to_string()))
            }
            None => None,
        };
        let ca_certs = self
            .ca_certs
            .iter()
            .map(|p| std::fs::read(p).with_context(|| format!("--ca-cert {}", p.display())))
            .collect::<Result<Vec<_>>>()?;
        Ok(RegistryOptions {
            insecure: self.insecure,
            ca_certs,
            creds,
            jobs: self.registry_jobs,
            progress: Some(std::sync::Arc::new(progress::Blobs::new())),
            min_rate: self.min_rate,
        })
    }
}

#[derive(Args)]
pub struct ArchiveArgs {
    /// Debian archive mirror [default: from the host's apt configuration]. Requests go
    /// through the proxy apt would use: Acquire::http::Proxy, else http_proxy (no_proxy
    /// honoured)
    #[arg(long, env = "BAREBOAT_MIRROR", value_name = "URL")]
    mirror: Option<String>,
    /// Debian security mirror [default: from the host's apt configuration]
    #[arg(long, env = "BAREBOAT_SECURITY_MIRROR", value_name = "URL")]
    security_mirror: Option<String>,
    /// Trust this keyring (binary or armored) instead of Debian's embedded archive keys
    #[arg(long, value_name = "FILE")]
    keyring: Option<PathBuf>,
    /// Accept Release files past their Valid-Until (snapshot mirrors serve a fixed date)
    #[arg(long)]
    no_check_valid_until: bool,
    /// Accept a Release older than one already relied on (this cache's newest, or the
    /// lockfile's): for a snapshot mirror; otherwise an older one is refused as a replay
    #[arg(long)]
    allow_older_release: bool,
    /// Use only the cache; fail clearly on anything missing
    #[arg(long)]
    offline: bool,
    /// Parallel downloads
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
}

impl ArchiveArgs {
    /// The archive and security mirrors the command line names, if it names them.
    pub fn mirrors_named(&self) -> (Option<&str>, Option<&str>) {
        (self.mirror.as_deref(), self.security_mirror.as_deref())
    }

    pub fn settings(&self) -> Result<Settings> {
        let mut mirrors = Mirrors::from_host(Path::new("/"))?;
        if let Some(m) = &self.mirror {
            mirrors.archive = Some(m.trim_end_matches('/').to_string());
        }
        if let Some(m) = &self.security_mirror {
            mirrors.security = Some(m.trim_end_matches('/').to_string());
        }
        Ok(Settings {
            mirrors,
            keyring: self.keyring.clone(),
            check_valid_until: !self.no_check_valid_until,
            allow_older_release: self.allow_older_release,
            accept_releases: Vec::new(),
            offline: self.offline,
            jobs: usize::from(self.jobs),
        })
    }
}

/// The client for the Debian archive and the tracker's data, sending each request through
/// the proxy apt would use: the host's apt configuration (`Acquire::http::Proxy`), then
/// `http_proxy`, `https_proxy` and `no_proxy`.
pub fn archive_client() -> Result<Client> {
    let proxies = Proxies::from_host(Path::new("/"), |name| std::env::var(name).ok())?;
    Ok(Client::through(proxies))
}

/// What a library call runs with, owned: the cache, the archive's settings, a client,
/// the registry options and progress bars.
pub struct Machinery {
    cache: Cache,
    settings: Settings,
    client: Client,
    registry: RegistryOptions,
}

impl Machinery {
    pub fn new(
        cache_root: &Path,
        archive: &ArchiveArgs,
        registry: Option<&RegistryArgs>,
    ) -> Result<Machinery> {
        let registry = match registry {
            Some(r) => r.options()?,
            None => RegistryOptions::default(),
        };
        Ok(Machinery {
            cache: Cache::open(cache_root)?,
            settings: archive.settings()?,
            client: archive_client()?,
            registry,
        })
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Accepts these InReleases (by SHA256) however old they are: those a rebuild's
    /// provenance names.
    pub fn accepting(mut self, releases: Vec<String>) -> Machinery {
        self.settings.accept_releases = releases;
        self
    }

    pub fn context(&self) -> pipeline::Context<'_> {
        pipeline::Context {
            archive: Archive {
                settings: &self.settings,
                client: &self.client,
                cache: &self.cache,
            },
            registry: &self.registry,
            stages: &Bars,
        }
    }
}

/// A progress bar for each stage.
struct Bars;

impl Stages for Bars {
    fn stage(&self, name: &'static str) -> Box<dyn Progress> {
        Box::new(progress::Bar::new(name))
    }
}

/// An SBOM format, as the command line names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SbomFormat {
    Spdx,
    Cyclonedx,
}

impl From<SbomFormat> for Format {
    fn from(f: SbomFormat) -> Format {
        match f {
            SbomFormat::Spdx => Format::Spdx,
            SbomFormat::Cyclonedx => Format::Cyclonedx,
        }
    }
}

/// The spec a command reads when none is named.
pub const DEFAULT_SPEC: &str = "bareboat.toml";

#[derive(Args, Clone, Serialize, Deserialize)]
pub struct SpecArgs {
    /// A spec file or catalog:NAME[:VARIANT]
    #[arg(default_value = DEFAULT_SPEC)]
    pub spec: String,
    /// Release for catalogue specs: trixie (13) or bookworm (12)
    #[arg(long)]
    pub release: Option<String>,
    /// Architectures for catalogue specs, comma-separated
    #[arg(long, value_delimiter = ',')]
    pub arch: Vec<String>,
}

impl SpecArgs {
    /// Loads the spec, and the lockfile that goes with it by default.
    pub fn load(&self) -> Result<(Spec, PathBuf)> {
        Ok(SpecRef::parse(&self.spec).load(self.release.as_deref(), &self.arch)?)
    }

    /// Whether the spec is a file (and not a catalogue image or an image base).
    pub fn is_file(&self) -> bool {
        matches!(SpecRef::parse(&self.spec), SpecRef::File(_))
    }
}

/// An application on top of the spec, from the command line.
#[derive(Args, Clone, Default, Serialize, Deserialize)]
pub struct AppArgs {
    /// Start from this image instead of a spec file: catalog:NAME[:VARIANT], or any image
    /// (docker://REGISTRY/REPO[:TAG], oci:DIR[:TAG], oci-archive:FILE, docker-archive:FILE),
    /// whose Debian packages count as installed
    #[arg(long, value_name = "IMAGE")]
    pub from: Option<String>,
    /// Add a host file, directory or glob at an image path, in the top layer (repeat);
    /// {arch} in SRC becomes each image's architecture
    #[arg(long, value_name = "SRC:DST")]
    pub add: Vec<String>,
    /// The program the image starts
    #[arg(long, value_name = "PATH")]
    pub entrypoint: Option<String>,
    /// An argument for the entrypoint (repeat for several)
    #[arg(long = "cmd", value_name = "ARG")]
    pub cmd: Vec<String>,
    /// Do not add the packages that added programs and scripts need
    #[arg(long)]
    pub no_auto_deps: bool,
    /// Carry the static health probe /usr/local/bin/health checking this URL, and set it as
    /// the Docker HEALTHCHECK (http://HOST[:PORT]/PATH, tcp://HOST:PORT or file:///PATH)
    #[arg(long, value_name = "URL")]
    pub health: Option<String>,
}

impl AppArgs {
    /// Applies the command line on top of `spec`.
    pub fn apply(&self, spec: &mut Spec) -> Result<()> {
        for add in &self.add {
            let (src, dst) = add
                .rsplit_once(':')
                .filter(|(s, _)| !s.is_empty())
                .and_then(|(s, d)| Some((s, image_path(d)?)))
                .ok_or_else(|| {
                    anyhow!("--add {add:?}: expected SRC:DST with DST an absolute path inside the image, such as target/release/server:/app/server")
                })?;
            spec.files.push(FileSpec {
                src: PathBuf::from(src),
                dst,
                mode: None,
                uid: 0,
                gid: 0,
            });
        }
        if let Some(e) = &self.entrypoint {
            spec.run.entrypoint = Some(vec![e.clone()]);
        }
        if !self.cmd.is_empty() {
            spec.run.cmd = Some(self.cmd.clone());
        }
        if self.no_auto_deps {
            spec.auto_deps = false;
        }
        if let Some(h) = &self.health {
            bareboat_spec::health::check_target(h).map_err(|e| anyhow!("--health: {e}"))?;
            spec.run.health = Some(h.clone());
        }
        Ok(())
    }
}
