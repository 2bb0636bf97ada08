//! The files that maintainer scripts or an installer would have made, written as text.
//! Pure functions: the assembler decides where they go and whether a package already
//! ships them (package content wins).

use crate::spec::{GroupSpec, UserSpec};

/// The nonroot account's id, as distroless uses.
pub const NONROOT: u32 = 65532;
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

/// Why `name` cannot be an account's (a user's or a group's) name, if it cannot: it must
/// match `[a-z_][a-z0-9_-]*` and be at most 32 bytes, as Debian's adduser expects, so that
/// it cannot carry a `:` or a newline into `/etc/passwd` or `/etc/group`.
pub fn check_account_name(name: &str) -> Result<(), String> {
    let mut bytes = name.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b == b'_');
    let rest_ok =
        bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if first_ok && rest_ok && name.len() <= 32 {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not an account name: use [a-z_][a-z0-9_-]*, at most 32 characters"
        ))
    }
}

/// Why `value` cannot be written as a field of `/etc/passwd`, if it cannot: a `:` or a
/// control character (a newline would start a line of its own) would change the file.
pub fn check_passwd_field(what: &str, value: &str) -> Result<(), String> {
    match value.chars().find(|c| *c == ':' || c.is_control()) {
        Some(c) => Err(format!(
            "{what} {value:?} holds {c:?}, which /etc/passwd cannot hold in a field"
        )),
        None => Ok(()),
    }
}

/// The groups every image has: base-passwd's root, tty, staff and nogroup (programs that
/// hand a terminal to group tty or install under staff expect them), and nonroot.
pub const GROUPS: [(&str, u32); 5] = [
    ("root", 0),
    ("tty", 5),
    ("staff", 50),
    ("nogroup", 65534),
    ("nonroot", NONROOT),
];

/// Whether a group the spec names is one of [`GROUPS`], which is then written once; a
/// group that shares only its name or only its gid with one is refused, as it would make
/// names and ids mean two things.
pub fn builtin_group(name: &str, gid: u32) -> Result<bool, String> {
    let by_name = GROUPS.iter().find(|(n, _)| *n == name);
    let by_gid = GROUPS.iter().find(|(_, id)| *id == gid);
    match (by_name, by_gid) {
        (Some(a), Some(b)) if a == b => Ok(true),
        (Some((builtin, id)), _) => Err(format!(
            "group {name:?} with gid {gid}: every image has group {builtin} with gid {id}\n  hint: use gid {id}, or another name"
        )),
        (None, Some((builtin, _))) => Err(format!(
            "group {name:?} with gid {gid}: gid {gid} is the built-in group {builtin}\n  hint: name it {builtin}, or use another gid"
        )),
        (None, None) => Ok(false),
    }
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

/// The group named after a spec user that its gid calls for, unless a built-in or spec
/// group has that gid (the user joins it).
pub fn own_group(u: &UserSpec, groups: &[GroupSpec]) -> Option<GroupSpec> {
    let gid = u.gid.unwrap_or(u.uid);
    let taken = GROUPS.iter().any(|(_, id)| *id == gid) || groups.iter().any(|g| g.gid == gid);
    (!taken).then(|| GroupSpec {
        name: u.name.clone(),
        gid,
    })
}

/// A spec user's home directory.
pub fn home_of(u: &UserSpec) -> String {
    u.home
        .clone()
        .unwrap_or_else(|| format!("/home/{}", u.name))
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
    fn account_names_and_fields_that_would_change_the_files_are_refused() {
        for (name, ok) in [
            ("app", true),
            ("_svc", true),
            ("web-2", true),
            ("a_b", true),
            ("", false),
            ("App", false),
            ("2app", false),
            ("-app", false),
            ("a.b", false),
            ("evil:x:0:0", false),
            ("a\nb", false),
            ("é", false),
            (&"a".repeat(33), false),
        ] {
            assert_eq!(check_account_name(name).is_ok(), ok, "{name:?}");
        }
        assert!(check_passwd_field("home", "/home/app").is_ok());
        for bad in ["/x\nevil:x:0:0::/:/bin/sh", "/a:b", "/a\u{0}", "/a\tb"] {
            let e = check_passwd_field("home", bad).unwrap_err();
            assert!(e.contains("home"), "{e}");
        }
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
        for (name, gid, outcome) in [
            ("staff", 50, Ok(true)),
            ("nonroot", 65532, Ok(true)),
            ("web", 2000, Ok(false)),
            ("staff", 51, Err("every image has group staff with gid 50")),
            ("wheel", 5, Err("gid 5 is the built-in group tty")),
            (
                "nogroup",
                0,
                Err("every image has group nogroup with gid 65534"),
            ),
        ] {
            match (builtin_group(name, gid), outcome) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{name} {gid}"),
                (Err(e), Err(want)) => {
                    assert!(e.contains(want) && e.contains(&format!("{name:?}")), "{e}")
                }
                (got, want) => panic!("{name} {gid}: {got:?}, expected {want:?}"),
            }
        }
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
        assert!(check_pem_certificates("hello").is_err());
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
