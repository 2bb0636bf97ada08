//! The files that maintainer scripts or an installer would have made, written as text.
//! Pure functions: the assembler decides where they go and whether a package already
//! ships them (package content wins).

use bareboat_spec::accounts::{GROUPS, NONROOT, home_of, own_group};
use bareboat_spec::spec::{GroupSpec, UserSpec};

/// The shell of every account: there is none to log in to.
const NOLOGIN: &str = "/sbin/nologin";

/// `/etc/passwd`: root, nobody, nonroot, then the spec's users.
pub fn passwd(users: &[UserSpec]) -> String {
    let mut out = format!(
        "root:x:0:0:root:/root:{NOLOGIN}\nnobody:x:65534:65534:nobody:/nonexistent:{NOLOGIN}\nnonroot:x:{NONROOT}:{NONROOT}:nonroot:/home/nonroot:{NOLOGIN}\n"
    );
    for u in users {
        let gid = u.gid.unwrap_or(u.uid);
        let home = home_of(u);
        out.push_str(&format!(
            "{}:x:{}:{gid}:{}:{home}:{NOLOGIN}\n",
            u.name, u.uid, u.name
        ));
    }
    out
}

/// `/etc/group`: the built-in groups, then each spec user's [`own_group`], and the spec's
/// groups that are not built in.
pub fn group(users: &[UserSpec], groups: &[GroupSpec]) -> String {
    let line = |name: &str, gid: u32| format!("{name}:x:{gid}:\n");
    let mut out: String = GROUPS.iter().map(|(name, gid)| line(name, *gid)).collect();
    for g in users.iter().filter_map(|u| own_group(u, groups)) {
        out.push_str(&line(&g.name, g.gid));
    }
    for g in groups {
        if !GROUPS.contains(&(g.name.as_str(), g.gid)) {
            out.push_str(&line(&g.name, g.gid));
        }
    }
    out
}

/// `/etc/nsswitch.conf`: files for everything, DNS for hosts, as glibc expects.
pub const NSSWITCH: &str = "passwd:         files\ngroup:          files\nshadow:         files\n\
hosts:          files dns\nnetworks:       files\nprotocols:      files\nservices:       files\n\
ethers:         files\nrpc:            files\n";

/// The CA bundle: each certificate's PEM text in the order given, each ending in a newline,
/// as `update-ca-certificates` concatenates them.
pub fn ca_bundle<'a>(certs: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for pem in certs {
        out.extend_from_slice(pem);
        if !pem.ends_with(b"\n") {
            out.push(b'\n');
        }
    }
    out
}

/// Checks that a user-supplied CA file holds at least one PEM certificate and nothing
/// that is not one.
pub fn check_pem_certificates(text: &str) -> Result<usize, String> {
    let begins = text.matches("-----BEGIN CERTIFICATE-----").count();
    let ends = text.matches("-----END CERTIFICATE-----").count();
    if begins == 0 {
        return Err("no PEM certificate (-----BEGIN CERTIFICATE-----) in it".into());
    }
    if begins != ends {
        return Err("a PEM certificate in it is not closed".into());
    }
    if text.contains("PRIVATE KEY-----") {
        return Err("it holds a private key: a CA bundle must carry certificates only".into());
    }
    Ok(begins)
}

/// A `status.d/<pkg>` paragraph: the package's control paragraph, with the `Source:` field
/// that scanners match vulnerabilities on made explicit whenever the source name or version
/// differs from the binary's.
pub fn status_paragraph(
    control: &str,
    name: &str,
    version: &str,
    source: &str,
    source_version: &str,
) -> String {
    let mut out = String::new();
    let mut has_source = false;
    for line in control.trim_end().lines() {
        if let Some((field, _)) = line.split_once(':')
            && field.eq_ignore_ascii_case("Source")
        {
            has_source = true;
        }
        out.push_str(line);
        out.push('\n');
    }
    if !has_source && (source != name || source_version != version) {
        let field = if source_version == version {
            format!("Source: {source}\n")
        } else {
            format!("Source: {source} ({source_version})\n")
        };
        // After Package:, where dpkg puts it.
        match out.find('\n') {
            Some(i) => out.insert_str(i + 1, &field),
            None => out.push_str(&field),
        }
    }
    out
}

/// A `status.d/<pkg>.md5sums` file: `MD5  path` lines for exactly the kept files.
pub fn md5sums(files: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = files.iter().collect();
    sorted.sort();
    sorted
        .iter()
        .map(|(path, md5)| format!("{md5}  {path}\n"))
        .collect()
}

/// `/usr/lib/os-release` for a release whose base-files lacks it.
pub fn os_release(version_id: &str, codename: &str) -> String {
    format!(
        "PRETTY_NAME=\"Debian GNU/Linux {version_id} ({codename})\"\nNAME=\"Debian GNU/Linux\"\n\
VERSION_ID=\"{version_id}\"\nVERSION=\"{version_id} ({codename})\"\nVERSION_CODENAME={codename}\n\
ID=debian\nHOME_URL=\"https://www.debian.org/\"\nSUPPORT_URL=\"https://www.debian.org/support\"\n\
BUG_REPORT_URL=\"https://bugs.debian.org/\"\n"
    )
}

/// Applets linked into `/busybox` in debug images: a fixed list, since running busybox to
/// ask would execute target code at build time.
pub const BUSYBOX_APPLETS: &[&str] = &[
    "[",
    "[[",
    "ash",
    "awk",
    "basename",
    "cat",
    "chmod",
    "chown",
    "cp",
    "cut",
    "date",
    "dd",
    "df",
    "diff",
    "dirname",
    "du",
    "echo",
    "env",
    "expr",
    "false",
    "find",
    "free",
    "grep",
    "gunzip",
    "gzip",
    "head",
    "hostname",
    "id",
    "ip",
    "kill",
    "less",
    "ln",
    "ls",
    "md5sum",
    "mkdir",
    "mktemp",
    "more",
    "mv",
    "nc",
    "netstat",
    "nslookup",
    "printenv",
    "printf",
    "ps",
    "pwd",
    "readlink",
    "realpath",
    "rm",
    "rmdir",
    "sed",
    "seq",
    "sh",
    "sha256sum",
    "sleep",
    "sort",
    "stat",
    "tail",
    "tar",
    "tee",
    "test",
    "top",
    "touch",
    "tr",
    "true",
    "uname",
    "uniq",
    "uptime",
    "vi",
    "wc",
    "wget",
    "which",
    "whoami",
    "xargs",
    "zcat",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> UserSpec {
        UserSpec {
            name: "app".into(),
            uid: 1000,
            gid: None,
            home: None,
        }
    }

    #[test]
    fn accounts() {
        assert_eq!(
            passwd(&[app()]),
            "root:x:0:0:root:/root:/sbin/nologin\n\
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n\
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n\
app:x:1000:1000:app:/home/app:/sbin/nologin\n"
        );
    }

    #[test]
    fn groups() {
        const BUILTIN: &str =
            "root:x:0:\ntty:x:5:\nstaff:x:50:\nnogroup:x:65534:\nnonroot:x:65532:\n";
        let g = |name: &str, gid| GroupSpec {
            name: name.into(),
            gid,
        };
        let user = |gid| UserSpec { gid, ..app() };
        for (users, groups, added) in [
            (vec![], vec![], ""),
            (vec![app()], vec![], "app:x:1000:\n"),
            // A user joins the group with its gid, built in or the spec's.
            (vec![user(Some(50))], vec![], ""),
            (vec![app()], vec![g("apps", 1000)], "apps:x:1000:\n"),
            // A spec group equal to a built-in one is written once.
            (vec![], vec![g("staff", 50), g("tty", 5)], ""),
            (
                vec![app()],
                vec![g("staff", 50), g("web", 2000)],
                "app:x:1000:\nweb:x:2000:\n",
            ),
        ] {
            assert_eq!(
                group(&users, &groups),
                format!("{BUILTIN}{added}"),
                "{users:?} {groups:?}"
            );
        }
    }

    #[test]
    fn groups_equal_to_built_in_ones_are_merged() {
        let s = bareboat_spec::spec::Spec::parse(
            "packages = [\"a0\"]\n[[groups]]\nname = \"staff\"\ngid = 50\n\
             [[users]]\nname = \"app\"\nuid = 1000\ngid = 5\n",
            "t",
        )
        .unwrap();
        let group = group(&s.users, &s.groups);
        assert_eq!(group.matches("staff").count(), 1, "{group}");
        assert!(!group.contains("app"), "{group}");
    }

    #[test]
    fn source_is_added_only_when_it_differs() {
        let control = "Package: libc6\nVersion: 2.41-12\nArchitecture: amd64\n";
        let with = status_paragraph(control, "libc6", "2.41-12", "glibc", "2.41-12");
        assert_eq!(
            with,
            "Package: libc6\nSource: glibc\nVersion: 2.41-12\nArchitecture: amd64\n"
        );
        let versioned = status_paragraph(
            "Package: busybox-static\nVersion: 1:1.37.0-6+b9\n",
            "busybox-static",
            "1:1.37.0-6+b9",
            "busybox",
            "1:1.37.0-6",
        );
        assert!(
            versioned.contains("Source: busybox (1:1.37.0-6)\n"),
            "{versioned}"
        );
        let same = status_paragraph(
            "Package: tzdata\nVersion: 1\n",
            "tzdata",
            "1",
            "tzdata",
            "1",
        );
        assert!(!same.contains("Source:"));
        let kept = status_paragraph(
            "Package: a\nSource: b (2)\nVersion: 1\n",
            "a",
            "1",
            "b",
            "2",
        );
        assert_eq!(kept.matches("Source:").count(), 1);
    }

    #[test]
    fn md5sums_are_sorted_two_space_lines() {
        let files = vec![
            ("usr/lib/b".to_string(), "bb".to_string()),
            ("etc/a".to_string(), "aa".to_string()),
        ];
        assert_eq!(md5sums(&files), "aa  etc/a\nbb  usr/lib/b\n");
    }

    #[test]
    fn ca_files_must_be_certificates() {
        let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        assert_eq!(check_pem_certificates(cert), Ok(1));
        let err = format!("{:#}", check_pem_certificates("hello").unwrap_err());
        assert!(err.contains("no PEM certificate"), "{err}");
        assert!(
            check_pem_certificates(&format!(
                "{cert}-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n"
            ))
            .is_err()
        );
        assert_eq!(
            ca_bundle([b"A".as_slice(), b"B\n".as_slice()]),
            b"A\nB\n".to_vec()
        );
    }
}
