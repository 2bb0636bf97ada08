//! The accounts every image has, and the rules a spec's users and groups must follow so
//! that `/etc/passwd` and `/etc/group` stay well-formed and names and ids mean one thing.

use crate::model::{GroupSpec, UserSpec};

/// The nonroot account's id, as distroless uses.
pub const NONROOT: u32 = 65532;
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

/// The users every image has, with their uids.
pub const BUILTIN_USERS: [(&str, u32); 3] = [("root", 0), ("nonroot", NONROOT), ("nobody", 65534)];

#[cfg(test)]
mod tests {
    use super::*;

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
    fn spec_groups_that_share_a_name_or_gid_with_a_built_in_one() {
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
}
