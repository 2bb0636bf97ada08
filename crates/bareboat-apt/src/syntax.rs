//! The shapes of the names a lockfile, an index or a dpkg database gives: pure checks, each
//! returning what is wrong in words that name the field, so a hostile value is refused
//! before it becomes a path, a URL or solver input.

use crate::relation::{is_package_name, parse_version};

/// The architectures Debian releases: trixie's, which hold bookworm's.
pub const RELEASE_ARCHITECTURES: &[&str] = crate::sources::Distribution::Trixie.architectures();

/// A release bareboat builds from, by codename.
pub fn release(name: &str) -> Result<(), String> {
    match crate::sources::Distribution::parse(name) {
        Ok(d) if d.codename() == name => Ok(()),
        _ => Err(format!("release {name:?} is not trixie or bookworm")),
    }
}

/// One of [`RELEASE_ARCHITECTURES`].
pub fn architecture(arch: &str, field: &str) -> Result<(), String> {
    if RELEASE_ARCHITECTURES.contains(&arch) {
        Ok(())
    } else {
        Err(format!(
            "{field}: {arch:?} is not a Debian release architecture ({})",
            RELEASE_ARCHITECTURES.join(", ")
        ))
    }
}

/// A package name as Debian policy allows it.
pub fn package_name(name: &str, field: &str) -> Result<(), String> {
    if is_package_name(name) {
        Ok(())
    } else {
        Err(format!("{field}: {name:?} is not a Debian package name"))
    }
}

/// A Debian version.
pub fn version(text: &str, field: &str) -> Result<(), String> {
    parse_version(text)
        .map(drop)
        .map_err(|e| format!("{field}: {e}"))
}

/// Whether `s` is a SHA256 as bareboat writes it: 64 lowercase hex digits.
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A SHA256 in lowercase hex.
pub fn sha256(s: &str) -> Result<(), String> {
    if is_sha256(s) {
        Ok(())
    } else {
        Err(format!("sha256 {s:?} is not 64 lowercase hex digits"))
    }
}

/// An image digest, `sha256:` and 64 lowercase hex digits.
pub fn image_digest(s: &str) -> Result<(), String> {
    match s.strip_prefix("sha256:") {
        Some(hex) if is_sha256(hex) => Ok(()),
        _ => Err(format!("base {s:?} is not a sha256: image digest")),
    }
}

/// An archive URL: `http://` or `https://`, no spaces, credentials or control characters.
pub fn url(s: &str) -> Result<(), String> {
    let rest = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"))
        .ok_or_else(|| format!("source url {s:?} is not an http:// or https:// URL"))?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty()
        || host.contains('@')
        || s.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!("source url {s:?} is not a plain archive URL"));
    }
    Ok(())
}

/// Whether `s` is a relative path of plain parts: none empty, `.` or `..`, each of ASCII
/// letters, digits and the bytes `extra` allows.
fn plain_path(s: &str, extra: &[u8]) -> bool {
    !s.is_empty()
        && s.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
        })
}

/// A suite or component name, such as `trixie-security` or `main`, or a path of such
/// names (`updates/main`).
pub fn suite(s: &str) -> Result<(), String> {
    if plain_path(s, b"._+-") {
        Ok(())
    } else {
        Err(format!("suite or component {s:?} is not a plain name"))
    }
}

/// A `.deb`'s path under an archive's URL: relative, under `pool/`, no `.` or `..` parts,
/// no characters a URL would need escaped.
pub fn pool_path(s: &str) -> Result<(), String> {
    if s.starts_with("pool/") && s.ends_with(".deb") && plain_path(s, b"._+~-%") {
        Ok(())
    } else {
        Err(format!(
            "filename {s:?} is not a .deb path under the archive's pool/"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Check = fn(&str) -> Result<(), String>;

    #[test]
    fn accepts_what_debian_writes_and_refuses_the_rest() {
        let good: &[(Check, &str)] = &[
            (sha256, &"0a".repeat(32)),
            (image_digest, &format!("sha256:{}", "f".repeat(64))),
            (url, "http://127.0.0.1:8080/debian/"),
            (url, "https://mirror.example/debian"),
            (suite, "trixie-security"),
            (suite, "updates/main"),
            (
                pool_path,
                "pool/main/b/base-files/base-files_13.8+deb13u1_amd64.deb",
            ),
            (
                pool_path,
                "pool/main/b/busybox/busybox_1%3a1.37.0-6_amd64.deb",
            ),
            (release, "trixie"),
        ];
        for (check, value) in good {
            assert_eq!(check(value), Ok(()), "{value}");
        }
        let bad: &[(Check, &str)] = &[
            (sha256, "../../../../tmp/victim/important"),
            (sha256, &"A".repeat(64)),
            (sha256, &"0".repeat(63)),
            (image_digest, &"0".repeat(64)),
            (url, "file:///etc"),
            (url, "http://user:pw@host/debian"),
            (url, "http://host/de bian"),
            (url, "http:///debian"),
            (suite, "../x"),
            (suite, "a//b"),
            (suite, ""),
            (pool_path, "../../etc/passwd.deb"),
            (pool_path, "/pool/a.deb"),
            (pool_path, "pool/../../x.deb"),
            (pool_path, "http://evil/pool/a.deb"),
            (pool_path, "pool/a b.deb"),
            (pool_path, "pool/a.deb?x"),
            (pool_path, "pool/main/a.tar"),
            (release, "sid"),
            (release, "13"),
        ];
        // Each refusal quotes the value it refuses.
        for (check, value) in bad {
            let err = check(value).unwrap_err().to_string();
            assert!(err.contains(&format!("{value:?} is not")), "{value}: {err}");
        }
        assert!(package_name("libc6", "name").is_ok());
        for name in ["Libc6", "a/../b"] {
            let err = package_name(name, "name").unwrap_err().to_string();
            assert!(err.contains("is not a Debian package name"), "{err}");
        }
        assert!(version("1:1.37.0-6+b9", "version").is_ok());
        for (bad, why) in [
            ("2.0\nInjected: yes", "'\\n' is not allowed"),
            ("1.0 ", "' ' is not allowed"),
        ] {
            let err = version(bad, "version").unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
        }
        assert!(architecture("riscv64", "arch").is_ok());
        let err = architecture("i386", "arch").unwrap_err().to_string();
        assert!(
            err.contains("is not a Debian release architecture"),
            "{err}"
        );
    }
}
