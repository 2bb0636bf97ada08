//! What goes into a tree besides the packages' files: their dpkg records, the files their
//! maintainer scripts would make, the spec's accounts, certificates and host files, and
//! the check that added programs find what they need.

use std::collections::HashMap;
use std::io::Read;

use bareboat_apt::cache::Cache;
use bareboat_apt::dpkg::{MERGED_DIRS, STATUS_D};
use bareboat_apt::lockfile::LockedPackage;
use bareboat_apt::relation::{RelationError, parse_relations};
use bareboat_rootfs::rootfs::{Content, NodeKind, Rootfs};
use bareboat_rootfs::{Error as TreeError, jks, runtimes, synth};
use bareboat_sbom::SbomFile;
use bareboat_spec::accounts::{NONROOT, home_of};
use bareboat_spec::spec::Spec;

use crate::Error;
use crate::deps::{self, Analysis, FileKind};
use crate::hostfiles::{HostEntry, HostKind};
use crate::package::package_tar;

/// Unpacks `names` into `layer`, each with its status.d entry and md5sums, which carry the
/// layer's newest mtime.
pub(crate) fn add_packages(
    tree: &mut Rootfs,
    layer: usize,
    names: &[String],
    by_name: &HashMap<&str, &LockedPackage>,
    cache: &Cache,
) -> Result<(), Error> {
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
pub(crate) fn synthesize_base(
    tree: &mut Rootfs,
    layer: usize,
    mtime: u64,
) -> Result<(), TreeError> {
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
    // Group 0 with the owner's permissions: OpenShift's restricted policy runs a container
    // under an arbitrary uid whose group is 0, and a home only 65532 could write would
    // stop it (distroless#718). Any uid a runtime puts in group 0 can write it too.
    tree.add_dir(layer, "home/nonroot", 0o770, (NONROOT, 0), mtime)?;
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
pub(crate) fn synthesize_missing(
    tree: &mut Rootfs,
    layer: usize,
    spec: &Spec,
    mtime: u64,
    by_name: &HashMap<&str, &LockedPackage>,
    cache: &Cache,
) -> Result<(), Error> {
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
pub(crate) fn added_files(entries: &[HostEntry]) -> std::io::Result<Vec<SbomFile>> {
    let mut files = entries
        .iter()
        .filter(|e| matches!(e.kind, HostKind::File))
        .map(|e| SbomFile::hashed(&e.dst, &e.src))
        .collect::<std::io::Result<Vec<_>>>()?;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// The CA bundle's path.
pub(crate) const BUNDLE: &str = "etc/ssl/certs/ca-certificates.crt";
/// The package whose certificates make the bundle.
pub(crate) const CA_PACKAGE: &str = "ca-certificates";
/// The file of glibc's C.UTF-8 locale that setlocale cannot do without.
pub(crate) const C_UTF8_CTYPE: &str = "usr/lib/locale/C.utf8/LC_CTYPE";

/// The certificates ca-certificates ships, with their paths, in the order
/// update-ca-certificates reads them. They are read from the package's verified `.deb`,
/// since an image may keep only the bundle made of them; on a base image that installed
/// the package, the base's bundle stands for them.
fn package_certificates(
    tree: &Rootfs,
    by_name: &HashMap<&str, &LockedPackage>,
    cache: &Cache,
) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let Some(p) = by_name.get(CA_PACKAGE) else {
        let bundle = tree.read(BUNDLE).map(|pem| (BUNDLE.to_string(), pem));
        return Ok(bundle.into_iter().collect());
    };
    let origin = format!("package {}", p.name);
    let io_err = |error| TreeError::Io {
        origin: origin.clone(),
        error,
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
) -> Result<(), Error> {
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
        let ders = jks::pem_certificates(&pem).map_err(|reason| Error::Keystore {
            name: name.clone(),
            reason,
        })?;
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
pub(crate) fn synthesize_config(
    tree: &mut Rootfs,
    layer: usize,
    spec: &Spec,
    mtime: u64,
    by_name: &HashMap<&str, &LockedPackage>,
    cache: &Cache,
) -> Result<(), Error> {
    if !spec.users.is_empty() || !spec.groups.is_empty() {
        let passwd = synth::passwd(&spec.users);
        let group = synth::group(&spec.users, &spec.groups);
        add_text(tree, layer, "etc/passwd", passwd.as_bytes(), mtime)?;
        add_text(tree, layer, "etc/group", group.as_bytes(), mtime)?;
        for u in &spec.users {
            let home = home_of(u);
            let home = home.trim_start_matches('/');
            if !home.is_empty() && !tree.exists(home) {
                tree.add_dir(layer, home, 0o700, (u.uid, u.gid.unwrap_or(u.uid)), mtime)?;
            }
        }
    }
    if !spec.ca_certs.is_empty() {
        let mut extra = Vec::new();
        for path in &spec.ca_certs {
            let refused = |reason: String| Error::CaCert {
                path: path.clone(),
                reason,
            };
            let bytes = bareboat_apt::hostfile::read_capped(path, CA_CERTS_LIMIT)
                .map_err(|e| refused(e.to_string()))?;
            let text = String::from_utf8(bytes).map_err(|_| refused("not PEM text".into()))?;
            synth::check_pem_certificates(&text).map_err(refused)?;
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
pub(crate) fn add_host_files(
    tree: &mut Rootfs,
    layer: usize,
    entries: &[HostEntry],
) -> Result<(), Error> {
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
pub(crate) fn check_needs(tree: &Rootfs, analysis: &[Analysis], arch: &str) -> Result<(), Error> {
    let present = |path: &str| {
        tree.resolve(path)
            .is_some_and(|p| matches!(tree.get(&p).map(|n| &n.kind), Some(NodeKind::File { .. })))
    };
    let conf = bareboat_elf::ld_so_conf(&crate::abi::Built::of(tree));
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
                !deps::search_paths(soname, search, &conf, arch)
                    .iter()
                    .any(|p| present(p))
            }))
            .next();
        if let Some(need) = missing {
            return Err(Error::Unmet {
                file: a.path.clone(),
                need: need.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bareboat_oci::overlay::Limits;
    use bareboat_rootfs::policy::Slicing;

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
    fn libraries_are_looked_for_where_the_images_ld_so_conf_says() {
        let dir = tempfile::tempdir().unwrap();
        let setuid = globset::GlobSet::empty();
        let mut tree = Rootfs::new(dir.path(), Slicing::default(), setuid, Limits::BUILD).unwrap();
        let layer = tree.push_layer();
        add_text(&mut tree, layer, "opt/vendor/lib/libx.so.1", b"", 1).unwrap();
        let prog = Analysis {
            path: "/app/prog".into(),
            kind: FileKind::Dynamic {
                arch: "amd64".into(),
                interpreter: None,
                needed: vec!["libx.so.1".into()],
                search: Vec::new(),
                versions: Vec::new(),
                time32: false,
            },
        };
        let e = check_needs(&tree, std::slice::from_ref(&prog), "amd64").unwrap_err();
        assert!(e.to_string().contains("libx.so.1"), "{e}");
        // Debian's ld.so.conf includes ld.so.conf.d, as the vendor's package sets it up.
        add_text(
            &mut tree,
            layer,
            "etc/ld.so.conf",
            b"include /etc/ld.so.conf.d/*.conf\n",
            1,
        )
        .unwrap();
        add_text(
            &mut tree,
            layer,
            "etc/ld.so.conf.d/vendor.conf",
            b"/opt/vendor/lib\n",
            1,
        )
        .unwrap();
        check_needs(&tree, &[prog], "amd64").unwrap();
    }
}
