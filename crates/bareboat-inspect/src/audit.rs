//! What a distroless image must not have, and what makes any image riskier: shells,
//! package managers, setuid and setgid files, running as root, world-writable paths,
//! secrets, packages scanners cannot see, writes through symlinked directories, and
//! documentation weight. Each rule is a pure function of the filesystem and the report.
//!
//! The rules on paths see each entry where a runtime puts it (see [`crate::filesystem`]),
//! so `x/sh` under `x -> usr/bin` is a shell in `/usr/bin`.

use bareboat_oci::layer::Whiteout;
use std::collections::BTreeMap;

use serde::Serialize;

use crate::Severity;
use crate::filesystem::{Filesystem, Kind, Node, Redirect};
use crate::inspect::Report;

/// One thing audit found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The rule: `shell`, `debug-shell`, `package-manager`, `setuid`, `root-user`,
    /// `world-writable`, `device-node`, `secret`, `path-through-symlink`, `no-package-metadata`
    /// or `docs`.
    pub id: &'static str,
    /// How much it matters.
    pub severity: Severity,
    /// The path it concerns, if any.
    pub path: Option<String>,
    /// What was found, in a sentence for the user.
    pub message: String,
}

/// Where programs are looked for.
const PROGRAM_DIRS: [&str; 6] = [
    "bin",
    "sbin",
    "usr/bin",
    "usr/sbin",
    "usr/local/bin",
    "usr/local/sbin",
];

const SHELLS: [&str; 11] = [
    "sh", "bash", "dash", "ash", "zsh", "ksh", "mksh", "csh", "tcsh", "fish", "busybox",
];

const PACKAGE_MANAGERS: [&str; 15] = [
    "apt", "apt-get", "aptitude", "dpkg", "apk", "rpm", "yum", "dnf", "microdnf", "zypper", "pip",
    "pip3", "npm", "yarn", "gem",
];

/// What `bareboat audit` reports.
#[derive(Debug, Serialize)]
pub struct AuditReport {
    /// The image's manifest digest.
    pub image: String,
    /// The findings per severity name.
    pub counts: BTreeMap<&'static str, usize>,
    /// Every finding, the most severe first.
    pub findings: Vec<Finding>,
}

impl AuditReport {
    /// Audits the image `report` and `fs` describe.
    pub fn of(report: &Report, fs: &Filesystem) -> AuditReport {
        let findings = audit(report, fs);
        AuditReport {
            image: report.image.clone(),
            counts: crate::severity_counts(findings.iter().map(|f| f.severity)),
            findings,
        }
    }
}

/// Every finding for an image, the most severe first.
pub fn audit(report: &Report, fs: &Filesystem) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (path, node) in fs.view.iter() {
        findings.extend(program(path));
        findings.extend(mode(path, node));
        findings.extend(device(path, node));
    }
    findings.extend(fs.redirects.iter().map(through_symlink));
    findings.extend(user(&report.config.user));
    for s in &fs.secrets {
        let shown = fs.view.get(&s.path).is_some_and(|n| n.layer == s.layer);
        let message = if shown {
            format!("a {} (layer {})", s.kind, s.layer)
        } else {
            format!(
                "a {} in layer {}, which a later layer hides but the image still ships",
                s.kind, s.layer
            )
        };
        findings.push(finding("secret", Severity::Critical, &s.path, message));
    }
    if report.packages.is_empty() && report.files > 0 {
        findings.push(Finding {
            id: "no-package-metadata",
            severity: Severity::High,
            path: None,
            message: "no package database (dpkg status, status.d or apk): scanners cannot see what this image holds".into(),
        });
    }
    findings.extend(docs(fs));
    findings.sort_by(|a, b| (b.severity, a.id, &a.path).cmp(&(a.severity, b.id, &b.path)));
    findings
}

fn finding(id: &'static str, severity: Severity, path: &str, message: String) -> Finding {
    Finding {
        id,
        severity,
        path: Some(format!("/{path}")),
        message,
    }
}

/// A shell or package manager where programs are run from.
/// Whether `path` (relative to the root) is a shell or a package manager where programs
/// live, as audit reports them; busybox in a debug variant's `/busybox` is not.
pub fn is_shell_or_package_manager(path: &str) -> bool {
    program(path).is_some_and(|f| f.id != "debug-shell")
}

fn program(path: &str) -> Option<Finding> {
    let (dir, name) = path.rsplit_once('/')?;
    if dir == "busybox" && name == "busybox" {
        return Some(finding(
            "debug-shell",
            Severity::Low,
            path,
            "busybox and its shell in /busybox, as a debug variant declares".into(),
        ));
    }
    if !PROGRAM_DIRS.contains(&dir) {
        return None;
    }
    if SHELLS.contains(&name) {
        return Some(finding(
            "shell",
            Severity::High,
            path,
            format!("a shell ({name})"),
        ));
    }
    PACKAGE_MANAGERS.contains(&name).then(|| {
        finding(
            "package-manager",
            Severity::High,
            path,
            format!("a package manager ({name})"),
        )
    })
}

/// Device nodes: a runtime gives a container its own `/dev`, so a node in a layer is there to
/// reach a host device (`/dev/mem`, a disk) wherever it is mounted without `nodev`.
fn device(path: &str, node: &Node) -> Option<Finding> {
    let kind = match node.kind {
        Kind::CharDevice => "character",
        Kind::BlockDevice => "block",
        _ => return None,
    };
    Some(finding(
        "device-node",
        Severity::High,
        path,
        format!("a {kind} device node (mode {:04o})", node.mode),
    ))
}

/// setuid and setgid files, and world-writable paths without the sticky bit.
fn mode(path: &str, node: &Node) -> Option<Finding> {
    match node.kind {
        Kind::File if node.mode & 0o6000 != 0 => Some(finding(
            "setuid",
            Severity::High,
            path,
            format!("setuid or setgid (mode {:04o})", node.mode),
        )),
        Kind::Symlink(_) | Kind::Hardlink(_) => None,
        _ if node.mode & 0o002 != 0 && node.mode & 0o1000 == 0 => Some(finding(
            "world-writable",
            Severity::Medium,
            path,
            format!(
                "world-writable without the sticky bit (mode {:04o})",
                node.mode
            ),
        )),
        _ => None,
    }
}

/// An entry a layer writes through a symlinked parent: no tool that builds layers from a
/// filesystem writes one, and it puts a file where a reader of the layer's names does not
/// look.
fn through_symlink(r: &Redirect) -> Finding {
    let effect = match Whiteout::of(&r.landed) {
        Some(Whiteout::Path(hidden)) => format!("deletes /{hidden}"),
        Some(Whiteout::Opaque(dir)) => format!("empties /{dir}"),
        None => format!("lands at /{}", r.landed),
    };
    finding(
        "path-through-symlink",
        Severity::High,
        &r.path,
        format!(
            "layer {} writes through a symlinked parent: a runtime resolves it and it {effect}",
            r.layer
        ),
    )
}

/// Running as root: no user, or user 0.
fn user(user: &str) -> Option<Finding> {
    let name = user.split(':').next().unwrap_or_default();
    matches!(name, "" | "0" | "root").then(|| Finding {
        id: "root-user",
        severity: Severity::Medium,
        path: None,
        message: format!(
            "runs as root (User {:?}); Kubernetes runAsNonRoot refuses it",
            user
        ),
    })
}

/// Documentation beyond the copyright files that licences require.
fn docs(fs: &Filesystem) -> Option<Finding> {
    let bytes: u64 = fs
        .view
        .iter()
        .filter(|(p, n)| {
            n.kind == Kind::File
                && ["usr/share/doc/", "usr/share/man/", "usr/share/info/"]
                    .iter()
                    .any(|d| p.starts_with(d))
                && !p.ends_with("/copyright")
        })
        .map(|(_, n)| n.size)
        .sum();
    (bytes > 0).then(|| Finding {
        id: "docs",
        severity: Severity::Low,
        path: Some("/usr/share/doc".into()),
        message: format!("{bytes} bytes of documentation, man and info pages no program reads"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(kind: Kind, mode: u32) -> Node {
        Node {
            layer: 0,
            kind,
            size: 10,
            mode,
            uid: 0,
            gid: 0,
            mtime: 0,
            sha256: None,
            content: None,
            implied: false,
        }
    }

    #[test]
    fn rules_find_what_they_name_and_nothing_else() {
        assert_eq!(program("usr/bin/bash").unwrap().id, "shell");
        assert_eq!(program("usr/bin/apt-get").unwrap().id, "package-manager");
        assert_eq!(program("busybox/busybox").unwrap().severity, Severity::Low);
        assert!(program("usr/share/bash").is_none());
        assert!(program("usr/bin/python3").is_none());
        assert_eq!(
            mode("usr/bin/x", &node(Kind::File, 0o4755)).unwrap().id,
            "setuid"
        );
        assert_eq!(
            mode("srv", &node(Kind::Dir, 0o777)).unwrap().id,
            "world-writable"
        );
        assert!(mode("tmp", &node(Kind::Dir, 0o1777)).is_none());
        assert!(mode("usr/bin/x", &node(Kind::Symlink("y".into()), 0o777)).is_none());
        assert_eq!(
            mode("dev/mem", &node(Kind::CharDevice, 0o666)).unwrap().id,
            "world-writable"
        );
        assert_eq!(
            mode("run/pipe", &node(Kind::Fifo, 0o666)).unwrap().id,
            "world-writable"
        );
        for (kind, found) in [
            (
                Kind::CharDevice,
                Some("a character device node (mode 0600)"),
            ),
            (Kind::BlockDevice, Some("a block device node (mode 0600)")),
            (Kind::Fifo, None),
            (Kind::File, None),
        ] {
            let f = device("dev/x", &node(kind, 0o600));
            assert_eq!(f.as_ref().map(|f| f.message.as_str()), found);
            assert!(f.is_none_or(|f| f.id == "device-node" && f.severity == Severity::High));
        }
        for (landed, effect) in [
            ("usr/bin/sh", "it lands at /usr/bin/sh"),
            ("usr/bin/.wh.sh", "it deletes /usr/bin/sh"),
            ("usr/bin/.wh..wh..opq", "it empties /usr/bin"),
        ] {
            let redirect = Redirect {
                layer: 1,
                path: format!("x/{}", landed.trim_start_matches("usr/bin/")),
                landed: landed.into(),
            };
            let f = through_symlink(&redirect);
            assert_eq!((f.id, f.severity), ("path-through-symlink", Severity::High));
            assert_eq!(f.path.unwrap(), format!("/{}", redirect.path));
            assert!(
                f.message.starts_with("layer 1 writes") && f.message.ends_with(effect),
                "{}",
                f.message
            );
        }
        assert!(user("65532").is_none());
        assert!(user("0:0").is_some() && user("").is_some() && user("root").is_some());
        assert_eq!(Severity::parse("high"), Some(Severity::High));
        assert!(Severity::High > Severity::Medium);
    }
}
