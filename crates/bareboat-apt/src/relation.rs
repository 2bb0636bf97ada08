//! Package relationship fields (`Depends`, `Pre-Depends`, `Provides`, `Conflicts`, `Breaks`)
//! and the `Source` field, as they appear in binary `Packages` stanzas.

use std::fmt;
use std::str::FromStr;

use debversion::Version;

/// A version comparison operator of a relation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// `<<`
    Lt,
    /// `<=` (and the obsolete `<`)
    Le,
    /// `=`
    Eq,
    /// `>=` (and the obsolete `>`)
    Ge,
    /// `>>`
    Gt,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "<<" => Op::Lt,
            "<=" | "<" => Op::Le,
            "=" => Op::Eq,
            ">=" | ">" => Op::Ge,
            ">>" => Op::Gt,
            _ => return None,
        })
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Lt => "<<",
            Op::Le => "<=",
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::Gt => ">>",
        })
    }
}

/// A version constraint such as `>= 2.36`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Constraint {
    /// How the version must compare.
    pub op: Op,
    /// The version compared against.
    pub version: Version,
}

impl Constraint {
    /// Whether `v` satisfies this constraint, in dpkg's version order.
    pub fn matches(&self, v: &Version) -> bool {
        let ord = v.cmp(&self.version);
        match self.op {
            Op::Lt => ord.is_lt(),
            Op::Le => ord.is_le(),
            Op::Eq => ord.is_eq(),
            Op::Ge => ord.is_ge(),
            Op::Gt => ord.is_gt(),
        }
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.op, self.version)
    }
}

/// One alternative of a relation clause: `name[:arch] [(op version)]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alternative {
    /// The package (or virtual package) name.
    pub name: String,
    /// An architecture qualifier such as `any` or `native`. Images are single-architecture
    /// per manifest, so every qualifier resolves within the same architecture.
    pub arch: Option<String>,
    /// The version it must have, if any.
    pub constraint: Option<Constraint>,
}

impl fmt::Display for Alternative {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(arch) = &self.arch {
            write!(f, ":{arch}")?;
        }
        if let Some(c) = &self.constraint {
            write!(f, " ({c})")?;
        }
        Ok(())
    }
}

/// A comma-separated clause: satisfied by any one of its alternatives (`a | b`).
pub type Clause = Vec<Alternative>;

/// Formats a clause the way it is written in a control file.
pub fn clause_to_string(clause: &[Alternative]) -> String {
    clause
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" | ")
}

/// A malformed relation field.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed relation {text:?}: {reason}")]
pub struct RelationError {
    /// The text at fault: one alternative, or the whole field.
    pub text: String,
    /// What is wrong with it.
    pub reason: String,
}

fn err(text: &str, reason: impl Into<String>) -> RelationError {
    RelationError {
        text: text.to_string(),
        reason: reason.into(),
    }
}

/// Parses a `Depends`-style field into clauses of alternatives.
pub fn parse_relations(field: &str) -> Result<Vec<Clause>, RelationError> {
    let mut clauses = Vec::new();
    for clause in field.split(',') {
        let clause = clause.trim();
        if clause.is_empty() {
            continue;
        }
        clauses.push(
            clause
                .split('|')
                .map(|alt| parse_alternative(alt.trim()))
                .collect::<Result<_, _>>()?,
        );
    }
    Ok(clauses)
}

fn parse_alternative(text: &str) -> Result<Alternative, RelationError> {
    if text.is_empty() {
        return Err(err(text, "empty alternative"));
    }
    if text.contains('[') || text.contains('<') && !text.contains('(') {
        return Err(err(
            text,
            "architecture or profile restrictions belong in source packages only",
        ));
    }
    let (head, constraint) = match text.find('(') {
        Some(open) => {
            let close = text
                .rfind(')')
                .filter(|&c| c > open)
                .ok_or_else(|| err(text, "unclosed '('"))?;
            if !text[close + 1..].trim().is_empty() {
                return Err(err(text, "text after the version constraint"));
            }
            let inner = text[open + 1..close].trim();
            let split = inner
                .find(|c: char| !matches!(c, '<' | '>' | '='))
                .ok_or_else(|| err(text, "missing version"))?;
            let op = Op::parse(&inner[..split])
                .ok_or_else(|| err(text, format!("unknown operator {:?}", &inner[..split])))?;
            let version = parse_version(inner[split..].trim()).map_err(|e| err(text, e))?;
            (text[..open].trim(), Some(Constraint { op, version }))
        }
        None => (text, None),
    };
    let (name, arch) = match head.split_once(':') {
        Some((n, a)) => (n, Some(a.to_string())),
        None => (head, None),
    };
    if !is_package_name(name) {
        return Err(err(text, format!("invalid package name {name:?}")));
    }
    Ok(Alternative {
        name: name.to_string(),
        arch,
        constraint,
    })
}

/// A `Provides` entry: a virtual name, optionally with an exact version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provide {
    /// The virtual name provided.
    pub name: String,
    /// The version it is provided at, if one is given; an unversioned provide satisfies only
    /// unversioned dependencies.
    pub version: Option<Version>,
}

/// Parses a `Provides` field. Only `=` versions are allowed there.
pub fn parse_provides(field: &str) -> Result<Vec<Provide>, RelationError> {
    parse_relations(field)?
        .into_iter()
        .map(|clause| {
            let [alt]: [Alternative; 1] = clause
                .try_into()
                .map_err(|_| err(field, "alternatives are not allowed in Provides"))?;
            match alt.constraint {
                None => Ok(Provide {
                    name: alt.name,
                    version: None,
                }),
                Some(Constraint {
                    op: Op::Eq,
                    version,
                }) => Ok(Provide {
                    name: alt.name,
                    version: Some(version),
                }),
                Some(_) => Err(err(field, "Provides allows only '=' versions")),
            }
        })
        .collect()
}

/// The `Source` field of a binary package: the source name, and its version when it
/// differs from the binary's (`busybox (1:1.37.0-6)` for binary `1:1.37.0-6+b9`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceRef {
    /// The source package's name.
    pub name: String,
    /// The source package's version, when it differs from the binary's.
    pub version: Option<Version>,
}

impl SourceRef {
    /// Parses `Source`; an absent field means the source is named like the binary.
    pub fn parse(field: Option<&str>, binary_name: &str) -> Result<SourceRef, RelationError> {
        let Some(field) = field.map(str::trim).filter(|f| !f.is_empty()) else {
            return Ok(SourceRef {
                name: binary_name.to_string(),
                version: None,
            });
        };
        let (name, version) = match field.split_once('(') {
            Some((name, rest)) => {
                let v = rest
                    .strip_suffix(')')
                    .ok_or_else(|| err(field, "unclosed '('"))?;
                (
                    name.trim(),
                    Some(parse_version(v.trim()).map_err(|e| err(field, e))?),
                )
            }
            None => (field, None),
        };
        if !is_package_name(name) {
            return Err(err(field, format!("invalid source name {name:?}")));
        }
        Ok(SourceRef {
            name: name.to_string(),
            version,
        })
    }
}

/// Parses a Debian version, naming what is wrong with it. Only policy's characters are
/// accepted (letters, digits, `. + ~ - :`), so no space, newline or control character of a
/// hostile index or lockfile reaches a message or a path.
pub fn parse_version(text: &str) -> Result<Version, String> {
    if let Some(c) = text
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || ".+~-:".contains(*c)))
    {
        return Err(format!(
            "invalid version {text:?}: {c:?} is not allowed in a version"
        ));
    }
    Version::from_str(text).map_err(|e| format!("invalid version {text:?}: {e:?}"))
}

/// Debian policy 5.6.1: lowercase letters, digits, `+ - .`, at least two characters,
/// starting with an alphanumeric.
pub fn is_package_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"+-.".contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    #[test]
    fn parses_alternatives_constraints_and_qualifiers() {
        let clauses = parse_relations(
            "libc6 (>= 2.34), debconf (>= 0.5) | debconf-2.0, python3:any (<< 3.14),perl:native",
        )
        .unwrap();
        assert_eq!(clauses.len(), 4);
        assert_eq!(clauses[0][0].name, "libc6");
        assert_eq!(
            clauses[0][0].constraint,
            Some(Constraint {
                op: Op::Ge,
                version: v("2.34")
            })
        );
        assert_eq!(clauses[1].len(), 2);
        assert_eq!(clauses[1][1].name, "debconf-2.0");
        assert_eq!(clauses[1][1].constraint, None);
        assert_eq!(clauses[2][0].arch.as_deref(), Some("any"));
        assert_eq!(clauses[2][0].constraint.as_ref().unwrap().op, Op::Lt);
        assert_eq!(clauses[3][0].arch.as_deref(), Some("native"));
        assert_eq!(
            clause_to_string(&clauses[1]),
            "debconf (>= 0.5) | debconf-2.0"
        );
    }

    #[test]
    fn all_operators_and_obsolete_forms() {
        for (text, op) in [
            ("a0 (<< 1)", Op::Lt),
            ("a0 (<= 1)", Op::Le),
            ("a0 (< 1)", Op::Le),
            ("a0 (= 1)", Op::Eq),
            ("a0 (>= 1)", Op::Ge),
            ("a0 (> 1)", Op::Ge),
            ("a0 (>> 1)", Op::Gt),
            ("a0 (>>1)", Op::Gt),
        ] {
            let c = &parse_relations(text).unwrap()[0][0];
            assert_eq!(c.constraint.as_ref().unwrap().op, op, "{text}");
        }
    }

    #[test]
    fn constraint_matching_uses_dpkg_order() {
        let c = Constraint {
            op: Op::Ge,
            version: v("2.36"),
        };
        assert!(c.matches(&v("2.41-12")));
        assert!(!c.matches(&v("2.36~rc1")));
        let lt = Constraint {
            op: Op::Lt,
            version: v("1:0"),
        };
        assert!(lt.matches(&v("9.9")));
        assert!(!lt.matches(&v("1:0.1")));
    }

    #[test]
    fn rejects_malformed_relations() {
        for (bad, why) in [
            ("libc6 (>= 2.34", "unclosed '('"),
            ("libc6 (~ 1)", "unknown operator"),
            ("libc6 (>=)", "missing version"),
            ("Libc6", "invalid package name \"Libc6\""),
            ("a | ", "invalid package name \"a\""),
            ("foo [amd64]", "belong in source packages only"),
            ("foo (>= 1) bar", "text after the version constraint"),
        ] {
            let err = parse_relations(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn provides_allow_only_exact_versions() {
        let p = parse_provides("awk, libfoo (= 1.2-3)").unwrap();
        assert_eq!(p[0].name, "awk");
        assert_eq!(p[0].version, None);
        assert_eq!(p[1].version, Some(v("1.2-3")));
        for (bad, why) in [
            ("awk (>= 1)", "Provides allows only '=' versions"),
            ("a0 | b0", "alternatives are not allowed in Provides"),
        ] {
            let err = parse_provides(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn source_field_with_and_without_version() {
        let s = SourceRef::parse(Some("busybox (1:1.37.0-6)"), "busybox-static").unwrap();
        assert_eq!(s.name, "busybox");
        assert_eq!(s.version, Some(v("1:1.37.0-6")));
        let s = SourceRef::parse(Some("glibc"), "libc6").unwrap();
        assert_eq!(s.name, "glibc");
        assert_eq!(s.version, None);
        let s = SourceRef::parse(None, "base-files").unwrap();
        assert_eq!(s.name, "base-files");
        let err = SourceRef::parse(Some("glibc (2.41"), "libc6").unwrap_err();
        assert!(err.to_string().contains("unclosed '('"), "{err}");
    }
}
