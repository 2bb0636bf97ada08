//! Path policy: which package paths are acceptable and which ones slicing drops (where
//! merged /usr puts them is [`bareboat_apt::dpkg::merged_usr`]). Pure functions, so they
//! are tested with tables.

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::Error;

/// What slicing keeps and drops.
#[derive(Clone, Debug)]
pub struct Slicing {
    /// Apply the built-in drops (docs, man and info pages, lintian, bug files, locales).
    pub defaults: bool,
    keep: GlobSet,
    drop: GlobSet,
    /// Packages of which only these paths stay (see [`within`]).
    keep_only: Vec<(String, Vec<String>)>,
}

impl Default for Slicing {
    fn default() -> Self {
        Slicing {
            defaults: true,
            keep: GlobSet::empty(),
            drop: GlobSet::empty(),
            keep_only: Vec::new(),
        }
    }
}

impl Slicing {
    /// Builds a policy from the spec's globs, matched against paths relative to the root
    /// (a leading `/` in a glob is ignored).
    pub fn new(defaults: bool, keep: &[String], drop: &[String]) -> Result<Slicing, Error> {
        Ok(Slicing {
            defaults,
            keep: globs(keep)?,
            drop: globs(drop)?,
            keep_only: Vec::new(),
        })
    }

    /// The same policy, keeping of each listed package only the paths [`within`] its list
    /// (and of those, what the rest of the policy keeps).
    pub fn keeping_only(self, keep_only: &[(String, Vec<String>)]) -> Slicing {
        Slicing {
            keep_only: keep_only.to_vec(),
            ..self
        }
    }

    /// Whether `path` (relative, after merged /usr) of `package` stays in the image.
    pub fn keeps(&self, package: &str, path: &str) -> bool {
        if let Some((_, paths)) = self.keep_only.iter().find(|(p, _)| p == package)
            && !within(path, paths)
        {
            return false;
        }
        if self.drop.is_match(path) {
            return false;
        }
        !(self.defaults && dropped_by_default(path) && !self.keep.is_match(path))
    }
}

/// Whether `path` is one of `paths`, lies under one, or is a directory on the way to one
/// (so a kept file's directories keep the package's modes, not implied ones).
pub fn within(path: &str, paths: &[String]) -> bool {
    let under = |inner: &str, outer: &str| {
        inner
            .strip_prefix(outer)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    paths.iter().any(|p| under(path, p) || under(p, path))
}

/// Compiles globs matched against paths relative to the root (a leading `/` is ignored).
pub fn globs(patterns: &[String]) -> Result<GlobSet, Error> {
    let invalid = |pattern: &str, e: globset::Error| Error::Glob {
        pattern: pattern.to_string(),
        reason: e.to_string(),
    };
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        b.add(Glob::new(p.trim_start_matches('/')).map_err(|e| invalid(p, e))?);
    }
    b.build().map_err(|e| invalid(&patterns.join(", "), e))
}

/// Paths that no program reads at run time. Each package's `copyright` stays: licences
/// require it to travel with the files.
fn dropped_by_default(path: &str) -> bool {
    if let Some(rest) = path.strip_prefix("usr/share/doc/") {
        // usr/share/doc/<pkg> stays, for its copyright; everything else under it goes.
        return rest.contains('/') && !rest.ends_with("/copyright");
    }
    if let Some(rest) = path.strip_prefix("usr/share/locale/") {
        // Per-language catalogues go; the C locales and top-level files (locale.alias) stay.
        return match rest.split_once('/') {
            Some((lang, _)) => lang != "C" && !lang.starts_with("C."),
            None => false,
        };
    }
    [
        "usr/share/man",
        "usr/share/info",
        "usr/share/lintian",
        "usr/share/bug",
        "usr/share/doc-base",
        "usr/share/gtk-doc",
    ]
    .iter()
    .any(|dir| {
        path.strip_prefix(dir)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_slicing() {
        let s = Slicing::default();
        for (path, kept) in [
            ("usr/share/doc", true),
            ("usr/share/doc/libc6", true),
            ("usr/share/doc/libc6/copyright", true),
            ("usr/share/doc/libc6/changelog.Debian.gz", false),
            ("usr/share/doc/libc6/examples/x.c", false),
            ("usr/share/man", false),
            ("usr/share/man/man1/ls.1.gz", false),
            ("usr/share/manifest", true),
            ("usr/share/info/dir", false),
            ("usr/share/lintian/overrides/libc6", false),
            ("usr/share/bug/libc6/control", false),
            ("usr/share/locale/de/LC_MESSAGES/libc.mo", false),
            ("usr/share/locale/C.UTF-8/LC_MESSAGES/x.mo", true),
            ("usr/share/locale/locale.alias", true),
            ("usr/share/zoneinfo/Europe/Paris", true),
            ("usr/lib/x86_64-linux-gnu/libc.so.6", true),
        ] {
            assert_eq!(s.keeps("p", path), kept, "{path}");
        }
    }

    #[test]
    fn a_package_can_keep_only_some_paths() {
        let s = Slicing::default().keeping_only(&[(
            "libc-bin".into(),
            vec![
                "usr/lib/locale/C.utf8".into(),
                "usr/share/doc/libc-bin/copyright".into(),
            ],
        )]);
        for (package, path, kept) in [
            ("libc-bin", "usr/lib/locale/C.utf8", true),
            ("libc-bin", "usr/lib/locale/C.utf8/LC_CTYPE", true),
            (
                "libc-bin",
                "usr/lib/locale/C.utf8/LC_MESSAGES/SYS_LC_MESSAGES",
                true,
            ),
            // The directories leading there stay, with the package's metadata.
            ("libc-bin", "usr", true),
            ("libc-bin", "usr/lib/locale", true),
            ("libc-bin", "usr/share/doc/libc-bin", true),
            ("libc-bin", "usr/share/doc/libc-bin/copyright", true),
            // A sibling whose name only starts the same is not under it.
            ("libc-bin", "usr/lib/locale/C.utf8x", false),
            ("libc-bin", "usr/lib/locale/C.utf", false),
            ("libc-bin", "usr/sbin/ldconfig", false),
            ("libc-bin", "usr/bin/ldd", false),
            ("libc-bin", "etc/ld.so.conf", false),
            (
                "libc-bin",
                "usr/share/doc/libc-bin/changelog.Debian.gz",
                false,
            ),
            // Other packages are sliced as before.
            ("libc6", "usr/sbin/ldconfig", true),
            ("libc6", "usr/share/doc/libc6/changelog.Debian.gz", false),
        ] {
            assert_eq!(s.keeps(package, path), kept, "{package}: {path}");
        }
    }

    #[test]
    fn spec_globs_keep_and_drop() {
        let s = Slicing::new(
            true,
            &["usr/share/doc/**".into()],
            &["/usr/share/zoneinfo/right/**".into(), "**/*.a".into()],
        )
        .unwrap();
        assert!(s.keeps("p", "usr/share/doc/libc6/changelog.Debian.gz"));
        assert!(!s.keeps("p", "usr/share/zoneinfo/right/UTC"));
        assert!(!s.keeps("p", "usr/lib/libfoo.a"));
        assert!(!s.keeps("p", "usr/share/man/man1/ls.1.gz"));
        let off = Slicing::new(false, &[], &[]).unwrap();
        assert!(off.keeps("p", "usr/share/man/man1/ls.1.gz"));
        let err = format!("{:#}", Slicing::new(true, &["[".into()], &[]).unwrap_err());
        assert!(err.contains("invalid glob \"[\""), "{err}");
    }
}
