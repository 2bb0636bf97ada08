//! What the language runtimes' maintainer scripts make at install time, derived from the
//! files their packages ship; nothing from the image runs.
//!
//! - `update-alternatives` links: Debian's scripts point `/usr/bin/java` at
//!   `/etc/alternatives/java` and that at the JVM; an image has one choice, so bareboat
//!   links the name straight at it.
//! - PHP's `php.ini` and enabled modules, which `ucf` and `phpenmod` would set up.
//! - Where JVMs read their trust store, which ca-certificates-java fills with `keytool`
//!   (bareboat writes it with [`crate::jks`]).

use crate::rootfs::{NodeKind, Rootfs};

/// A symlink to create at `path` (relative to the root).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// Where the link goes, relative to the root.
    pub path: String,
    /// What it points at, as the link holds it.
    pub target: String,
}

/// PHP's versioned programs, each known by its plain name too.
const PHP_PROGRAMS: &[&str] = &["php", "phar", "phar.phar"];

/// The alternatives links the runtimes' scripts would make, for names nothing holds yet:
/// - each JVM's `.jinfo` file lists its tools; the runtime's (`hl` and `jre` lines, not the
///   compiler's `jdk` ones) get `/usr/bin/NAME`, from the JVM of highest priority;
/// - PHP's `php8.4`, `phar8.4` and `phar.phar8.4` get their plain names, from the newest
///   version.
pub fn alternatives(tree: &Rootfs) -> Vec<Link> {
    let mut links: Vec<Link> = Vec::new();
    let add = |links: &mut Vec<Link>, path: String, target: String| {
        if !tree.exists(&path) && !links.iter().any(|l| l.path == path) {
            links.push(Link { path, target });
        }
    };
    let mut jvms: Vec<Jinfo> = tree
        .paths_under("usr/lib/jvm")
        .iter()
        .filter(|p| {
            p.strip_prefix("usr/lib/jvm/.")
                .is_some_and(|name| name.ends_with(".jinfo") && !name.contains('/'))
        })
        .filter_map(|p| tree.read(p))
        .map(|text| Jinfo::parse(&String::from_utf8_lossy(&text)))
        .collect();
    jvms.sort_by_key(|j| std::cmp::Reverse(j.priority));
    for jvm in &jvms {
        for (name, target) in &jvm.tools {
            if tree.exists(target.trim_start_matches('/')) {
                add(&mut links, format!("usr/bin/{name}"), target.clone());
            }
        }
    }
    let mut versioned: Vec<(Vec<u32>, &str, String)> = tree
        .paths_under("usr/bin")
        .iter()
        .filter_map(|p| p.strip_prefix("usr/bin/"))
        .flat_map(|name| {
            PHP_PROGRAMS.iter().filter_map(move |base| {
                let version = php_version(name.strip_prefix(base)?)?;
                Some((version, *base, name.to_string()))
            })
        })
        .collect();
    versioned.sort_by(|a, b| b.0.cmp(&a.0));
    for (_, base, name) in versioned {
        add(&mut links, format!("usr/bin/{base}"), name);
    }
    links
}

/// PHP's configuration as its packages' scripts leave it, for each `php<VERSION>` CLI:
/// `/etc/php/V/cli/php.ini` from the production template, and each module's ini file that
/// a package ships under `/usr/share/phpV-PKG/DIR/` linked into `mods-available` and
/// enabled in `cli/conf.d` with the `; priority=NN` it declares (20 if none).
pub fn php_config(tree: &Rootfs) -> Vec<Link> {
    let mut links = Vec::new();
    let mut add = |path: String, target: String| {
        if !tree.exists(&path) {
            links.push(Link { path, target });
        }
    };
    let versions: Vec<String> = tree
        .paths_under("usr/bin")
        .iter()
        .filter_map(|p| p.strip_prefix("usr/bin/php"))
        .filter(|v| php_version(v).is_some())
        .map(String::from)
        .collect();
    if versions.is_empty() {
        return links;
    }
    let share = tree.paths_under("usr/share");
    for v in &versions {
        let etc = format!("etc/php/{v}");
        let template = format!("usr/lib/php/{v}/php.ini-production.cli");
        if tree.exists(&template) {
            add(format!("{etc}/cli/php.ini"), format!("/{template}"));
        }
        let prefix = format!("usr/share/php{v}-");
        for ini in share.iter().filter(|p| p.starts_with(&prefix)) {
            let parts: Vec<&str> = ini.split('/').collect();
            let Some(module) = parts[parts.len() - 1].strip_suffix(".ini") else {
                continue;
            };
            if parts.len() != 5 {
                continue;
            }
            let Some(text) = tree.read(ini) else {
                continue;
            };
            let priority = String::from_utf8_lossy(&text)
                .lines()
                .find_map(|l| l.trim().strip_prefix("; priority=")?.trim().parse().ok())
                .unwrap_or(20u32);
            let available = format!("{etc}/mods-available/{module}.ini");
            add(available.clone(), format!("/{ini}"));
            add(
                format!("{etc}/cli/conf.d/{priority:02}-{module}.ini"),
                format!("/{available}"),
            );
        }
    }
    links
}

/// The trust stores the image's JVMs read: where each `lib/security/cacerts` link leads.
pub fn java_trust_stores(tree: &Rootfs) -> Vec<String> {
    let mut stores: Vec<String> = tree
        .paths_under("usr/lib/jvm")
        .iter()
        .filter(|p| p.ends_with("/lib/security/cacerts"))
        .filter(|p| matches!(tree.get(p).map(|n| &n.kind), Some(NodeKind::Symlink(_))))
        .filter_map(|p| tree.resolve(p))
        .collect();
    stores.sort();
    stores.dedup();
    stores
}

/// `8.4` as `[8, 4]`: a PHP `MAJOR.MINOR` suffix.
fn php_version(s: &str) -> Option<Vec<u32>> {
    let (major, minor) = s.split_once('.')?;
    Some(vec![major.parse().ok()?, minor.parse().ok()?])
}

/// A JVM's `.jinfo` file, as update-java-alternatives reads it.
struct Jinfo {
    priority: i64,
    /// Runtime tools: name and absolute path.
    tools: Vec<(String, String)>,
}

impl Jinfo {
    fn parse(text: &str) -> Jinfo {
        let mut priority = 0;
        let mut tools = Vec::new();
        for line in text.lines() {
            if let Some(p) = line.strip_prefix("priority=") {
                priority = p.trim().parse().unwrap_or(0);
                continue;
            }
            let mut words = line.split_whitespace();
            if let (Some(kind), Some(name), Some(path), None) =
                (words.next(), words.next(), words.next(), words.next())
                && matches!(kind, "hl" | "jre" | "jrehl")
                && path.starts_with('/')
            {
                tools.push((name.to_string(), path.to_string()));
            }
        }
        Jinfo { priority, tools }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Slicing;
    use crate::rootfs::Content;
    use bareboat_oci::overlay::Limits;

    fn tree() -> (tempfile::TempDir, Rootfs) {
        let dir = tempfile::tempdir().unwrap();
        let slicing = Slicing::new(true, &[], &[]).unwrap();
        let setuid = crate::policy::globs(&[]).unwrap();
        let t = Rootfs::new(dir.path(), slicing, setuid, Limits::BUILD).unwrap();
        (dir, t)
    }

    fn file(t: &mut Rootfs, path: &str, text: &str) {
        t.add_file(0, path, Content::Bytes(text.as_bytes()), 0o755, (0, 0), 1)
            .unwrap();
    }

    #[test]
    fn java_tools_from_the_highest_priority_jvm_and_its_trust_store() {
        let (_d, mut t) = tree();
        let l = t.push_layer();
        for (v, prio) in [("21", 2111), ("25", 2511)] {
            let home = format!("usr/lib/jvm/java-{v}-openjdk-amd64");
            let jinfo = format!(
                "name=java-{v}-openjdk-amd64\npriority={prio}\n\nhl java /{home}/bin/java\n\
                 hl jexec /{home}/lib/jexec\njdkhl javac /{home}/bin/javac\n"
            );
            file(
                &mut t,
                &format!("usr/lib/jvm/.java-1.{v}.0-openjdk-amd64.jinfo"),
                &jinfo,
            );
            file(&mut t, &format!("{home}/bin/java"), "elf");
            file(&mut t, &format!("{home}/bin/javac"), "elf");
            t.add_symlink(
                l,
                &format!("{home}/lib/security/cacerts"),
                "/etc/ssl/certs/java/cacerts",
                1,
            )
            .unwrap();
        }
        let links = alternatives(&t);
        // jexec is listed but not shipped; javac belongs to the JDK.
        assert_eq!(
            links,
            vec![Link {
                path: "usr/bin/java".into(),
                target: "/usr/lib/jvm/java-25-openjdk-amd64/bin/java".into()
            }]
        );
        assert_eq!(java_trust_stores(&t), vec!["etc/ssl/certs/java/cacerts"]);
        // A name that something already holds is left alone.
        file(&mut t, "usr/bin/java", "wrapper");
        assert!(alternatives(&t).is_empty());
    }

    #[test]
    fn php_names_ini_and_enabled_modules() {
        let (_d, mut t) = tree();
        let l = t.push_layer();
        file(&mut t, "usr/bin/php8.4", "elf");
        file(&mut t, "usr/bin/phar8.4.phar", "php");
        t.add_symlink(l, "usr/bin/phar8.4", "phar8.4.phar", 1)
            .unwrap();
        file(&mut t, "usr/lib/php/8.4/php.ini-production.cli", "[PHP]\n");
        file(
            &mut t,
            "usr/share/php8.4-common/common/ctype.ini",
            "; priority=20\nextension=ctype.so\n",
        );
        file(
            &mut t,
            "usr/share/php8.4-opcache/opcache/opcache.ini",
            "; priority=10\nzend_extension=opcache.so\n",
        );
        file(&mut t, "usr/share/php8.4-common/README", "not a module");
        let names: Vec<(String, String)> = alternatives(&t)
            .into_iter()
            .map(|l| (l.path, l.target))
            .collect();
        assert_eq!(
            names,
            [("usr/bin/phar", "phar8.4"), ("usr/bin/php", "php8.4")]
                .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        let config: Vec<(String, String)> = php_config(&t)
            .into_iter()
            .map(|l| (l.path, l.target))
            .collect();
        let expect = [
            (
                "etc/php/8.4/cli/php.ini",
                "/usr/lib/php/8.4/php.ini-production.cli",
            ),
            (
                "etc/php/8.4/mods-available/ctype.ini",
                "/usr/share/php8.4-common/common/ctype.ini",
            ),
            (
                "etc/php/8.4/cli/conf.d/20-ctype.ini",
                "/etc/php/8.4/mods-available/ctype.ini",
            ),
            (
                "etc/php/8.4/mods-available/opcache.ini",
                "/usr/share/php8.4-opcache/opcache/opcache.ini",
            ),
            (
                "etc/php/8.4/cli/conf.d/10-opcache.ini",
                "/etc/php/8.4/mods-available/opcache.ini",
            ),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()));
        assert_eq!(config, expect);
    }
}
