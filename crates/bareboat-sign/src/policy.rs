//! Policies over verified attestations: a small TOML file that requires attestation types,
//! predicate fields, the origin of every resolved dependency, and a recent build.
//!
//! ```toml
//! require = ["slsaprovenance1", "spdx"]
//! max_age = "30d"                        # SLSA provenance's runDetails.metadata.finishedOn
//! origins = ["http://mirror.example/debian/", "docker://registry.example.com/"]
//!
//! [[field]]
//! type = "slsaprovenance1"
//! path = "runDetails.builder.id"
//! equals = "https://github.com/bareboat-dev/bareboat"
//! ```
//!
//! Each rule is checked against the newest valid attestation of its type (by
//! `finishedOn`, for provenance), and every check is reported, passed or not.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::formats::AttestationType;

/// A policy, as its file gives it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The attestation types that must be there, each valid.
    #[serde(default)]
    pub require: Vec<String>,
    /// How old the SLSA provenance's `finishedOn` may be, such as `30d` or `12h`.
    #[serde(default)]
    pub max_age: Option<String>,
    /// Where every resolved dependency of the SLSA provenance that has a URI must come
    /// from: prefixes of those URIs.
    #[serde(default)]
    pub origins: Vec<String>,
    /// Predicate fields that must have a value.
    #[serde(default, rename = "field")]
    pub fields: Vec<FieldRule>,
}

/// A predicate field that must have a value.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldRule {
    /// The attestation type whose predicate it is in.
    #[serde(rename = "type")]
    pub kind: String,
    /// The field, by its keys from the predicate down, joined by dots.
    pub path: String,
    /// The value it must have.
    pub equals: toml::Value,
}

/// One check of a policy, and its result.
#[derive(Clone, Debug, Serialize)]
pub struct PolicyCheck {
    /// What was checked.
    pub check: String,
    /// Whether it passed.
    pub passed: bool,
    /// What was found.
    pub detail: String,
}

impl Policy {
    /// Reads a policy's text, checking every type and duration it names.
    pub fn parse(text: &str, origin: &str) -> Result<Policy, String> {
        let mut policy: Policy = toml::from_str(text).map_err(|e| format!("{origin}: {e}"))?;
        // Each type by the name verification gives it (`custom` as cosign's predicate type).
        let canonical = |t: &str| {
            (t.parse::<AttestationType>())
                .map(|t| t.to_string())
                .map_err(|e| format!("{origin}: {e}"))
        };
        for t in &mut policy.require {
            *t = canonical(t)?;
        }
        for f in &mut policy.fields {
            f.kind = canonical(&f.kind)?;
        }
        for o in &policy.origins {
            Origin::parse(o).map_err(|e| format!("{origin}: origins: {e}"))?;
        }
        if let Some(age) = &policy.max_age {
            humantime::parse_duration(age)
                .map_err(|e| format!("{origin}: max_age {age:?}: {e}"))?;
        }
        Ok(policy)
    }

    /// Every attestation type the policy names, each once: those to verify.
    pub fn types(&self) -> Vec<String> {
        let mut types: Vec<String> = self.require.clone();
        types.extend(self.fields.iter().map(|f| f.kind.clone()));
        if self.max_age.is_some() || !self.origins.is_empty() {
            types.push(AttestationType::SlsaProvenance1.to_string());
        }
        types.sort();
        types.dedup();
        types
    }

    /// Checks the policy against the valid attestations' statements, by the type they were
    /// verified as, at `now`.
    pub fn check(
        &self,
        verified: &BTreeMap<String, Vec<Value>>,
        now: SystemTime,
    ) -> Vec<PolicyCheck> {
        let newest = |kind: &str| newest(verified.get(kind).map_or(&[][..], Vec::as_slice));
        let mut checks = Vec::new();
        for kind in &self.require {
            let count = verified.get(kind).map_or(0, Vec::len);
            checks.push(PolicyCheck {
                check: format!("require {kind}"),
                passed: count > 0,
                detail: format!("{count} valid {kind} attestation(s)"),
            });
        }
        let provenance = newest(&AttestationType::SlsaProvenance1.to_string());
        if let Some(age) = &self.max_age {
            checks.push(max_age(provenance, age, now));
        }
        if !self.origins.is_empty() {
            checks.push(origins(provenance, &self.origins));
        }
        for rule in &self.fields {
            let found = newest(&rule.kind).map(|s| field(&s["predicate"], &rule.path));
            let wanted = serde_json::to_value(&rule.equals).unwrap_or(Value::Null);
            let (passed, detail) = match found {
                None => (false, format!("no valid {} attestation", rule.kind)),
                Some(None) => (false, format!("{} is not in the predicate", rule.path)),
                Some(Some(v)) => (*v == wanted, format!("{} is {v}", rule.path)),
            };
            checks.push(PolicyCheck {
                check: format!("{} {} equals {wanted}", rule.kind, rule.path),
                passed,
                detail,
            });
        }
        checks
    }
}

/// The newest of `statements`, by their provenance's `finishedOn` (the last, if none has
/// one).
pub fn newest(statements: &[Value]) -> Option<&Value> {
    let finished = |s: &&Value| finished_on(s).unwrap_or(SystemTime::UNIX_EPOCH);
    statements.iter().max_by_key(finished)
}

/// How far ahead of this machine's clock a build may say it finished.
const CLOCK_SKEW: Duration = Duration::from_secs(300);

/// When the build a provenance statement records finished.
fn finished_on(statement: &Value) -> Option<SystemTime> {
    let at = statement["predicate"]["runDetails"]["metadata"]["finishedOn"].as_str()?;
    humantime::parse_rfc3339_weak(at).ok()
}

/// The `max_age` check of `provenance`.
fn max_age(provenance: Option<&Value>, age: &str, now: SystemTime) -> PolicyCheck {
    let limit = humantime::parse_duration(age).unwrap_or(Duration::ZERO);
    let check = format!("slsaprovenance1 finishedOn within {age}");
    let Some(statement) = provenance else {
        return PolicyCheck {
            check,
            passed: false,
            detail: "no valid slsaprovenance1 attestation".into(),
        };
    };
    let (passed, detail) = match finished_on(statement) {
        None => (
            false,
            "it has no runDetails.metadata.finishedOn".to_string(),
        ),
        Some(at) if at > now + CLOCK_SKEW => (
            false,
            format!(
                "it says it finished at {}, in the future",
                humantime::format_rfc3339_seconds(at)
            ),
        ),
        Some(at) => {
            let elapsed = now.duration_since(at).unwrap_or(Duration::ZERO);
            let hours = elapsed.as_secs() / 3600;
            let when = humantime::format_rfc3339_seconds(at);
            (
                elapsed <= limit,
                format!("finished {when}, {}d {}h ago", hours / 24, hours % 24),
            )
        }
    };
    PolicyCheck {
        check,
        passed,
        detail,
    }
}

/// The `origins` check of `provenance`: every resolved dependency with a URI comes from
/// one of `origins`.
fn origins(provenance: Option<&Value>, origins: &[String]) -> PolicyCheck {
    let check = format!("every resolved dependency from {}", origins.join(" or "));
    let Some(statement) = provenance else {
        return PolicyCheck {
            check,
            passed: false,
            detail: "no valid slsaprovenance1 attestation".into(),
        };
    };
    let dependencies = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    let uris: Vec<&str> = dependencies
        .iter()
        .filter_map(|d| d["uri"].as_str())
        .collect();
    let allowed: Vec<Origin> = origins
        .iter()
        .filter_map(|o| Origin::parse(o).ok())
        .collect();
    let foreign: Vec<&&str> = (uris.iter())
        .filter(|u| !Origin::parse(u).is_ok_and(|u| allowed.iter().any(|o| o.holds(&u))))
        .collect();
    let (passed, detail) = match foreign.first() {
        None if uris.is_empty() => (false, "it lists no dependency with a URI".to_string()),
        None => (true, format!("{} dependencies, all from there", uris.len())),
        Some(first) => (
            false,
            format!(
                "{} of {} are not, such as {first}",
                foreign.len(),
                uris.len()
            ),
        ),
    };
    PolicyCheck {
        check,
        passed,
        detail,
    }
}

/// A URI, or an origin a policy names: its scheme and authority compared exactly, its path
/// by whole segments, so that `http://mirror/debian` holds `http://mirror/debian/pool/x`
/// but not `http://mirror/debian-evil/x` or `http://mirror.evil/`.
#[derive(Debug, PartialEq, Eq)]
struct Origin<'a> {
    scheme: &'a str,
    authority: &'a str,
    segments: Vec<&'a str>,
}

impl<'a> Origin<'a> {
    fn parse(uri: &'a str) -> Result<Origin<'a>, String> {
        let (scheme, rest) = uri
            .split_once("://")
            .ok_or_else(|| format!("{uri:?} is not a URI (scheme://host/path)"))?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        if scheme.is_empty() || authority.is_empty() {
            return Err(format!("{uri:?} names no scheme or host"));
        }
        Ok(Origin {
            scheme,
            authority,
            segments: path.split('/').filter(|s| !s.is_empty()).collect(),
        })
    }

    /// Whether `uri` comes from this origin.
    fn holds(&self, uri: &Origin) -> bool {
        self.scheme.eq_ignore_ascii_case(uri.scheme)
            && self.authority.eq_ignore_ascii_case(uri.authority)
            && uri.segments.starts_with(&self.segments)
    }
}

/// The value at `path` (keys joined by dots) in `value`.
fn field<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |v, key| v.get(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn provenance(builder: &str, finished: &str, uris: &[&str]) -> Value {
        let deps: Vec<Value> = uris.iter().map(|u| json!({"uri": u})).collect();
        json!({"predicate": {
            "buildDefinition": {"resolvedDependencies": deps},
            "runDetails": {"builder": {"id": builder}, "metadata": {"finishedOn": finished}},
        }})
    }

    #[test]
    fn each_rule_is_checked_against_the_newest_attestation() {
        let policy = Policy::parse(
            r#"
require = ["slsaprovenance1", "spdx"]
max_age = "2d"
origins = ["http://mirror/debian/"]
[[field]]
type = "slsaprovenance1"
path = "runDetails.builder.id"
equals = "https://builder"
"#,
            "policy.toml",
        )
        .unwrap();
        let now = humantime::parse_rfc3339("2026-12-07T00:00:00Z").unwrap();
        let old = provenance(
            "https://other",
            "2026-11-01T00:00:00Z",
            &["http://mirror/debian-evil/x.deb"],
        );
        let new = provenance(
            "https://builder",
            "2026-12-06T00:00:00Z",
            &["http://mirror/debian/a.deb"],
        );
        let verified = BTreeMap::from([("slsaprovenance1".to_string(), vec![old.clone(), new])]);
        let checks = policy.check(&verified, now);
        let failed: Vec<&str> = (checks.iter())
            .filter(|c| !c.passed)
            .map(|c| c.check.as_str())
            .collect();
        assert_eq!(failed, ["require spdx"], "{checks:?}");

        let verified = BTreeMap::from([("slsaprovenance1".to_string(), vec![old])]);
        let checks = policy.check(&verified, now);
        let failed: Vec<String> = (checks.iter())
            .filter(|c| !c.passed)
            .map(|c| format!("{}: {}", c.check, c.detail))
            .collect();
        assert_eq!(failed.len(), 4, "{failed:?}");
        assert!(
            failed[1].contains("finished 2026-11-01T00:00:00Z, 36d 0h ago"),
            "{failed:?}"
        );
        assert!(
            failed[2].contains("1 of 1 are not, such as http://mirror/debian-evil/x.deb"),
            "{failed:?}"
        );
        assert!(
            failed[3].contains("runDetails.builder.id is \"https://other\""),
            "{failed:?}"
        );
    }

    #[test]
    fn origins_compare_hosts_exactly_and_paths_by_segment() {
        let o = Origin::parse("http://mirror/debian").unwrap();
        let holds = |u: &str| o.holds(&Origin::parse(u).unwrap());
        assert!(holds("http://mirror/debian/pool/a.deb"));
        assert!(holds("HTTP://MIRROR/debian/x"));
        assert!(!holds("http://mirror/debian-evil/x"));
        assert!(!holds("http://mirror.evil/debian/x"));
        assert!(!holds("https://mirror/debian/x"));
        let err = Origin::parse("mirror/debian").unwrap_err().to_string();
        assert!(err.contains("is not a URI"), "{err}");
    }

    #[test]
    fn a_build_that_says_it_finishes_in_the_future_is_not_recent() {
        let now = humantime::parse_rfc3339("2026-12-07T00:00:00Z").unwrap();
        let future = provenance("b", "2027-01-01T00:00:00Z", &[]);
        let check = max_age(Some(&future), "30d", now);
        assert!(
            !check.passed && check.detail.contains("in the future"),
            "{check:?}"
        );
        let empty = origins(Some(&future), &["http://mirror/debian".into()]);
        assert!(!empty.passed, "nothing checked is no pass: {empty:?}");
    }

    #[test]
    fn a_policy_naming_what_does_not_exist_is_refused() {
        assert!(
            Policy::parse("require = [\"nonsense\"]", "p")
                .unwrap_err()
                .contains("nonsense")
        );
        assert!(
            Policy::parse("max_age = \"soon\"", "p")
                .unwrap_err()
                .contains("max_age")
        );
        assert!(
            Policy::parse("surprise = 1", "p")
                .unwrap_err()
                .contains("surprise")
        );
    }
}
