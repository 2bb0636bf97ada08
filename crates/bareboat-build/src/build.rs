//! From a spec and its lock to one platform's image, in three steps: plan the layers, fill
//! and write them on a pipeline of threads, and assemble the image (config, manifest,
//! SBOM).

use std::collections::HashMap;
use std::thread::ScopedJoinHandle;

use bareboat_apt::cache::Cache;
use bareboat_apt::lockfile::{LockedPackage, Lockfile};
use bareboat_apt::release::format_rfc3339;
use bareboat_oci::image::{BuiltLayer, ImageSpec, write_image};
use bareboat_oci::layer::{LayerBlob, LayerWriter};
use bareboat_oci::layout::Layout;
use bareboat_oci::media::Compression;
use bareboat_oci::overlay::Limits;
use bareboat_oci::seal::SealKey;
use bareboat_rootfs::policy::{self, Slicing};
use bareboat_rootfs::rootfs::{Content, Rootfs, Snapshot};
use bareboat_rootfs::treecache::TreeCache;
use bareboat_sbom::{Sbom, SbomPackage};
use bareboat_spec::spec::Spec;
use oci_spec::image::Descriptor;
use serde::Serialize;

use crate::Error;
use crate::abi;
use crate::base::BaseImage;
use crate::config::run_config;
use crate::content::{self, C_UTF8_CTYPE};
use crate::lock::{self, AddedFiles};
use crate::plan::{Group, group_packages, split_largest, tree_keys};
use crate::probe;
use crate::shared;

/// How to build.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    /// How layers are compressed.
    pub compression: Compression,
    /// Clamps every mtime, when set.
    pub source_date_epoch: Option<u64>,
    /// The most layers an image may have; the spec's biggest packages get layers of their
    /// own while the budget lasts.
    pub max_layers: usize,
    /// The caps on what packages and base layers may hold.
    pub limits: Limits,
    /// Collect what an SBOM says (package licences, added files' digests).
    pub sbom: bool,
    /// Warn of an added program that needs symbol versions its libraries lack, rather than
    /// refuse it.
    pub allow_abi_mismatch: bool,
    /// Record each package layer for a shared cache (see [`crate::shared`]).
    pub record_layers: bool,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            compression: Compression::Gzip,
            source_date_epoch: None,
            max_layers: 12,
            limits: Limits::BUILD,
            sbom: false,
            allow_abi_mismatch: false,
            record_layers: false,
        }
    }
}

/// One layer of a built image, for the report.
#[derive(Clone, Debug, Serialize)]
pub struct LayerReport {
    /// The blob's digest.
    pub digest: String,
    /// Its compressed size.
    pub size: u64,
    /// The size of its tar.
    pub uncompressed_size: u64,
    /// What made it, as the config's history says.
    pub created_by: String,
}

/// An image built for one architecture.
#[derive(Clone, Debug, Serialize)]
pub struct BuiltImage {
    /// Its Debian architecture.
    pub arch: String,
    /// Its manifest; reported by digest.
    #[serde(serialize_with = "digest_of")]
    pub manifest: Descriptor,
    /// The packages the lock installed in it.
    pub packages: usize,
    /// How many layers came from the base image, below those listed.
    pub base_layers: usize,
    /// How many package layers came from trees that earlier builds saved, unpacked.
    pub resumed_layers: usize,
    /// How many package layers a shared cache supplied whole: neither fetched, unpacked nor
    /// compressed.
    pub shared_layers: usize,
    /// Each package layer's identity and record, when the options ask for them.
    #[serde(skip)]
    pub recorded: Vec<(String, shared::Recorded)>,
    /// The layers bareboat wrote.
    pub layers: Vec<LayerReport>,
    /// When the options ask for it.
    #[serde(skip)]
    pub sbom: Option<Sbom>,
    /// The added programs that need symbol versions the image's libraries lack, when the
    /// options let such an image be built.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub abi: Vec<abi::AbiMismatch>,
}

fn digest_of<S: serde::Serializer>(d: &Descriptor, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(d.digest().as_ref())
}

/// One platform's build: the spec and lock it follows, and where it writes.
pub struct Platform<'a> {
    /// The spec.
    pub spec: &'a Spec,
    /// Its lock, whose packages are in `cache`.
    pub lock: &'a Lockfile,
    /// The Debian architecture to build.
    pub arch: &'a str,
    /// The package cache, with the cache's scratch space and saved trees.
    pub cache: &'a Cache,
    /// Where the layers, config and manifest go.
    pub layout: &'a Layout,
    /// How to build.
    pub options: &'a BuildOptions,
    /// The base image for this architecture, when the spec builds on one.
    pub base: Option<&'a BaseImage<'a>>,
    /// The lowest package layers, bottom first, that a shared cache supplies whole; only
    /// for a build on no base image.
    pub known: &'a [&'a shared::Entry],
}

/// What [`Platform::plan`] decides: the spec with the packages its files need, what the
/// layers hold, and each package layer's saved-tree key.
struct Plan<'a> {
    spec: Spec,
    added: Option<AddedFiles>,
    locked: Vec<&'a LockedPackage>,
    by_name: HashMap<&'a str, &'a LockedPackage>,
    groups: Vec<Group>,
    keys: Vec<String>,
    base_layers: usize,
    /// The layer that deletes paths from the base, right on it, if the spec removes any.
    removal: Option<usize>,
}

impl Plan<'_> {
    /// The tree layer of the first package group.
    fn first_group(&self) -> usize {
        self.base_layers + usize::from(self.removal.is_some())
    }
}

impl<'a> Platform<'a> {
    /// Builds the image of the spec for this architecture from the packages of the lock
    /// into the layout, and returns it. With a base, the image is built on that image's
    /// layers, which must be the spec's `base_image` for this architecture.
    pub fn build(&self) -> Result<BuiltImage, Error> {
        let plan = self.plan()?;
        let seal = SealKey::new(self.cache.seal_key()?);
        let trees = TreeCache::new(self.cache, seal.clone());
        let writer = layer_writer(self.options).memo(
            &self.cache.layers_dir(),
            &self.cache.layer_blobs_dir(),
            seal,
        );
        let (resumed, mut tree, shared) = self.start_tree(&plan, &trees)?;
        let start = Start {
            resumed,
            shared: shared.as_ref(),
        };
        let layers = self.write_layers(&plan, &mut tree, &start, &writer, &trees)?;
        let mut image = self.assemble(&plan, &tree, &layers, &start)?;
        if self.options.record_layers && self.base.is_none() {
            image.recorded = self.record(&plan, &tree, &layers, &writer)?;
        }
        Ok(image)
    }

    fn plan(&self) -> Result<Plan<'a>, Error> {
        let PackageLayers {
            spec,
            locked,
            by_name,
            groups,
            keys,
        } = package_layers(self.spec, self.lock, self.arch, self.options, self.base)?;
        let added = if spec.files.is_empty() {
            None
        } else {
            Some(AddedFiles::of(&spec, self.arch)?)
        };
        let base_layers = self.base.map_or(0, |b| b.layers.len());
        let removal = (!spec.remove.is_empty()).then_some(base_layers);
        Ok(Plan {
            spec,
            added,
            locked,
            by_name,
            groups,
            keys,
            base_layers,
            removal,
        })
    }

    /// The tree to build on: the deepest package layer an earlier build saved, or the
    /// layers a shared cache knows (when none is saved that deep), or the base image
    /// unpacked (less what the spec removes), or nothing. Returns how many package layers
    /// it holds already, and the shared layers it holds.
    fn start_tree(
        &self,
        plan: &Plan,
        trees: &TreeCache,
    ) -> Result<(usize, Rootfs, Option<shared::Resumed>), Error> {
        let spec = &plan.spec;
        let slicing = Slicing::new(spec.slice.defaults, &spec.slice.keep, &spec.slice.drop)?
            .keeping_only(&spec.keep_only);
        let setuid = policy::globs(&spec.keep_setuid).map_err(Error::KeepSetuid)?;
        let tmp = self.cache.root().join("tmp");
        let limits = self.options.limits;
        let known = self.known.len().min(plan.keys.len());
        let saved = (known.max(1) - 1..plan.keys.len())
            .rev()
            .find_map(|i| trees.load(&plan.keys[i]).map(|s| (i + 1, s)));
        if let Some((n, snapshot)) = saved {
            tracing::debug!(layers = n, "resuming from a saved tree");
            let mut tree = Rootfs::resume(&tmp, slicing, setuid, limits, snapshot)?;
            tree.set_base_layers(plan.base_layers);
            return Ok((n, tree, None));
        }
        if known > 0 && self.base.is_none() {
            tracing::debug!(layers = known, "resuming from a shared cache's layers");
            let (snapshot, resumed) = shared::resume(&self.known[..known], &tmp)?;
            let tree = Rootfs::resume(&tmp, slicing, setuid, limits, snapshot)?;
            return Ok((known, tree, Some(resumed)));
        }
        let mut tree = Rootfs::new(&tmp, slicing, setuid, limits)?;
        if let Some(base) = self.base {
            base.unpack(&mut tree)?;
            if !spec.remove.is_empty() {
                let layer = tree.push_layer();
                let mtime = tree.newest_below(layer);
                for path in &spec.remove {
                    tree.remove(layer, path, mtime)?;
                }
                tree.seal()?;
            }
        }
        Ok((0, tree, None))
    }

    /// Fills the tree layer by layer and writes each layer. Each finished layer is
    /// compressed on its own thread while the next one is unpacked; one write at a time
    /// keeps memory bounded however many layers there are. Unpacked trees are saved on a
    /// thread of their own, in order, while the build goes on.
    fn write_layers(
        &self,
        plan: &Plan,
        tree: &mut Rootfs,
        start: &Start,
        writer: &LayerWriter,
        trees: &TreeCache,
    ) -> Result<Vec<BuiltLayer>, Error> {
        let layout = self.layout;
        std::thread::scope(|scope| {
            let mut layers = Vec::new();
            let mut writing: Option<(ScopedJoinHandle<_>, String)> = None;
            // A layer is written from the tree, unless its blob is `known` already.
            let mut finish =
                |tree: &Rootfs, layer: usize, created_by: String, known: Option<&LayerBlob>| {
                    let done = writing.take().map(join_layer).transpose()?;
                    layers.extend(done);
                    if let Some(blob) = known {
                        layers.push(BuiltLayer {
                            created: format_rfc3339(blob.created),
                            blob: blob.clone(),
                            created_by,
                        });
                        return Ok(());
                    }
                    let entries = tree.layer_entries(layer)?;
                    let handle = scope.spawn(move || writer.write(layout, &entries));
                    writing = Some((handle, created_by));
                    Ok::<_, Error>(())
                };
            let (to_save, saves) = std::sync::mpsc::channel::<(&str, Snapshot)>();
            let saver = scope.spawn(move || {
                for (key, snapshot) in saves {
                    if let Err(e) = trees.save(key, &snapshot) {
                        tracing::warn!("could not save an unpacked layer for later builds: {e}");
                    }
                }
            });
            if let Some(layer) = plan.removal {
                let removed: Vec<String> =
                    plan.spec.remove.iter().map(|p| format!("/{p}")).collect();
                let created_by = format!("bareboat: remove {}", removed.join(", "));
                finish(tree, layer, created_by, None)?;
            }
            for (i, group) in plan.groups.iter().enumerate() {
                let created_by =
                    format!("bareboat: {} ({})", group.name, group.packages.join(", "));
                if i < start.resumed {
                    let known = start.shared.map(|s| &s.blobs[i]);
                    finish(tree, plan.first_group() + i, created_by, known)?;
                    continue;
                }
                let layer = self.package_layer(plan, tree, i == 0, &group.packages)?;
                finish(tree, layer, created_by, None)?;
                // A tree on a shared cache's layers holds contents that are not here: it is
                // not saved. A closed channel means the saver has stopped: the build goes on
                // without it.
                if start.shared.is_none() {
                    let _ = to_save.send((&plan.keys[i], tree.snapshot()));
                }
            }
            drop(to_save);
            if let Some((layer, created_by)) = self.config_layer(plan, tree)? {
                finish(tree, layer, created_by, None)?;
            }
            if let Some((layer, created_by)) = self.files_layer(plan, tree, start)? {
                finish(tree, layer, created_by, None)?;
            }
            layers.extend(writing.map(join_layer).transpose()?);
            saver.join().expect("the tree saver panicked");
            Ok(layers)
        })
    }

    /// Unpacks one group of packages into a new layer, with what their scripts would make.
    fn package_layer(
        &self,
        plan: &Plan,
        tree: &mut Rootfs,
        first: bool,
        packages: &[String],
    ) -> Result<usize, Error> {
        let layer = tree.push_layer();
        content::add_packages(tree, layer, packages, &plan.by_name, self.cache)?;
        let mtime = tree.newest(layer);
        if first && self.base.is_none() {
            content::synthesize_base(tree, layer, mtime)?;
        }
        content::synthesize_missing(tree, layer, &plan.spec, mtime, &plan.by_name, self.cache)?;
        tree.seal()?;
        Ok(layer)
    }

    /// The layer of the spec's accounts and CA certificates, if it has any.
    fn config_layer(
        &self,
        plan: &Plan,
        tree: &mut Rootfs,
    ) -> Result<Option<(usize, String)>, Error> {
        let spec = &plan.spec;
        if spec.users.is_empty() && spec.groups.is_empty() && spec.ca_certs.is_empty() {
            return Ok(None);
        }
        let layer = tree.push_layer();
        let mtime = tree.newest_below(layer);
        content::synthesize_config(tree, layer, spec, mtime, &plan.by_name, self.cache)?;
        let created_by = "bareboat: accounts and CA certificates from the spec".to_string();
        Ok(Some((layer, created_by)))
    }

    /// The layer of the spec's host files and the health probe, if it has either.
    fn files_layer(
        &self,
        plan: &Plan,
        tree: &mut Rootfs,
        start: &Start,
    ) -> Result<Option<(usize, String)>, Error> {
        let spec = &plan.spec;
        if plan.added.is_none() && spec.run.health.is_none() {
            return Ok(None);
        }
        let layer = tree.push_layer();
        let mut made = Vec::new();
        if let Some(added) = &plan.added {
            content::add_host_files(tree, layer, &added.entries)?;
            content::check_needs(tree, &added.analysis, self.arch)?;
            // Allowed, they are reported with the image (see `assemble`).
            if !self.options.allow_abi_mismatch {
                let recorded = start.shared.map(|s| &s.versions);
                let mismatches =
                    abi::check(tree, recorded, &added.analysis, self.arch, spec.release);
                if !mismatches.is_empty() {
                    return Err(Error::Abi(mismatches));
                }
            }
            let files: Vec<String> = spec.files.iter().map(|f| format!("/{}", f.dst)).collect();
            made.push(format!("files {}", files.join(", ")));
        }
        if spec.run.health.is_some() {
            let binary = probe::binary(self.arch).ok_or_else(|| Error::NoProbe {
                arch: self.arch.to_string(),
            })?;
            let mtime = tree.newest_below(layer);
            let content = Content::Bytes(binary);
            tree.add_file(layer, probe::PATH, content, 0o755, (0, 0), mtime)?;
            made.push(format!("health probe /{}", probe::PATH));
        }
        Ok(Some((layer, format!("bareboat: {}", made.join("; ")))))
    }

    /// Writes the config and manifest over `layers` (and the base's), and describes the
    /// image.
    fn assemble(
        &self,
        plan: &Plan,
        tree: &Rootfs,
        layers: &[BuiltLayer],
        start: &Start,
    ) -> Result<BuiltImage, Error> {
        let (spec, base, arch) = (&plan.spec, self.base, self.arch);
        // An image that adds nothing to its base is as old as the base.
        let created = match (layers.iter().map(|l| l.blob.created).max(), base) {
            (None, Some(b)) => b.config.created().clone().unwrap_or_default(),
            (newest, _) => format_rfc3339(newest.unwrap_or(0)),
        };
        let mut annotations = spec.run.annotations.clone();
        if let Some(base) = base {
            base.copy_layers(self.layout)?;
            annotations.extend(base.annotations());
        }
        let base_config = base.and_then(|b| b.config.config().as_ref());
        let image = ImageSpec {
            arch: arch.to_string(),
            run: run_config(spec, base_config, tree.exists(C_UTF8_CTYPE)),
            created,
            annotations,
            base: base.map(BaseImage::inherited),
        };
        let manifest = write_image(self.layout, &image, layers)?;
        let sbom = match self.options.sbom {
            true => Some(self.sbom(plan, tree, &manifest, &image.created)?),
            false => None,
        };
        Ok(BuiltImage {
            arch: arch.to_string(),
            manifest,
            layers: layers
                .iter()
                .map(|l| LayerReport {
                    digest: l.blob.digest.to_string(),
                    size: l.blob.size,
                    uncompressed_size: l.blob.uncompressed_size,
                    created_by: l.created_by.clone(),
                })
                .collect(),
            packages: plan.locked.len(),
            base_layers: plan.base_layers,
            resumed_layers: start.resumed,
            shared_layers: start.shared.map_or(0, |s| s.blobs.len()),
            recorded: Vec::new(),
            sbom,
            // Only an image built despite them has any: others were refused.
            abi: match (&plan.added, self.options.allow_abi_mismatch) {
                (Some(added), true) => {
                    let recorded = start.shared.map(|s| &s.versions);
                    abi::check(tree, recorded, &added.analysis, arch, spec.release)
                }
                _ => Vec::new(),
            },
        })
    }

    /// Each package layer's identity and record, for a shared cache: those a shared cache
    /// supplied as it recorded them, the others from the tree.
    fn record(
        &self,
        plan: &Plan,
        tree: &Rootfs,
        layers: &[BuiltLayer],
        writer: &LayerWriter,
    ) -> Result<Vec<(String, shared::Recorded)>, Error> {
        let mut out = Vec::new();
        for (i, key) in plan.keys.iter().enumerate() {
            let layer = plan.first_group() + i;
            let recorded = match self.known.get(i) {
                Some(entry) if entry.layer.digest == layers[layer].blob.digest.to_string() => {
                    entry.layer.clone()
                }
                _ => shared::record(tree, layer, &layers[layer].blob)?,
            };
            out.push((shared::identity(key, writer), recorded));
        }
        Ok(out)
    }

    /// What the SBOM says of the image: its packages with their licences, and the files
    /// the spec added, hashed.
    fn sbom(
        &self,
        plan: &Plan,
        tree: &Rootfs,
        manifest: &Descriptor,
        created: &str,
    ) -> Result<Sbom, Error> {
        let files = match &plan.added {
            Some(added) => content::added_files(&added.entries).map_err(Error::Hashing)?,
            None => Vec::new(),
        };
        Ok(Sbom {
            digest: manifest.digest().to_string(),
            arch: self.arch.to_string(),
            os: "debian".to_string(),
            os_version: plan.spec.release.version_id().to_string(),
            created: created.to_string(),
            packages: plan
                .locked
                .iter()
                .map(|p| {
                    let copyright = tree.read(&format!("usr/share/doc/{}/copyright", p.name));
                    SbomPackage::locked(p, copyright.as_deref())
                })
                .collect(),
            files,
        })
    }
}

/// The writer of the layers `options` ask for, without a memo.
fn layer_writer(options: &BuildOptions) -> LayerWriter {
    LayerWriter::new(options.compression, options.source_date_epoch)
}

/// The package layers of `spec` built from `lock` for `arch` on no base image, bottom
/// first: each one's identity (what a shared cache knows it by) and packages.
pub fn package_layer_identities(
    spec: &Spec,
    lock: &Lockfile,
    arch: &str,
    options: &BuildOptions,
) -> Result<Vec<(String, Vec<String>)>, Error> {
    let PackageLayers { groups, keys, .. } = package_layers(spec, lock, arch, options, None)?;
    let writer = layer_writer(options);
    let identities = keys.iter().map(|k| shared::identity(k, &writer));
    Ok(identities
        .zip(groups.into_iter().map(|g| g.packages))
        .collect())
}

/// The package layers of a spec for one architecture.
struct PackageLayers<'l> {
    /// The spec with the packages its files need.
    spec: Spec,
    /// The locked packages of the architecture.
    locked: Vec<&'l LockedPackage>,
    /// The same, by name.
    by_name: HashMap<&'l str, &'l LockedPackage>,
    /// How they are grouped into layers.
    groups: Vec<Group>,
    /// Each layer's saved-tree key.
    keys: Vec<String>,
}

/// The package layers of `spec` built from `lock` for `arch`, on `base` if any.
fn package_layers<'l>(
    spec: &Spec,
    lock: &'l Lockfile,
    arch: &str,
    options: &BuildOptions,
    base: Option<&BaseImage>,
) -> Result<PackageLayers<'l>, Error> {
    let spec = spec.with_auto_deps(&lock::auto_packages(lock, arch));
    let locked: Vec<&LockedPackage> = lock.packages.iter().filter(|p| p.target == arch).collect();
    // A spec of files alone (slim carrying another distribution's) has no packages.
    if locked.is_empty() && base.is_none() && !spec.packages.is_empty() {
        return Err(Error::NoPackages {
            arch: arch.to_string(),
        });
    }
    let by_name: HashMap<&str, &LockedPackage> =
        locked.iter().map(|p| (p.name.as_str(), *p)).collect();
    let groups = split_largest(group_packages(&spec, &locked), &by_name, options.max_layers);
    let keys = tree_keys(&spec, arch, &options.limits, &groups, &by_name, base);
    Ok(PackageLayers {
        spec,
        locked,
        by_name,
        groups,
        keys,
    })
}

/// Where a build starts: how many package layers its tree holds already, and the layers a
/// shared cache supplied, when it did.
struct Start<'r> {
    resumed: usize,
    shared: Option<&'r shared::Resumed>,
}

/// Waits for a layer's compression thread and names what made the layer.
fn join_layer(
    (handle, created_by): (
        ScopedJoinHandle<'_, Result<LayerBlob, bareboat_oci::Error>>,
        String,
    ),
) -> Result<BuiltLayer, Error> {
    let blob = handle.join().expect("a layer writer panicked")?;
    Ok(BuiltLayer {
        created: format_rfc3339(blob.created),
        blob,
        created_by,
    })
}
