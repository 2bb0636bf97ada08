//! From a spec and its lock to an image: packages grouped into layers along the catalogue,
//! unpacked, completed with synthesized files, and written as deterministic layers.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Read;
use std::thread::ScopedJoinHandle;

use bareboat_apt::cache::Cache;
use bareboat_apt::dpkg::{MERGED_DIRS, STATUS_D};
use bareboat_apt::lockfile::{LockedPackage, Lockfile};
use bareboat_apt::relation::{RelationError, parse_relations};
use bareboat_apt::release::format_rfc3339;
use bareboat_oci::image::{BuiltLayer, ImageSpec, RunConfig, write_image};
use bareboat_oci::layer::{LayerBlob, LayerWriter};
use bareboat_oci::layout::Layout;
use bareboat_oci::media::Compression;
use bareboat_oci::seal::SealKey;
use bareboat_oci::tar_bounds::BoundedTar;
use oci_spec::image::{Config, Descriptor};
use serde::Serialize;

use crate::base::BaseImage;
use crate::catalog::Variant;
use crate::deps::{self, Analysis, FileKind};
use crate::hostfiles::{HostEntry, HostKind};
use crate::lock::{self, AddedFiles};
use crate::policy::{self, Slicing};
use crate::rootfs::{Content, NodeKind, Rootfs, Snapshot, TreeError};
use crate::spec::Spec;
use crate::treecache::TreeCache;
use crate::{jks, probe, runtimes, synth};
use bareboat_oci::overlay::Limits;
use bareboat_sbom::{Sbom, SbomFile, SbomPackage};

/// How to build.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    pub compression: Compression,
    /// Clamps every mtime, when set.
    pub source_date_epoch: Option<u64>,
    /// The most layers an image may have; the spec's biggest packages get layers of their
    /// own while the budget lasts.
    pub max_layers: usize,
    pub limits: Limits,
    /// Collect what an SBOM says (package licences, added files' digests).
    pub sbom: bool,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            compression: Compression::Gzip,
            source_date_epoch: None,
            max_layers: 12,
            limits: Limits::BUILD,
            sbom: false,
        }
    }
}

/// A build failure.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error(transparent)]
    Apt(#[from] bareboat_apt::Error),
    #[error(transparent)]
    Oci(#[from] bareboat_oci::Error),
    #[error("{0}")]
    Spec(String),
}

/// One layer of a built image, for the report.
#[derive(Clone, Debug, Serialize)]
pub struct LayerReport {
    pub digest: String,
    pub size: u64,
    pub uncompressed_size: u64,
    pub created_by: String,
}

/// An image built for one architecture.
#[derive(Clone, Debug)]
pub struct BuiltImage {
    pub arch: String,
    pub manifest: Descriptor,
    pub layers: Vec<LayerReport>,
    pub packages: usize,
    /// How many layers came from the base image, below those listed.
    pub base_layers: usize,
    /// How many package layers came from trees that earlier builds saved, unpacked.
    pub resumed_layers: usize,
    /// When the options ask for it.
    pub sbom: Option<Sbom>,
}

/// A group of packages that becomes one layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub packages: Vec<String>,
}

/// Builds the image of `spec` for `arch` from the packages of `lock` (already in `cache`)
/// into `layout`, and returns its manifest descriptor.
/// With a `base`, the image is built on that image's layers, which must be the spec's
/// `base_image` for this architecture.
pub fn build_arch(
    spec: &Spec,
    lock: &Lockfile,
    arch: &str,
    cache: &Cache,
    layout: &Layout,
    opts: &BuildOptions,
    base: Option<&BaseImage>,
) -> Result<BuiltImage, BuildError> {
    let spec = &spec.with_auto_deps(&lock::auto_packages(lock, arch));
    let added = if spec.files.is_empty() {
        None
    } else {
        Some(AddedFiles::of(spec, arch).map_err(|e| BuildError::Spec(e.to_string()))?)
    };
    let locked: Vec<&LockedPackage> = lock.packages.iter().filter(|p| p.target == arch).collect();
    if locked.is_empty() && base.is_none() {
        return Err(BuildError::Spec(format!(
            "the lock has no packages for {arch}\n  hint: run `bareboat lock` with this architecture"
        )));
    }
    let by_name: HashMap<&str, &LockedPackage> =
        locked.iter().map(|p| (p.name.as_str(), *p)).collect();
    let groups = split_largest(group_packages(spec, &locked), &by_name, opts.max_layers);
    let slicing = Slicing::new(spec.slice.defaults, &spec.slice.keep, &spec.slice.drop)
        .map_err(BuildError::Spec)?
        .keeping_only(&spec.keep_only);
    let setuid = policy::globs(&spec.keep_setuid)
        .map_err(|e| BuildError::Spec(format!("keep_setuid: {e}")))?;
    let tmp = cache.root().join("tmp");
    let seal = SealKey::new(cache.seal_key()?);
    let trees = TreeCache::new(cache, seal.clone());
    let keys = tree_keys(spec, arch, opts, &groups, &by_name, base);
    // Resume from the deepest package layer an earlier build saved.
    let saved = (0..keys.len())
        .rev()
        .find_map(|i| trees.load(&keys[i]).map(|s| (i + 1, s)));
    let base_layers = base.map_or(0, |b| b.layers.len());
    let (resumed, mut tree) = match saved {
        Some((n, snapshot)) => {
            tracing::debug!(layers = n, "resuming from a saved tree");
            let mut tree = Rootfs::resume(&tmp, slicing, setuid, opts.limits, snapshot)?;
            tree.set_base_layers(base_layers);
            (n, tree)
        }
        None => {
            let mut tree = Rootfs::new(&tmp, slicing, setuid, opts.limits)?;
            if let Some(base) = base {
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
            (0, tree)
        }
    };
    // The layer that deletes paths from the base sits right on it.
    let removal = (!spec.remove.is_empty()).then_some(base_layers);
    let first_group = base_layers + usize::from(removal.is_some());
    let writer =
        LayerWriter::new(opts.compression, opts.source_date_epoch).memo(&cache.layers_dir(), seal);
    // Each finished layer is compressed on its own thread while the next one is unpacked;
    // one write at a time keeps memory bounded however many layers there are.
    let layers = std::thread::scope(|scope| -> Result<Vec<BuiltLayer>, BuildError> {
        let mut layers = Vec::new();
        let mut writing: Option<(ScopedJoinHandle<_>, String)> = None;
        let mut finish = |tree: &Rootfs, layer: usize, created_by: String| {
            let done = writing.take().map(join_layer).transpose()?;
            layers.extend(done);
            let entries = tree.layer_entries(layer);
            let writer = &writer;
            writing = Some((
                scope.spawn(move || writer.write(layout, &entries)),
                created_by,
            ));
            Ok::<_, BuildError>(())
        };
        // Unpacked trees are saved on a thread of their own, in order, while the build
        // goes on.
        let (to_save, saves) = std::sync::mpsc::channel::<(&str, Snapshot)>();
        let trees = &trees;
        let saver = scope.spawn(move || {
            for (key, snapshot) in saves {
                if let Err(e) = trees.save(key, &snapshot) {
                    tracing::warn!("could not save an unpacked layer for later builds: {e}");
                }
            }
        });
        if let Some(layer) = removal {
            let removed: Vec<String> = spec.remove.iter().map(|p| format!("/{p}")).collect();
            finish(
                &tree,
                layer,
                format!("bareboat: remove {}", removed.join(", ")),
            )?;
        }
        for (i, group) in groups.iter().enumerate() {
            let created_by = format!("bareboat: {} ({})", group.name, group.packages.join(", "));
            if i < resumed {
                finish(&tree, first_group + i, created_by)?;
                continue;
            }
            let layer = tree.push_layer();
            add_packages(&mut tree, layer, &group.packages, &by_name, cache)?;
            let mtime = tree.newest(layer);
            if i == 0 && base.is_none() {
                synthesize_base(&mut tree, layer, mtime)?;
            }
            synthesize_missing(&mut tree, layer, spec, mtime, &by_name, cache)?;
            tree.seal()?;
            finish(&tree, layer, created_by)?;
            // A closed channel means the saver has stopped: the build goes on without it.
            let _ = to_save.send((&keys[i], tree.snapshot()));
        }
        drop(to_save);
        if !spec.users.is_empty() || !spec.groups.is_empty() || !spec.ca_certs.is_empty() {
            let layer = tree.push_layer();
            let mtime = tree.newest_below(layer);
            synthesize_config(&mut tree, layer, spec, mtime, &by_name, cache)?;
            let created_by = "bareboat: accounts and CA certificates from the spec".to_string();
            finish(&tree, layer, created_by)?;
        }
        if added.is_some() || spec.run.health.is_some() {
            let layer = tree.push_layer();
            let mut made = Vec::new();
            if let Some(added) = &added {
                add_host_files(&mut tree, layer, &added.entries)?;
                check_needs(&tree, &added.analysis, arch)?;
                let files: Vec<String> = spec.files.iter().map(|f| format!("/{}", f.dst)).collect();
                made.push(format!("files {}", files.join(", ")));
            }
            if spec.run.health.is_some() {
                let binary = probe::binary(arch).ok_or_else(|| {
                    BuildError::Spec(format!(
                        "this bareboat was built without the {arch} health probe\n  hint: install gcc-aarch64-linux-gnu and libc6-dev-arm64-cross (or gcc for amd64) and rebuild bareboat"
                    ))
                })?;
                let mtime = tree.newest_below(layer);
                let content = Content::Bytes(binary);
                tree.add_file(layer, probe::PATH, content, 0o755, (0, 0), mtime)?;
                made.push(format!("health probe /{}", probe::PATH));
            }
            finish(&tree, layer, format!("bareboat: {}", made.join("; ")))?;
        }
        layers.extend(writing.map(join_layer).transpose()?);
        saver.join().expect("the tree saver panicked");
        Ok(layers)
    })?;
    // An image that adds nothing to its base is as old as the base.
    let created = match (layers.iter().map(|l| l.blob.created).max(), base) {
        (None, Some(b)) => b.config.created().clone().unwrap_or_default(),
        (newest, _) => format_rfc3339(newest.unwrap_or(0)),
    };
    let mut annotations = spec.run.annotations.clone();
    if let Some(base) = base {
        base.copy_layers(layout)?;
        annotations.extend(base.annotations());
    }
    let image = ImageSpec {
        arch: arch.to_string(),
        run: run_config(
            spec,
            base.and_then(|b| b.config.config().as_ref()),
            tree.exists(C_UTF8_CTYPE),
        ),
        created,
        annotations,
        base: base.map(BaseImage::inherited),
    };
    let manifest = write_image(layout, &image, &layers)?;
    let sbom = if opts.sbom {
        let files = match &added {
            Some(added) => added_files(&added.entries)
                .map_err(|e| BuildError::Spec(format!("hashing the added files: {e}")))?,
            None => Vec::new(),
        };
        Some(Sbom {
            digest: manifest.digest().to_string(),
            arch: arch.to_string(),
            os: "debian".to_string(),
            os_version: spec.release.version_id().to_string(),
            created: image.created.clone(),
            packages: locked
                .iter()
                .map(|p| {
                    let copyright = tree.read(&format!("usr/share/doc/{}/copyright", p.name));
                    SbomPackage::locked(p, copyright.as_deref())
                })
                .collect(),
            files,
        })
    } else {
        None
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
        packages: locked.len(),
        base_layers,
        resumed_layers: resumed,
        sbom,
    })
}

/// The saved-tree key of each package layer: everything that shapes unpacking, and the
/// packages of the layer and those below.
fn tree_keys(
    spec: &Spec,
    arch: &str,
    opts: &BuildOptions,
    groups: &[Group],
    by_name: &HashMap<&str, &LockedPackage>,
    base: Option<&BaseImage>,
) -> Vec<String> {
    let mut settings = format!(
        "arch {arch}\nslice {:?} {:?} {:?}\nkeep only {:?}\nkeep setuid {:?}\nlimits {:?}\nrelease {} {}\n",
        spec.slice.defaults,
        spec.slice.keep,
        spec.slice.drop,
        spec.keep_only,
        spec.keep_setuid,
        opts.limits,
        spec.release.version_id(),
        spec.release.codename(),
    );
    if let Some(base) = base {
        let digest = base.manifest.digest();
        settings.push_str(&format!("base {digest}\nremove {:?}\n", spec.remove));
    }
    let layers = groups.iter().map(|g| {
        g.packages
            .iter()
            .map(|name| (name.as_str(), by_name[name.as_str()].sha256.as_str()))
            .collect()
    });
    TreeCache::keys(&settings, layers)
}

/// Unpacks `names` into `layer`, each with its status.d entry and md5sums, which carry the
/// layer's newest mtime.
fn add_packages(
    tree: &mut Rootfs,
    layer: usize,
    names: &[String],
    by_name: &HashMap<&str, &LockedPackage>,
    cache: &Cache,
) -> Result<(), BuildError> {
    let mut unpacked = Vec::new();
    for name in names {
        let p = by_name[name.as_str()];
        let deb = cache
            .open_deb(&p.sha256)
            .map_err(|e| e.with_context(&p.name))?;
        let control = deb.control().to_string();
        let replaces =
            replaced_packages(deb.field("Replaces").unwrap_or_default()).map_err(|source| {
                bareboat_apt::Error::Relation {
                    package: p.name.clone(),
                    source,
                }
            })?;
        let mut files = tree.add_package(layer, &p.name, &replaces, deb.data_stream())?;
        if p.name == "busybox-static" {
            place_busybox(tree, layer, &mut files.md5sums)?;
        }
        unpacked.push((p, control, files));
    }
    let mtime = tree.newest(layer);
    for (p, control, files) in &unpacked {
        let status =
            synth::status_paragraph(control, &p.name, &p.version, &p.source, &p.source_version);
        add_text(
            tree,
            layer,
            &format!("{STATUS_D}/{}", p.name),
            status.as_bytes(),
            mtime,
        )?;
        let sums = synth::md5sums(&files.md5sums);
        add_text(
            tree,
            layer,
            &format!("{STATUS_D}/{}.md5sums", p.name),
            sums.as_bytes(),
            mtime,
        )?;
    }
    Ok(())
}

/// Waits for a layer's compression thread and names what made the layer.
fn join_layer(
    (handle, created_by): (
        ScopedJoinHandle<'_, Result<LayerBlob, bareboat_oci::Error>>,
        String,
    ),
) -> Result<BuiltLayer, BuildError> {
    let blob = handle.join().expect("a layer writer panicked")?;
    Ok(BuiltLayer {
        created: format_rfc3339(blob.created),
        blob,
        created_by,
    })
}

/// Assigns each locked package to the lowest level whose requested packages pull it in,
/// following the lock's "dependency of" reasons, so that a level's layer holds the same
/// packages in every image stacked on it.
pub fn group_packages(spec: &Spec, locked: &[&LockedPackage]) -> Vec<Group> {
    let mut dependents: HashMap<&str, Vec<&str>> = HashMap::new();
    for p in locked {
        for r in &p.reasons {
            if let Some(by) = r.strip_prefix("dependency of ") {
                dependents.entry(by).or_default().push(&p.name);
            }
        }
    }
    let present: HashSet<&str> = locked.iter().map(|p| p.name.as_str()).collect();
    let mut assigned: HashSet<&str> = HashSet::new();
    let mut groups = Vec::new();
    for level in &spec.levels {
        let mut members = BTreeSet::new();
        let mut queue: Vec<&str> = level
            .roots
            .iter()
            .map(String::as_str)
            .filter(|r| present.contains(r))
            .collect();
        // A requested virtual package is carried by its provider.
        for p in locked {
            if p.reasons.iter().any(|r| {
                r.strip_prefix("provides requested ")
                    .is_some_and(|v| level.roots.iter().any(|x| x == v))
            }) {
                queue.push(&p.name);
            }
        }
        while let Some(name) = queue.pop() {
            if level.exclude.iter().any(|x| x == name) || !assigned.insert(name) {
                continue;
            }
            members.insert(name.to_string());
            queue.extend(dependents.get(name).into_iter().flatten().copied());
        }
        groups.push(Group {
            name: level.name.clone(),
            packages: members.into_iter().collect(),
        });
    }
    let rest: BTreeSet<String> = locked
        .iter()
        .filter(|p| !assigned.contains(p.name.as_str()))
        .map(|p| p.name.clone())
        .collect();
    if let Some(last) = groups.last_mut() {
        last.packages.extend(rest);
        last.packages.sort();
    }
    groups.retain(|g| !g.packages.is_empty());
    groups
}

/// Within the budget of `max_layers`, gives the spec's own biggest packages layers of their
/// own, biggest first, so that an update to one of them leaves the others' layers alone.
fn split_largest(
    mut groups: Vec<Group>,
    by_name: &HashMap<&str, &LockedPackage>,
    max_layers: usize,
) -> Vec<Group> {
    let Some(top) = groups.last() else {
        return groups;
    };
    if top.name != "packages" || top.packages.len() < 2 {
        return groups;
    }
    // Room for the spec's config and files layers is kept.
    let spare = max_layers.saturating_sub(groups.len() + 2);
    let top = groups.pop().expect("checked above");
    let mut by_size: Vec<&String> = top.packages.iter().collect();
    by_size.sort_by_key(|n| (std::cmp::Reverse(by_name[n.as_str()].size), n.as_str()));
    let own: Vec<String> = by_size
        .iter()
        .take(spare.min(top.packages.len() - 1))
        .filter(|n| by_name[n.as_str()].size >= 1 << 20)
        .map(|n| n.to_string())
        .collect();
    let rest: Vec<String> = top
        .packages
        .iter()
        .filter(|n| !own.contains(n))
        .cloned()
        .collect();
    if !rest.is_empty() {
        groups.push(Group {
            name: "packages".into(),
            packages: rest,
        });
    }
    for n in own {
        groups.push(Group {
            name: n.clone(),
            packages: vec![n],
        });
    }
    groups
}

/// The package names a `Replaces:` field lists.
fn replaced_packages(field: &str) -> Result<Vec<String>, RelationError> {
    Ok(parse_relations(field)?
        .into_iter()
        .flatten()
        .map(|alt| alt.name)
        .collect())
}

/// Moves busybox-static's binary to `/busybox/busybox` and links the applets beside it.
fn place_busybox(
    tree: &mut Rootfs,
    layer: usize,
    md5sums: &mut [(String, String)],
) -> Result<(), TreeError> {
    const FROM: &str = "usr/bin/busybox";
    const TO: &str = "busybox/busybox";
    let mtime = tree.newest(layer);
    tree.rename(layer, FROM, TO)?;
    for entry in md5sums.iter_mut().filter(|(p, _)| p == FROM) {
        entry.0 = TO.to_string();
    }
    tree.add_dir(layer, "busybox", 0o755, (0, 0), mtime)?;
    for applet in synth::BUSYBOX_APPLETS {
        tree.add_symlink(layer, &format!("busybox/{applet}"), "busybox", mtime)?;
    }
    Ok(())
}

/// Adds a root-owned, world-readable file that bareboat writes.
fn add_text(
    tree: &mut Rootfs,
    layer: usize,
    path: &str,
    content: &[u8],
    mtime: u64,
) -> Result<(), TreeError> {
    tree.add_file(layer, path, Content::Bytes(content), 0o644, (0, 0), mtime)
}

/// The accounts and directories every image has, in its lowest layer.
fn synthesize_base(tree: &mut Rootfs, layer: usize, mtime: u64) -> Result<(), TreeError> {
    if !tree.exists("etc/passwd") {
        add_text(
            tree,
            layer,
            "etc/passwd",
            synth::passwd(&[]).as_bytes(),
            mtime,
        )?;
    }
    if !tree.exists("etc/group") {
        let group = synth::group(&[], &[]);
        add_text(tree, layer, "etc/group", group.as_bytes(), mtime)?;
    }
    if !tree.exists("etc/nsswitch.conf") {
        add_text(
            tree,
            layer,
            "etc/nsswitch.conf",
            synth::NSSWITCH.as_bytes(),
            mtime,
        )?;
    }
    if !tree.exists("home") {
        tree.add_dir(layer, "home", 0o755, (0, 0), mtime)?;
    }
    tree.add_dir(
        layer,
        "home/nonroot",
        0o700,
        (synth::NONROOT, synth::NONROOT),
        mtime,
    )?;
    if !tree.exists("root") {
        tree.add_dir(layer, "root", 0o700, (0, 0), mtime)?;
    }
    if !tree.exists("tmp") {
        tree.add_dir(layer, "tmp", 0o1777, (0, 0), mtime)?;
    }
    Ok(())
}

/// What a layer's packages make derivable and no package shipped: merged-/usr links, the
/// CA bundle, os-release and debian_version, and what runtimes' scripts would make.
fn synthesize_missing(
    tree: &mut Rootfs,
    layer: usize,
    spec: &Spec,
    mtime: u64,
    by_name: &HashMap<&str, &LockedPackage>,
    cache: &Cache,
) -> Result<(), BuildError> {
    for dir in MERGED_DIRS {
        if tree.get(dir).is_none() && tree.get(&format!("usr/{dir}")).is_some() {
            tree.add_symlink(layer, dir, &format!("usr/{dir}"), mtime)?;
        }
    }
    if !tree.exists(BUNDLE) && tree.get(&format!("{STATUS_D}/{CA_PACKAGE}")).is_some() {
        let certs = package_certificates(tree, by_name, cache)?;
        if !certs.is_empty() {
            let bundle = synth::ca_bundle(certs.iter().map(|(_, pem)| pem.as_slice()));
            add_text(tree, layer, BUNDLE, &bundle, mtime)?;
        }
    }
    if tree.get(&format!("{STATUS_D}/base-files")).is_some() {
        if !tree.exists("usr/lib/os-release") && !tree.exists("etc/os-release") {
            let text = synth::os_release(spec.release.version_id(), spec.release.codename());
            add_text(tree, layer, "usr/lib/os-release", text.as_bytes(), mtime)?;
        }
        if !tree.exists("etc/os-release") {
            tree.add_symlink(layer, "etc/os-release", "../usr/lib/os-release", mtime)?;
        }
        if !tree.exists("etc/debian_version") {
            let text = format!("{}\n", spec.release.version_id());
            add_text(tree, layer, "etc/debian_version", text.as_bytes(), mtime)?;
        }
    }
    let mut links = runtimes::alternatives(tree);
    links.extend(runtimes::php_config(tree));
    for link in links {
        tree.add_symlink(layer, &link.path, &link.target, mtime)?;
    }
    let mut stores = runtimes::java_trust_stores(tree);
    stores.retain(|s| !tree.exists(s));
    if !stores.is_empty() {
        let certs = package_certificates(tree, by_name, cache)?;
        write_trust_stores(tree, layer, &stores, &certs, &[], mtime)?;
    }
    Ok(())
}

/// A spec's CA certificate file, or one of a package's, is far smaller than this (Debian's
/// whole bundle is 220 kB).
const CA_CERTS_LIMIT: u64 = 4 << 20;

/// The regular files among the added entries, for the SBOM, hashed from the host as they
/// stream.
fn added_files(entries: &[HostEntry]) -> std::io::Result<Vec<SbomFile>> {
    let mut files = entries
        .iter()
        .filter(|e| matches!(e.kind, HostKind::File))
        .map(|e| SbomFile::hashed(&e.dst, &e.src))
        .collect::<std::io::Result<Vec<_>>>()?;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// A package's data archive, as a tar reader that holds no long name or PAX record of more
/// than [`bareboat_oci::tar_bounds::MAX_RECORD`] bytes.
pub fn package_tar<'a, R: std::io::Read + Send + 'a>(
    deb: bareboat_apt::deb::Deb<R>,
) -> tar::Archive<BoundedTar<Box<dyn std::io::Read + Send + 'a>>> {
    tar::Archive::new(BoundedTar::new(deb.data_stream()))
}

/// The CA bundle's path.
const BUNDLE: &str = "etc/ssl/certs/ca-certificates.crt";
/// The package whose certificates make the bundle.
const CA_PACKAGE: &str = "ca-certificates";
/// The file of glibc's C.UTF-8 locale that setlocale cannot do without.
const C_UTF8_CTYPE: &str = "usr/lib/locale/C.utf8/LC_CTYPE";

/// The certificates ca-certificates ships, with their paths, in the order
/// update-ca-certificates reads them. They are read from the package's verified `.deb`,
/// since an image may keep only the bundle made of them; on a base image that installed
/// the package, the base's bundle stands for them.
fn package_certificates(
    tree: &Rootfs,
    by_name: &HashMap<&str, &LockedPackage>,
    cache: &Cache,
) -> Result<Vec<(String, Vec<u8>)>, BuildError> {
    let Some(p) = by_name.get(CA_PACKAGE) else {
        let bundle = tree.read(BUNDLE).map(|pem| (BUNDLE.to_string(), pem));
        return Ok(bundle.into_iter().collect());
    };
    let origin = format!("package {}", p.name);
    let io_err = |source| TreeError::Io {
        origin: origin.clone(),
        source,
    };
    let deb = cache
        .open_deb(&p.sha256)
        .map_err(|e| e.with_context(&p.name))?;
    let mut certs = Vec::new();
    for entry in package_tar(deb).entries().map_err(io_err)? {
        let mut entry = entry.map_err(io_err)?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let path = bareboat_oci::overlay::normalize(&raw).map_err(|reason| TreeError::Refused {
            origin: origin.clone(),
            path: raw,
            reason,
        })?;
        if entry.header().entry_type().is_file()
            && path.starts_with("usr/share/ca-certificates/")
            && path.ends_with(".crt")
        {
            if entry.size() > CA_CERTS_LIMIT {
                return Err(TreeError::Refused {
                    origin: origin.clone(),
                    path,
                    reason: format!("a certificate of more than {CA_CERTS_LIMIT} bytes"),
                }
                .into());
            }
            let mut pem = Vec::new();
            entry.read_to_end(&mut pem).map_err(io_err)?;
            certs.push((path, pem));
        }
    }
    certs.sort();
    Ok(certs)
}

/// Writes Java keystores at `stores` (if any) holding `package` certificates (path and
/// PEM, named as ca-certificates-java names them: `debian:NAME.pem`) and `extra` ones
/// (file name and PEM text).
fn write_trust_stores(
    tree: &mut Rootfs,
    layer: usize,
    stores: &[String],
    package: &[(String, Vec<u8>)],
    extra: &[(String, String)],
    mtime: u64,
) -> Result<(), BuildError> {
    if stores.is_empty() {
        return Ok(());
    }
    let mut certs = Vec::new();
    let named = package
        .iter()
        .map(|(path, pem)| {
            let file = path.rsplit('/').next().unwrap_or_default();
            let name = format!("debian:{}.pem", file.trim_end_matches(".crt"));
            (name, String::from_utf8_lossy(pem).into_owned())
        })
        .chain(extra.iter().cloned());
    for (name, pem) in named {
        let ders = jks::pem_certificates(&pem)
            .map_err(|e| BuildError::Spec(format!("Java keystore: certificate {name}: {e}")))?;
        jks::add_named(&mut certs, &name, ders);
    }
    let keystore = jks::keystore(&certs, mtime * 1000);
    for store in stores {
        add_text(tree, layer, store, &keystore, mtime)?;
    }
    Ok(())
}

/// The spec's accounts and CA certificates, in a layer of their own so lower layers stay
/// shared. The certificates join the CA bundle below and any Java keystore.
fn synthesize_config(
    tree: &mut Rootfs,
    layer: usize,
    spec: &Spec,
    mtime: u64,
    by_name: &HashMap<&str, &LockedPackage>,
    cache: &Cache,
) -> Result<(), BuildError> {
    if !spec.users.is_empty() || !spec.groups.is_empty() {
        let passwd = synth::passwd(&spec.users);
        let group = synth::group(&spec.users, &spec.groups);
        add_text(tree, layer, "etc/passwd", passwd.as_bytes(), mtime)?;
        add_text(tree, layer, "etc/group", group.as_bytes(), mtime)?;
        for u in &spec.users {
            let home = synth::home_of(u);
            let home = home.trim_start_matches('/');
            if !home.is_empty() && !tree.exists(home) {
                tree.add_dir(layer, home, 0o700, (u.uid, u.gid.unwrap_or(u.uid)), mtime)?;
            }
        }
    }
    if !spec.ca_certs.is_empty() {
        let mut extra = Vec::new();
        for path in &spec.ca_certs {
            let bytes = bareboat_apt::hostfile::read_capped(path, CA_CERTS_LIMIT)
                .map_err(|e| BuildError::Spec(format!("ca_certs {}: {e}", path.display())))?;
            let text = String::from_utf8(bytes).map_err(|_| {
                BuildError::Spec(format!("ca_certs {}: not PEM text", path.display()))
            })?;
            synth::check_pem_certificates(&text)
                .map_err(|e| BuildError::Spec(format!("ca_certs {}: {e}", path.display())))?;
            let stem = path.file_stem().unwrap_or_default().to_string_lossy();
            extra.push((stem.into_owned(), text));
        }
        let below = tree.read(BUNDLE);
        let pems = below
            .iter()
            .map(Vec::as_slice)
            .chain(extra.iter().map(|(_, text)| text.as_bytes()));
        add_text(tree, layer, BUNDLE, &synth::ca_bundle(pems), mtime)?;
        let stores = runtimes::java_trust_stores(tree);
        if !stores.is_empty() {
            let certs = package_certificates(tree, by_name, cache)?;
            write_trust_stores(tree, layer, &stores, &certs, &extra, mtime)?;
        }
    }
    Ok(())
}

/// Copies the spec's host files and directories into `layer`.
fn add_host_files(
    tree: &mut Rootfs,
    layer: usize,
    entries: &[HostEntry],
) -> Result<(), BuildError> {
    for e in entries {
        let owner = (e.uid, e.gid);
        match &e.kind {
            HostKind::Dir => tree.add_dir(layer, &e.dst, e.mode, owner, e.mtime)?,
            HostKind::Symlink(target) => tree.add_symlink(layer, &e.dst, target, e.mtime)?,
            HostKind::File => {
                let content = Content::Host(&e.src);
                tree.add_file(layer, &e.dst, content, e.mode, owner, e.mtime)?
            }
        }
    }
    Ok(())
}

/// Checks that every added program finds its interpreter and libraries in the finished
/// tree, as the dynamic loader would look for them.
fn check_needs(tree: &Rootfs, analysis: &[Analysis], arch: &str) -> Result<(), BuildError> {
    let present = |path: &str| {
        tree.resolve(path)
            .is_some_and(|p| matches!(tree.get(&p).map(|n| &n.kind), Some(NodeKind::File { .. })))
    };
    for a in analysis {
        let FileKind::Dynamic {
            interpreter,
            needed,
            search,
            ..
        } = &a.kind
        else {
            continue;
        };
        let missing = interpreter
            .iter()
            .filter(|i| !present(i))
            .chain(needed.iter().filter(|soname| {
                !deps::search_paths(soname, search, arch)
                    .iter()
                    .any(|p| present(p))
            }))
            .next();
        if let Some(need) = missing {
            return Err(BuildError::Spec(format!(
                "{} needs {need}, which the image lacks\n  hint: the lock predates this need: run `bareboat lock` to add its package",
                a.path
            )));
        }
    }
    Ok(())
}

/// The image config: numeric user, PATH, SSL_CERT_FILE and, in an image with glibc's
/// C.UTF-8 locale (`with_locale`), LANG, then the spec's settings. On an image base, the
/// base's settings stand where bareboat's defaults would, as with a Dockerfile's FROM.
fn run_config(spec: &Spec, base: Option<&Config>, with_locale: bool) -> RunConfig {
    let root = matches!(spec.variant, Variant::Root | Variant::DebugRoot);
    let base_user = base
        .and_then(|c| c.user().clone())
        .filter(|u| !u.is_empty());
    let user = match (&spec.run.user, base_user) {
        (Some(u), _) => u.clone(),
        (None, Some(u)) => u,
        (None, None) if root => "0".to_string(),
        (None, None) => synth::NONROOT.to_string(),
    };
    let mut env = match base {
        Some(c) => c.env().clone().unwrap_or_default(),
        None => {
            let mut path =
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string();
            if spec.variant.is_debug() {
                path.push_str(":/busybox");
            }
            let mut env = vec![format!("PATH={path}"), format!("SSL_CERT_FILE=/{BUNDLE}")];
            if with_locale {
                env.push("LANG=C.UTF-8".to_string());
            }
            env
        }
    };
    // The spec's variables replace those of the same name, in one pass: a spec may set
    // thousands.
    let overridden: HashSet<&str> = spec.run.env.iter().map(|(k, _)| k.as_str()).collect();
    env.retain(|e| !overridden.contains(e.split_once('=').map_or(e.as_str(), |(k, _)| k)));
    env.extend(spec.run.env.iter().map(|(k, v)| format!("{k}={v}")));
    let base_entrypoint = base.and_then(|c| c.entrypoint().clone());
    let entrypoint = match &spec.run.entrypoint {
        Some(e) => e.clone(),
        None if base.is_some() => base_entrypoint.unwrap_or_default(),
        None if spec.variant.is_debug() => vec!["/busybox/sh".into()],
        None => Vec::new(),
    };
    // A new entrypoint drops the base's arguments for the old one.
    let cmd = match (&spec.run.cmd, &spec.run.entrypoint) {
        (Some(c), _) => c.clone(),
        (None, None) => base.and_then(|c| c.cmd().clone()).unwrap_or_default(),
        (None, Some(_)) => Vec::new(),
    };
    let workdir = spec
        .run
        .workdir
        .clone()
        .or_else(|| base.and_then(|c| c.working_dir().clone()))
        .or_else(|| {
            (base.is_none() && user == synth::NONROOT.to_string()).then(|| "/home/nonroot".into())
        });
    let mut exposed_ports = base
        .and_then(|c| c.exposed_ports().clone())
        .unwrap_or_default();
    for p in &spec.run.ports {
        if !exposed_ports.contains(p) {
            exposed_ports.push(p.clone());
        }
    }
    let mut labels: Vec<(String, String)> = base
        .and_then(|c| c.labels().clone())
        .map(|l| l.into_iter().collect())
        .unwrap_or_default();
    labels.retain(|(k, _)| !spec.run.labels.iter().any(|(s, _)| s == k));
    labels.extend(spec.run.labels.iter().cloned());
    labels.sort();
    RunConfig {
        user,
        entrypoint,
        cmd,
        workdir,
        env,
        exposed_ports,
        labels,
        healthcheck: spec.run.health.as_ref().map(|target| {
            vec![
                "CMD".to_string(),
                format!("/{}", probe::PATH),
                target.clone(),
            ]
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_a_base_that_installed_ca_certificates_its_bundle_fills_the_keystore() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(&dir.path().join("cache")).unwrap();
        let setuid = globset::GlobSet::empty();
        let mut tree = Rootfs::new(dir.path(), Slicing::default(), setuid, Limits::BUILD).unwrap();
        let layer = tree.push_layer();
        let pem = |der: &[u8]| {
            pem_rfc7468::encode_string("CERTIFICATE", pem_rfc7468::LineEnding::LF, der).unwrap()
        };
        let bundle = format!("{}{}", pem(&[0x30, 1, 1]), pem(&[0x30, 1, 2]));
        add_text(&mut tree, layer, BUNDLE, bundle.as_bytes(), 1).unwrap();
        // The lock has no ca-certificates: the base installed it.
        let certs = package_certificates(&tree, &HashMap::new(), &cache).unwrap();
        assert_eq!(certs, [(BUNDLE.to_string(), bundle.into_bytes())]);
        let store = "etc/ssl/certs/java/cacerts".to_string();
        write_trust_stores(
            &mut tree,
            layer,
            std::slice::from_ref(&store),
            &certs,
            &[],
            1,
        )
        .unwrap();
        let keystore = tree.read(&store).unwrap();
        assert_eq!(&keystore[8..12], &2u32.to_be_bytes(), "two entries");
        let has = |alias: &[u8]| keystore.windows(alias.len()).any(|w| w == alias);
        assert!(has(b"debian:ca-certificates.pem") && has(b"debian:ca-certificates.pem-2"));
    }

    #[test]
    fn lang_names_the_locale_only_where_the_image_has_it() {
        let release = bareboat_apt::sources::Distribution::Trixie;
        let spec = crate::catalog::spec("cc", None, release, vec![]).unwrap();
        let lang = |config: &RunConfig| {
            let found = config.env.iter().filter(|e| e.starts_with("LANG="));
            found.cloned().collect::<Vec<_>>()
        };
        assert_eq!(lang(&run_config(&spec, None, true)), ["LANG=C.UTF-8"]);
        assert!(lang(&run_config(&spec, None, false)).is_empty());
        // The spec's environment wins; a base image's stands where bareboat's would.
        let mut custom = spec.clone();
        custom.run.env = vec![("LANG".into(), "de_DE.UTF-8".into())];
        assert_eq!(lang(&run_config(&custom, None, true)), ["LANG=de_DE.UTF-8"]);
        let mut base = Config::default();
        base.set_env(Some(vec!["PATH=/bin".into()]));
        assert!(lang(&run_config(&spec, Some(&base), true)).is_empty());
    }
}
