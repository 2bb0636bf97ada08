//! The commands that lock, fetch and build, as library calls: a [`Lock`] or a [`Build`] is
//! run in a [`Context`], as are [`deps`], [`fetch`] and [`catalogue`], and each gives a
//! typed report, which the command line only prints.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use bareboat_apt::download::Progress;
use bareboat_apt::lockfile::{Change, LockedExclusion, LockedPackage, LockedSource, Lockfile};
use bareboat_oci::attach::{Artifact, Attachment};
use bareboat_oci::image::write_index;
use bareboat_oci::layout::{Layout, write_atomic};
use bareboat_oci::reference::{DockerName, ImageRef};
use bareboat_oci::referrer::{self, Follow};
use bareboat_oci::registry::{PushReport, RegistryOptions};
use bareboat_oci::sink::Sink;
use bareboat_oci::transport::{self, Fetch};
use bareboat_sbom::Format;
use bareboat_sign::formats::AttestationType;
use bareboat_sign::key::{KeyPair, PublicKey};
use bareboat_sign::sign::Signer;
use bareboat_spec::spec::Spec;
use oci_spec::image::Descriptor;
use serde::Serialize;

use crate::Error;
use crate::abi::AbiMismatch;
use crate::base::Base;
use crate::build::{BuildOptions, BuiltImage, Platform, package_layer_identities};
use crate::deps::{Analysis, Found};
use crate::lock::{self, Archive, FetchReport, Request, Resolution, Upgrade};
use crate::provenance::Provenance;
use crate::shared::{self, Entry, Published, SharedCache, WithShared};

/// Makes the progress reporter of each stage of a run ("indexes", "packages"); a stage
/// is over when its reporter is dropped.
pub trait Stages {
    /// The reporter of the stage `name`.
    fn stage(&self, name: &'static str) -> Box<dyn Progress>;
}

/// Stages that report nothing, for callers with no terminal to show them on.
pub struct Quiet;

impl Stages for Quiet {
    fn stage(&self, _name: &'static str) -> Box<dyn Progress> {
        Box::new(bareboat_apt::download::Silent)
    }
}

/// What a lock or a build runs with.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    /// The archive packages come from, and the cache they go into.
    pub archive: Archive<'a>,
    /// How to reach registries, for base images and pushes.
    pub registry: &'a RegistryOptions,
    /// Progress reporting.
    pub stages: &'a dyn Stages,
}

/// What auto-deps found for the added files, per architecture.
pub type AutoDeps = BTreeMap<String, Found>;

impl Context<'_> {
    /// Resolves `request`, showing the indexes' progress.
    async fn resolve(&self, request: &Request<'_>) -> Result<Resolution, Error> {
        let progress = self.stages.stage("indexes");
        request.resolve(self.archive, &*progress).await
    }

    /// Fetches the packages of `lock` into the cache, and records that `lockfile` (if it
    /// has one) uses them.
    async fn fetch(&self, lock: &Lockfile, lockfile: Option<&Path>) -> Result<FetchReport, Error> {
        let progress = self.stages.stage("packages");
        let report = lock::fetch(lock, self.archive, &*progress).await?;
        if let Some(path) = lockfile {
            self.archive.cache.record_use(path, &lock.sha256s())?;
        }
        Ok(report)
    }

    /// Opens the image `spec` builds on, if it names one: read in place, or pulled into the
    /// cache's scratch space, every blob checked. Returns the base's name with it.
    async fn open_base(&self, spec: &Spec) -> Result<Option<(String, transport::Source)>, Error> {
        let Some(image) = &spec.base_image else {
            return Ok(None);
        };
        let name = crate::base::recorded_name(image);
        let scratch = self.archive.cache.root().join("tmp");
        // The base's referrers describe the base, not what is built on it: none are pulled.
        let source = transport::open(image, &scratch, self.registry, Fetch::Whole(Follow::None))
            .await
            .map_err(|error| Error::OpenBase {
                name: name.clone(),
                error,
            })?;
        Ok(Some((name, source)))
    }
}

/// The base `source`, named `name`, as the build takes it.
fn base_of<'a>(name: &str, source: &'a transport::Source) -> Base<'a> {
    Base {
        name: name.to_string(),
        source: &*source.blobs,
        top: source.top.clone(),
    }
}

/// Auto-deps' findings as a map.
fn auto_deps(auto: Vec<(String, Found)>) -> AutoDeps {
    auto.into_iter().collect()
}

/// Locking a spec: `bareboat lock`.
pub struct Lock {
    /// The spec.
    pub spec: Spec,
    /// The spec as the user named it, for hints.
    pub spec_name: String,
    /// The lockfile to write, or check.
    pub lockfile: PathBuf,
    /// Which packages may move to newer versions.
    pub upgrade: Upgrade,
    /// Whether to fetch the locked packages into the cache.
    pub fetch: bool,
}

/// What `bareboat lock --check` found.
#[derive(Debug, Serialize)]
pub struct CheckReport {
    /// The lockfile checked.
    pub lockfile: PathBuf,
    /// Whether locking would leave it as it is.
    pub current: bool,
    /// The version changes locking would make.
    pub changes: Vec<Change>,
    /// Whether the lockfile exists at all.
    #[serde(skip)]
    pub exists: bool,
    /// Whether the packages requested or excluded changed.
    #[serde(skip)]
    pub inputs_changed: bool,
    /// How many packages locking now would lock.
    #[serde(skip)]
    pub packages: usize,
}

/// What `bareboat lock` wrote.
#[derive(Debug, Serialize)]
pub struct LockReport {
    /// The lockfile written.
    pub lockfile: PathBuf,
    /// The release's codename.
    pub release: String,
    /// The architectures locked.
    pub arch: Vec<String>,
    /// The archive sources, with the dates of their indexes.
    pub sources: Vec<LockedSource>,
    /// Every package locked, per architecture.
    pub packages: Vec<LockedPackage>,
    /// The dependencies the spec's excludes dropped.
    pub excluded: Vec<LockedExclusion>,
    /// What auto-deps found for the added files.
    pub auto_deps: AutoDeps,
    /// The version changes since the previous lock.
    pub changes: Vec<Change>,
    /// What fetching the packages did, unless it was not asked for.
    pub fetch: Option<FetchReport>,
    /// How long it took.
    pub seconds: f64,
    /// Whether there was a previous lock to compare with.
    #[serde(skip)]
    pub had_previous: bool,
}

impl Lock {
    /// The previous lock, if the lockfile exists.
    fn previous(&self) -> Result<Option<Lockfile>, Error> {
        match self.lockfile.exists() {
            true => Ok(Some(Lockfile::read(&self.lockfile)?)),
            false => Ok(None),
        }
    }

    /// Resolves the spec, keeping what `previous` locked where `upgrade` allows.
    async fn resolve(
        &self,
        previous: Option<&Lockfile>,
        cx: &Context<'_>,
    ) -> Result<Resolution, Error> {
        let source = cx.open_base(&self.spec).await?;
        let base = source.as_ref().map(|(name, s)| base_of(name, s));
        let request = Request {
            spec: &self.spec,
            base: base.as_ref(),
            previous,
            upgrade: &self.upgrade,
        };
        cx.resolve(&request).await
    }

    /// Whether locking would change the lockfile; writes nothing.
    pub async fn check(&self, cx: &Context<'_>) -> Result<CheckReport, Error> {
        let previous = self.previous()?;
        let new = self.resolve(previous.as_ref(), cx).await?.lock;
        Ok(CheckReport {
            lockfile: self.lockfile.clone(),
            current: previous.as_ref().is_some_and(|p| p.same_resolution(&new)),
            changes: previous.as_ref().map(|p| p.diff(&new)).unwrap_or_default(),
            exists: previous.is_some(),
            inputs_changed: previous
                .as_ref()
                .is_some_and(|p| p.requested != new.requested || p.exclude != new.exclude),
            packages: new.packages.len(),
        })
    }

    /// Locks the spec into the lockfile, and fetches its packages unless told not to.
    pub async fn run(&self, cx: &Context<'_>) -> Result<LockReport, Error> {
        let started = Instant::now();
        let previous = self.previous()?;
        let resolution = self.resolve(previous.as_ref(), cx).await?;
        let new = resolution.lock;
        new.write(&self.lockfile)?;
        let fetch = match self.fetch {
            true => Some(cx.fetch(&new, Some(&self.lockfile)).await?),
            false => None,
        };
        Ok(LockReport {
            lockfile: self.lockfile.clone(),
            changes: previous.as_ref().map(|p| p.diff(&new)).unwrap_or_default(),
            release: new.release,
            arch: new.arch,
            sources: new.sources,
            packages: new.packages,
            excluded: new.exclusions,
            auto_deps: auto_deps(resolution.auto),
            fetch,
            seconds: started.elapsed().as_secs_f64(),
            had_previous: previous.is_some(),
        })
    }
}

/// Building a spec into images: `bareboat build`.
pub struct Build {
    /// The spec.
    pub spec: Spec,
    /// The spec as the user named it, for hints.
    pub spec_name: String,
    /// The lockfile to build from (resolved and written if it does not exist); `None`
    /// resolves afresh and writes no lockfile.
    pub lockfile: Option<PathBuf>,
    /// Where to write the image: references in any transport's syntax. The first layout
    /// is built into directly; the others are written from it.
    pub outputs: Vec<String>,
    /// How to build.
    pub options: BuildOptions,
    /// The SBOMs to attach to each platform's image, in every output.
    pub sbom: Vec<Format>,
    /// Whether each SBOM is also written as a file beside each layout and archive output.
    pub sbom_files: bool,
    /// The key that signs and attests, when the build does either.
    pub signer: Option<Signer>,
    /// Whether the image and each platform's are signed, in every output.
    pub sign: bool,
    /// The attestations attached, in every output: SLSA provenance about the image and
    /// each platform's, and each platform's SBOM.
    pub attest: Vec<AttestationType>,
    /// What was asked for, as the provenance records it for a rebuild.
    pub request: serde_json::Value,
    /// What the caller states about each platform's image once it is built, attested as
    /// its type with the build's key, in every output: an OpenVEX document, which this
    /// crate does not make.
    pub stated: Vec<(AttestationType, Box<Stating>)>,
    /// The shared build cache the build reads and publishes to.
    pub shared: SharedOptions,
}

/// The registry as a shared build cache (see [`crate::shared`]): the maps a build reads, and
/// the one it publishes to.
#[derive(Default)]
pub struct SharedOptions {
    /// The maps to build on.
    pub from: Vec<DockerName>,
    /// The key their signatures must verify with: required with `from`.
    pub verify: Option<PublicKey>,
    /// Where this build's package layers are published, and the key that signs the map.
    pub to: Option<(DockerName, KeyPair)>,
}

/// What the shared build cache did for a build.
#[derive(Debug, Default, Serialize)]
pub struct SharedReport {
    /// What a user should know: maps absent, entries stale, layers pulled.
    pub notes: Vec<String>,
    /// What publishing the map did, when the build published one.
    pub published: Option<Published>,
}

/// Makes a predicate about the image `manifest` of the layout it was built into; `None`
/// when there is nothing to state about it.
pub type Stating =
    dyn Fn(&Layout, &Descriptor) -> Result<Option<serde_json::Value>, String> + Send + Sync;

/// The image a build was based on.
#[derive(Debug, Serialize)]
pub struct BaseReport {
    /// The reference it was named by.
    pub name: String,
    /// Its digest.
    pub digest: String,
}

/// What `bareboat build` made.
#[derive(Debug, Serialize)]
pub struct BuildReport {
    /// The image's (or the index's) digest.
    pub digest: String,
    /// Its media type.
    pub media_type: String,
    /// Where it was written.
    pub outputs: Vec<String>,
    /// What auto-deps found for the added files, when the build resolved the spec.
    pub auto_deps: AutoDeps,
    /// What each push did.
    pub pushes: Vec<PushReport>,
    /// The SBOM files written.
    pub sboms: Vec<PathBuf>,
    /// How many signatures were attached (one per manifest and scheme).
    pub signatures: usize,
    /// How many attestations were attached (one per manifest, type and scheme).
    pub attestations: usize,
    /// The image built on, if any.
    pub base: Option<BaseReport>,
    /// Each platform's image.
    pub images: Vec<BuiltImage>,
    /// What the shared build cache did, when the build used one.
    pub shared: Option<SharedReport>,
    /// How long it took.
    pub seconds: f64,
}

impl Build {
    /// A build of `spec` (named `spec_name` in hints) into `outputs`, from `lockfile` when
    /// given, with `options`: no SBOM, signature or attestation, and no request recorded.
    pub fn new(
        spec: Spec,
        spec_name: &str,
        lockfile: Option<PathBuf>,
        outputs: Vec<String>,
        options: BuildOptions,
    ) -> Build {
        Build {
            spec,
            spec_name: spec_name.to_string(),
            lockfile,
            outputs,
            options,
            sbom: Vec::new(),
            sbom_files: false,
            signer: None,
            sign: false,
            attest: Vec::new(),
            request: serde_json::Value::Null,
            stated: Vec::new(),
            shared: SharedOptions::default(),
        }
    }

    /// Locks (or follows the lock), fetches, builds every platform, and writes every
    /// output.
    pub async fn run(&self, cx: &Context<'_>) -> Result<BuildReport, Error> {
        let started = Instant::now();
        let started_at = SystemTime::now();
        let outputs = self
            .outputs
            .iter()
            .map(|o| o.parse::<ImageRef>())
            .collect::<Result<Vec<_>, _>>()?;
        let sinks = outputs
            .iter()
            .map(|o| transport::sink(o, cx.registry))
            .collect::<Result<Vec<_>, _>>()?;
        self.check_platforms(&sinks)?;
        let source = cx.open_base(&self.spec).await?;
        let base = source.as_ref().map(|(name, s)| base_of(name, s));
        let shared = self.open_shared(cx).await?;
        let (lock, auto) = self.lock(base.as_ref(), cx).await?;
        let known = match (&shared, &base) {
            (Some(s), None) => self.known_layers(&lock, s)?,
            (Some(s), Some(_)) => {
                s.note("a build on a base image does not use the shared cache".into());
                BTreeMap::new()
            }
            (None, _) => BTreeMap::new(),
        };
        cx.fetch(&self.to_fetch(&lock, &known), None).await?;
        // The lockfile uses every package it locks, fetched now or not: pruning keeps them.
        if let Some(path) = &self.lockfile {
            cx.archive.cache.record_use(path, &lock.sha256s())?;
        }
        // The first layout output is built into directly; archives are written from it, or
        // from a scratch layout when there is none.
        let primary = outputs
            .iter()
            .position(|o| matches!(o, ImageRef::Oci { .. }));
        // Layers only the shared cache holds are pulled into the layout where it is kept
        // or read: a layout output, an archive, a statement about the image's files. A push
        // alone mounts them from the cache's repository, or finds them there.
        let pull = primary.is_some()
            || !self.stated.is_empty()
            || outputs
                .iter()
                .any(|o| !matches!(o, ImageRef::Docker { .. }));
        let scratch = tempfile::Builder::new()
            .prefix("bareboat-build-")
            .tempdir_in(cx.archive.cache.root().join("tmp"))
            .map_err(|e| bareboat_apt::Error::io(cx.archive.cache.root().join("tmp"), e))?;
        let into = Inputs {
            lock: &lock,
            base: base.as_ref(),
            known: &known,
            shared: shared.as_ref().filter(|_| pull),
        };
        let (layout, top, images) = match primary.map(|i| &outputs[i]) {
            Some(ImageRef::Oci { dir, tag }) => self.build_into(dir, Some(tag), &into, cx)?,
            _ => self.build_into(&scratch.path().join("layout"), None, &into, cx)?,
        };
        // Signed and attested once, in the layout, what is attached rides into every other
        // output.
        let (signatures, attestations) = match &self.signer {
            Some(signer) => {
                let built = Built {
                    layout: &layout,
                    top: &top,
                    lock: &lock,
                    images: &images,
                    base: base.as_ref().map(|b| BaseReport {
                        name: b.name.clone(),
                        digest: b.digest(),
                    }),
                    started: started_at,
                };
                self.sign_and_attest(signer, &built)?
            }
            None => (0, 0),
        };
        let blobs = WithShared {
            layout: &layout,
            pushed: None,
            shared: shared.as_ref(),
        };
        let mut pushes = Vec::new();
        for (i, sink) in sinks.iter().enumerate() {
            if Some(i) != primary {
                let written = transport::write(&blobs, &top, &**sink, None, Follow::Known)
                    .await
                    .map_err(|error| Error::Output {
                        output: self.outputs[i].clone(),
                        error,
                    })?;
                pushes.extend(written.push);
            }
        }
        let published = match &self.shared.to {
            Some((name, key)) => {
                self.publish(name, key, &images, &outputs, &blobs, cx)
                    .await?
            }
            None => None,
        };
        let shared_report = (shared.is_some() || self.shared.to.is_some()).then(|| SharedReport {
            notes: shared
                .as_ref()
                .map(|s| s.notes.lock().expect("not poisoned").clone())
                .unwrap_or_default(),
            published,
        });
        let sboms = match self.sbom_files {
            true => self.write_sboms(&outputs, &images)?,
            false => Vec::new(),
        };
        Ok(BuildReport {
            digest: top.digest().to_string(),
            media_type: top.media_type().to_string(),
            outputs: self.outputs.clone(),
            auto_deps: auto,
            pushes,
            sboms,
            signatures,
            attestations,
            base: base.as_ref().map(|b| BaseReport {
                name: b.name.clone(),
                digest: b.digest(),
            }),
            images,
            shared: shared_report,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// The shared cache's maps `--cache-from` names, read and verified; `None` when it
    /// names none.
    async fn open_shared(&self, cx: &Context<'_>) -> Result<Option<SharedCache>, Error> {
        if self.shared.from.is_empty() {
            return Ok(None);
        }
        let Some(key) = &self.shared.verify else {
            return Err(Error::CacheVerifyKey);
        };
        Ok(Some(
            SharedCache::open(&self.shared.from, key, cx.registry).await?,
        ))
    }

    /// For each architecture, the lowest package layers the shared cache supplies whole.
    fn known_layers<'s>(
        &self,
        lock: &Lockfile,
        shared: &'s SharedCache,
    ) -> Result<Known<'s>, Error> {
        let mut known = BTreeMap::new();
        for arch in &self.spec.arch {
            let layers = package_layer_identities(&self.spec, lock, arch, &self.options)?;
            let ids: Vec<String> = layers.iter().map(|(id, _)| id.clone()).collect();
            let entries = shared.known(&ids);
            let packages = (layers.into_iter().take(entries.len()))
                .flat_map(|(_, packages)| packages)
                .collect();
            let total = ids.len();
            known.insert(
                arch.clone(),
                KnownLayers {
                    entries,
                    packages,
                    total,
                },
            );
        }
        Ok(known)
    }

    /// The lock's packages that the build reads: all but those of the layers the shared
    /// cache supplies, and ca-certificates wherever a layer above them may make
    /// certificates from its package.
    fn to_fetch(&self, lock: &Lockfile, known: &Known) -> Lockfile {
        let mut fetch = lock.clone();
        fetch.packages.retain(|p| {
            let Some(k) = known.get(&p.target) else {
                return true;
            };
            let certificates = p.name == crate::content::CA_PACKAGE
                && (k.entries.len() < k.total || !self.spec.ca_certs.is_empty());
            certificates || !k.packages.contains(&p.name)
        });
        fetch
    }

    /// Publishes the package layers of `images` to the shared cache's map `name`, signed
    /// with `key`. The blobs come from the layout, the repository an output pushed them to,
    /// or the cache they came from.
    async fn publish(
        &self,
        name: &DockerName,
        key: &KeyPair,
        images: &[BuiltImage],
        outputs: &[ImageRef],
        blobs: &WithShared<'_>,
        cx: &Context<'_>,
    ) -> Result<Option<Published>, Error> {
        let recorded: Vec<_> = images.iter().flat_map(|i| i.recorded.clone()).collect();
        if recorded.is_empty() {
            tracing::warn!(
                "nothing to publish to {}: the build made no package layers of its own (a build on a base image records none)",
                name.full()
            );
            return Ok(None);
        }
        let pushed = outputs.iter().find_map(|o| match o {
            ImageRef::Docker { name: n, .. } if n.registry == name.registry => Some(n.clone()),
            _ => None,
        });
        let blobs = WithShared { pushed, ..*blobs };
        Ok(Some(
            shared::publish(name, key, recorded, &blobs, cx.registry).await?,
        ))
    }

    /// Refuses an output that holds one platform's image when the build makes several.
    fn check_platforms(&self, sinks: &[Box<dyn Sink>]) -> Result<(), Error> {
        let arch = &self.spec.arch;
        match sinks.iter().position(|s| !s.holds_several_platforms()) {
            Some(i) if arch.len() > 1 => Err(Error::OnePlatform {
                output: self.outputs[i].clone(),
                arches: arch.join(" and "),
            }),
            _ => Ok(()),
        }
    }

    /// The lock to build from: the lockfile, if it exists and was made for this spec, or
    /// a fresh resolution (written to the lockfile if there is one), with what auto-deps
    /// found.
    async fn lock(
        &self,
        base: Option<&Base<'_>>,
        cx: &Context<'_>,
    ) -> Result<(Lockfile, AutoDeps), Error> {
        let request = Request::fresh(&self.spec, base);
        match &self.lockfile {
            Some(path) if path.exists() => {
                let lock = Lockfile::read(path)?;
                if !lock.same_inputs(&request.inputs()) {
                    return Err(Error::StaleLock {
                        path: path.clone(),
                        spec: self.spec_name.clone(),
                    });
                }
                Ok((lock, AutoDeps::new()))
            }
            _ => {
                let resolution = cx.resolve(&request).await?;
                if let Some(path) = &self.lockfile {
                    resolution.lock.write(path)?;
                }
                Ok((resolution.lock, auto_deps(resolution.auto)))
            }
        }
    }

    /// Builds every platform's image into the layout at `dir` (tagged `tag`), with an
    /// index over several, and their SBOMs as referrers. Returns the layout and its top.
    fn build_into(
        &self,
        dir: &Path,
        tag: Option<&String>,
        into: &Inputs<'_>,
        cx: &Context<'_>,
    ) -> Result<(Layout, Descriptor, Vec<BuiltImage>), Error> {
        let Inputs { lock, base, .. } = *into;
        let pending = Layout::pending(dir)?;
        let layout = pending.layout();
        // What an SBOM says is collected when an SBOM, or an attestation, is asked for.
        let options = BuildOptions {
            sbom: !self.sbom.is_empty() || !self.attest.is_empty(),
            record_layers: self.shared.to.is_some(),
            ..self.options.clone()
        };
        let mut images = Vec::new();
        for arch in &self.spec.arch {
            let base_image = base.map(|b| b.image(arch)).transpose()?;
            let known = into.known.get(arch).map_or(&[][..], |k| &k.entries[..]);
            let platform = Platform {
                spec: &self.spec,
                lock,
                arch,
                cache: cx.archive.cache,
                layout,
                options: &options,
                base: base_image.as_ref(),
                known,
            };
            let image = platform.build()?;
            if let Some(shared) = into.shared {
                pull_known(layout, shared, &known[..image.shared_layers])?;
            }
            images.push(image);
        }
        let top = match images.as_slice() {
            [one] => one.manifest.clone(),
            _ => write_index(layout, images.iter().map(|i| i.manifest.clone()).collect())?,
        };
        // SBOMs ride along as referrers of each platform's image, into every output that
        // keeps them.
        let mut sboms = Vec::new();
        for image in &images {
            let Some(sbom) = &image.sbom else { continue };
            for format in &self.sbom {
                sboms.push(Attachment::Referrer(Box::new(Artifact {
                    subject: image.manifest.clone(),
                    artifact_type: format.media_type().into(),
                    content: format.document(sbom),
                    annotations: [(referrer::CREATED.to_string(), sbom.created.clone())].into(),
                })));
            }
        }
        layout.attach(&sboms)?;
        if let Some(tag) = tag {
            layout.tag(&top, std::slice::from_ref(tag))?;
        }
        Ok((pending.commit()?, top, images))
    }

    /// Signs (when asked) and attests the built image in its layout; returns how many
    /// signatures and attestations were attached.
    fn sign_and_attest(&self, signer: &Signer, built: &Built) -> Result<(usize, usize), Error> {
        let Built {
            layout,
            top,
            images,
            ..
        } = built;
        let signatures = match self.sign {
            true => signer.attachments(*layout, top)?,
            false => Vec::new(),
        };
        let mut attestations = Vec::new();
        for kind in &self.attest {
            match kind {
                AttestationType::SlsaProvenance1 => {
                    let predicate = self.provenance(built);
                    for subject in referrer::subjects(*layout, top)? {
                        let made = signer.attestation(
                            &subject,
                            kind.predicate_type(),
                            predicate.clone(),
                        )?;
                        attestations.extend(made);
                    }
                }
                AttestationType::Spdx | AttestationType::Cyclonedx => {
                    let format = match kind {
                        AttestationType::Spdx => Format::Spdx,
                        _ => Format::Cyclonedx,
                    };
                    for image in images.iter() {
                        let Some(sbom) = &image.sbom else { continue };
                        let document = serde_json::from_slice(&format.document(sbom))
                            .expect("an SBOM is JSON");
                        let made =
                            signer.attestation(&image.manifest, kind.predicate_type(), document)?;
                        attestations.extend(made);
                    }
                }
                other @ (AttestationType::OpenVex | AttestationType::Custom(_)) => {
                    return Err(Error::Attestation(other.to_string()));
                }
            }
        }
        for (kind, stating) in &self.stated {
            for image in images.iter() {
                let predicate =
                    stating(layout, &image.manifest).map_err(|error| Error::Stating {
                        kind: kind.to_string(),
                        arch: image.arch.clone(),
                        error,
                    })?;
                if let Some(predicate) = predicate {
                    let made =
                        signer.attestation(&image.manifest, kind.predicate_type(), predicate)?;
                    attestations.extend(made);
                }
            }
        }
        layout.attach(&signatures)?;
        layout.attach(&attestations)?;
        Ok((signatures.len(), attestations.len()))
    }

    /// The SLSA provenance predicate of the build.
    fn provenance(&self, built: &Built) -> serde_json::Value {
        let invocation = invocation_id();
        Provenance {
            request: &self.request,
            lock: built.lock,
            outputs: &self.outputs,
            options: &self.options,
            base: built.base.as_ref(),
            images: built.images,
            started: built.started,
            invocation: &invocation,
        }
        .predicate(SystemTime::now())
    }

    /// Writes each image's SBOM in each format beside every layout and archive output, as
    /// `PATH.spdx.json` (`PATH.ARCH.spdx.json` for a multi-arch build); returns the paths.
    fn write_sboms(
        &self,
        outputs: &[ImageRef],
        images: &[BuiltImage],
    ) -> Result<Vec<PathBuf>, Error> {
        let mut written = Vec::new();
        for output in outputs {
            let base = match output {
                ImageRef::Oci { dir, .. } => dir,
                ImageRef::OciArchive { file, .. } | ImageRef::DockerArchive { file, .. } => file,
                ImageRef::Docker { .. } => continue,
            };
            for (image, sbom) in images.iter().filter_map(|i| Some((i, i.sbom.as_ref()?))) {
                for format in &self.sbom {
                    let arch = match images.len() {
                        1 => String::new(),
                        _ => format!(".{}", image.arch),
                    };
                    let mut name = base.as_os_str().to_owned();
                    name.push(format!("{arch}.{}", format.extension()));
                    let path = PathBuf::from(name);
                    write_atomic(&path, &format.document(sbom))?;
                    written.push(path);
                }
            }
        }
        Ok(written)
    }
}

/// The layers a shared cache supplies to each architecture's build.
type Known<'s> = BTreeMap<String, KnownLayers<'s>>;

/// The lowest package layers of one architecture that a shared cache supplies whole.
struct KnownLayers<'s> {
    /// Their entries, bottom first.
    entries: Vec<&'s Entry>,
    /// Their packages, which need not be fetched.
    packages: std::collections::BTreeSet<String>,
    /// How many package layers the image has.
    total: usize,
}

/// What every platform's build starts from.
struct Inputs<'a> {
    lock: &'a Lockfile,
    base: Option<&'a Base<'a>>,
    known: &'a Known<'a>,
    /// The shared cache to pull the known layers' blobs from, when the layout must hold them.
    shared: Option<&'a SharedCache>,
}

/// Pulls the blobs of `layers`, which the shared cache supplied, into `layout`, each checked
/// against its digest and diff_id as it streams.
fn pull_known(layout: &Layout, shared: &SharedCache, layers: &[&Entry]) -> Result<(), Error> {
    let source = WithShared {
        layout,
        pushed: None,
        shared: Some(shared),
    };
    for entry in layers {
        layout.copy_blob_from(&source, &entry.layer.checked_blob()?)?;
    }
    if !layers.is_empty() {
        shared.note(format!(
            "{} layers pulled from the shared cache into the layout",
            layers.len()
        ));
    }
    Ok(())
}

/// A build done, for its signatures and attestations.
struct Built<'a> {
    layout: &'a Layout,
    top: &'a Descriptor,
    lock: &'a Lockfile,
    images: &'a [BuiltImage],
    base: Option<BaseReport>,
    started: SystemTime,
}

/// A new run's id: 16 random bytes, in hex.
fn invocation_id() -> String {
    let mut bytes = [0u8; 16];
    // Without the system's randomness, the time tells runs apart well enough for an id.
    if getrandom::fill(&mut bytes).is_err() {
        let now = SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        bytes = now.as_nanos().to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What `bareboat deps` found: the added files' analysis, and the packages they need.
#[derive(Debug, Serialize)]
pub struct DepsReport {
    /// The image whose packages count as installed.
    pub base: String,
    /// Each added file's analysis.
    pub files: Vec<Analysis>,
    /// The packages found for them, per architecture.
    pub auto_deps: AutoDeps,
    /// The programs that need symbol versions the image's libraries lack: they cannot start.
    pub abi: Vec<AbiMismatch>,
}

/// Finds what the files `spec` adds need, on the catalogue image `base` (as the user
/// named it) that `spec` starts from: `bareboat deps`.
pub async fn deps(spec: &Spec, base: &str, cx: &Context<'_>) -> Result<DepsReport, Error> {
    let resolution = cx.resolve(&Request::fresh(spec, None)).await?;
    // The ABI guard reads the libraries the image would hold: built into scratch, where a
    // mismatch is reported rather than refused.
    let scratch = tempfile::Builder::new()
        .prefix("bareboat-deps-")
        .tempdir_in(cx.archive.cache.root().join("tmp"))
        .map_err(|e| bareboat_apt::Error::io(cx.archive.cache.root().join("tmp"), e))?;
    let output = format!("oci:{}:deps", scratch.path().join("layout").display());
    let options = BuildOptions {
        allow_abi_mismatch: true,
        ..BuildOptions::default()
    };
    let built = Build::new(spec.clone(), base, None, vec![output], options)
        .run(cx)
        .await?;
    Ok(DepsReport {
        base: base.to_string(),
        files: resolution.analysis,
        auto_deps: auto_deps(resolution.auto),
        abi: built.images.into_iter().flat_map(|i| i.abi).collect(),
    })
}

/// Fetches the packages of `lock`, read from `lockfile`, into the cache: `bareboat fetch`.
pub async fn fetch(
    lock: &Lockfile,
    lockfile: &Path,
    cx: &Context<'_>,
) -> Result<FetchReport, Error> {
    cx.fetch(lock, Some(lockfile)).await
}

/// A package of a catalogue image, with its sizes.
#[derive(Debug, Serialize)]
pub struct CatalogPackage {
    /// The package's name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The `.deb`'s size.
    pub size: u64,
    /// Debian's Installed-Size, before slicing.
    pub installed_size: u64,
}

/// A dependency a catalogue image leaves out, and why nothing needs it.
#[derive(Debug, Serialize)]
pub struct Dropped {
    /// The package.
    pub package: &'static str,
    /// Why it is not needed at run time.
    pub why: &'static str,
}

/// A catalogue image, resolved against the archive: `bareboat catalog`.
#[derive(Debug, Serialize)]
pub struct CatalogImage {
    /// Its name, as in `catalog:NAME`.
    pub name: &'static str,
    /// The image it builds on.
    pub parent: Option<&'static str>,
    /// What it is for.
    pub summary: &'static str,
    /// The release resolved for.
    pub release: &'static str,
    /// The architecture resolved for.
    pub arch: String,
    /// The variants every image has.
    pub variants: Vec<&'static str>,
    /// The packages it requests, its parents' with its own.
    pub requested: Vec<String>,
    /// The packages it requests beyond its parent's.
    #[serde(skip)]
    pub own: &'static [&'static str],
    /// The dependencies it excludes, its parents' with its own.
    pub exclude: Vec<String>,
    /// The dependencies it drops itself, with why.
    pub dropped: Vec<Dropped>,
    /// Its entrypoint.
    pub entrypoint: Option<Vec<String>>,
    /// The packages it installs.
    pub packages: Vec<CatalogPackage>,
    /// The sum of the `.deb` sizes.
    pub download_size: u64,
    /// The sum of the installed sizes, before slicing.
    pub installed_size: u64,
}

/// Every catalogue image made for `release`, resolved for `arch`.
pub async fn catalogue(
    release: bareboat_apt::sources::Distribution,
    arch: &str,
    cx: &Context<'_>,
) -> Result<Vec<CatalogImage>, Error> {
    use bareboat_spec::catalog::{self, Variant};
    if arch == "all" {
        return Err(Error::OneArchitecture {
            named: release.architectures().join(", "),
        });
    }
    let arch = bareboat_spec::spec::arches(vec![arch.to_string()], release)?;
    let progress = cx.stages.stage("indexes");
    let mut images = Vec::new();
    for image in catalog::IMAGES {
        let Some(own) = image.own_packages(release) else {
            continue;
        };
        let spec = catalog::spec(image.name, None, release, arch.clone())?;
        let lock = Request::fresh(&spec, None)
            .resolve(cx.archive, &*progress)
            .await
            .map_err(|error| Error::Catalogue {
                name: image.name,
                error: Box::new(error),
            })?
            .lock;
        let packages: Vec<CatalogPackage> = lock
            .packages
            .into_iter()
            .map(|p| CatalogPackage {
                name: p.name,
                version: p.version,
                size: p.size,
                installed_size: p.installed_size,
            })
            .collect();
        images.push(CatalogImage {
            name: image.name,
            parent: image.parent,
            summary: image.summary,
            release: release.codename(),
            arch: arch[0].clone(),
            variants: Variant::ALL.iter().map(|v| v.name()).collect(),
            requested: spec.packages.iter().map(ToString::to_string).collect(),
            own,
            exclude: spec.exclude,
            dropped: image
                .exclude
                .iter()
                .map(|&(package, why)| Dropped { package, why })
                .collect(),
            entrypoint: spec.run.entrypoint,
            download_size: packages.iter().map(|p| p.size).sum(),
            installed_size: packages.iter().map(|p| p.installed_size).sum(),
            packages,
        });
    }
    Ok(images)
}
