//! The `Release` file that a verified `InRelease` carries: dates and the index hash list.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::Error;

/// One index file listed in `Release` under `SHA256:`: what a download of it must be.
pub type IndexEntry = crate::download::Expected;

/// The parsed fields of a `Release` file that bareboat acts on.
#[derive(Clone, Debug)]
pub struct Release {
    /// `Origin`, such as `Debian`.
    pub origin: Option<String>,
    /// `Suite`, such as `stable`.
    pub suite: Option<String>,
    /// `Codename`, such as `trixie`.
    pub codename: Option<String>,
    /// `Version`, such as `13.1`.
    pub version: Option<String>,
    /// `Date`, as written.
    pub date: String,
    /// `Date`, as seconds since the epoch.
    pub date_unix: u64,
    /// `Valid-Until`, as seconds since the epoch: after it, the Release is stale.
    pub valid_until: Option<u64>,
    /// `Acquire-By-Hash: yes`: index files can be fetched by their SHA256, under `by-hash/`.
    pub acquire_by_hash: bool,
    /// `No-Support-for-Architecture-all: Packages`: binary-ARCH already lists `all` packages.
    pub all_in_arch_indexes: bool,
    /// `Architectures`, as listed.
    pub architectures: Vec<String>,
    /// The files listed under `SHA256`, by their path under `dists/SUITE/`.
    pub files: BTreeMap<String, IndexEntry>,
}

impl Release {
    /// Parses the signed text of `InRelease`.
    pub fn parse(text: &str, url: &str) -> Result<Release, Error> {
        let bad = |what: String| Error::BadRelease {
            url: url.to_string(),
            reason: what,
        };
        let mut fields: BTreeMap<&str, String> = BTreeMap::new();
        let mut files = BTreeMap::new();
        let mut in_sha256 = false;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix(' ') {
                if in_sha256 {
                    let mut parts = rest.split_whitespace();
                    let (Some(hash), Some(size), Some(path), None) =
                        (parts.next(), parts.next(), parts.next(), parts.next())
                    else {
                        return Err(bad(format!("malformed SHA256 line {line:?}")));
                    };
                    let size = size
                        .parse()
                        .map_err(|_| bad(format!("malformed size in {line:?}")))?;
                    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err(bad(format!("malformed SHA256 in {line:?}")));
                    }
                    files.insert(
                        path.to_string(),
                        IndexEntry {
                            size,
                            sha256: hash.to_ascii_lowercase(),
                        },
                    );
                }
                continue;
            }
            let Some((name, value)) = line.split_once(':') else {
                if line.trim().is_empty() {
                    continue;
                }
                return Err(bad(format!("malformed line {line:?}")));
            };
            in_sha256 = name == "SHA256";
            fields.insert(name, value.trim().to_string());
        }
        let date = fields
            .remove("Date")
            .ok_or_else(|| bad("no Date field".into()))?;
        let date_unix = parse_rfc2822(&date).ok_or_else(|| bad(format!("bad Date {date:?}")))?;
        let valid_until = match fields.remove("Valid-Until") {
            Some(v) => {
                Some(parse_rfc2822(&v).ok_or_else(|| bad(format!("bad Valid-Until {v:?}")))?)
            }
            None => None,
        };
        if files.is_empty() {
            return Err(bad("no SHA256 index list".into()));
        }
        Ok(Release {
            origin: fields.remove("Origin"),
            suite: fields.remove("Suite"),
            codename: fields.remove("Codename"),
            version: fields.remove("Version"),
            date,
            date_unix,
            valid_until,
            acquire_by_hash: fields
                .get("Acquire-By-Hash")
                .is_some_and(|v| v.eq_ignore_ascii_case("yes")),
            all_in_arch_indexes: fields
                .get("No-Support-for-Architecture-all")
                .is_some_and(|v| v == "Packages"),
            architectures: fields
                .get("Architectures")
                .map(|a| a.split_whitespace().map(String::from).collect())
                .unwrap_or_default(),
            files,
        })
    }

    /// The suite's other name in this Release: `stable` for a source that asked for
    /// `trixie`, `trixie` for one that asked for `stable` (and likewise `-updates` and
    /// `-security`), if the Release gives both and they differ.
    pub fn other_suite_name(&self, asked: &str) -> Option<String> {
        let (suite, codename) = (self.suite.as_deref()?, self.codename.as_deref()?);
        let other = if asked == codename {
            suite
        } else if asked == suite {
            codename
        } else {
            return None;
        };
        (other != asked).then(|| other.to_string())
    }

    /// Whether this Release speaks for the same archive and release as `other`: the same
    /// origin and codename.
    pub fn vouches_like(&self, other: &Release) -> bool {
        self.codename.is_some() && self.codename == other.codename && self.origin == other.origin
    }

    /// Refuses a release whose `Valid-Until` has passed at `now`.
    pub fn check_valid_until(&self, now: SystemTime, url: &str) -> Result<(), Error> {
        let now = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
        match self.valid_until {
            Some(until) if until < now => Err(Error::ReleaseExpired {
                url: url.to_string(),
                valid_until: format_unix(until),
            }),
            _ => Ok(()),
        }
    }
}

/// Parses the RFC 2822 dates of Release files: `Sat, 12 Sep 2026 07:55:41 UTC`.
pub fn parse_rfc2822(s: &str) -> Option<u64> {
    let s = s.split_once(',').map_or(s, |(_, rest)| rest).trim();
    let mut parts = s.split_whitespace();
    let day: u64 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':').map(|p| p.parse::<u64>());
    let (h, m, sec) = (hms.next()?.ok()?, hms.next()?.ok()?, hms.next()?.ok()?);
    let offset = match parts.next() {
        None | Some("UTC" | "GMT" | "Z") => 0i64,
        Some(z) if z.len() == 5 && (z.starts_with('+') || z.starts_with('-')) => {
            let hh: i64 = z[1..3].parse().ok()?;
            let mm: i64 = z[3..5].parse().ok()?;
            let off = hh * 3600 + mm * 60;
            if z.starts_with('-') { -off } else { off }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day as i64);
    let secs = days * 86400 + (h * 3600 + m * 60 + sec) as i64 - offset;
    u64::try_from(secs).ok()
}

/// Formats seconds since the epoch as `2026-09-12 07:55:41 UTC`.
pub fn format_unix(secs: u64) -> String {
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Formats seconds since the epoch as RFC 3339 in UTC, as image configs record times.
pub fn format_rfc3339(secs: u64) -> String {
    let (y, m, d) = civil_from_days((secs / 86400) as i64);
    let rem = secs % 86400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

// Howard Hinnant's algorithms for the proleptic Gregorian calendar.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Origin: Debian\nSuite: stable\nCodename: trixie\nVersion: 13.7\n\
Date: Sat, 12 Sep 2026 07:55:41 UTC\nValid-Until: Sat, 19 Sep 2026 07:55:41 UTC\n\
Acquire-By-Hash: yes\nNo-Support-for-Architecture-all: Packages\nArchitectures: all amd64 arm64\n\
MD5Sum:\n 3e498904a30e240573dac8ddac594e6f  1961125 main/binary-amd64/Packages\n\
SHA256:\n 7778d3e3f303b7ddb8ce0fe7c8d57473a076c6bf2e8f241f75421d2396352498  9678380 main/binary-amd64/Packages.xz\n";

    #[test]
    fn parses_fields_and_sha256_list() {
        let r = Release::parse(SAMPLE, "u").unwrap();
        assert_eq!(r.codename.as_deref(), Some("trixie"));
        assert!(r.acquire_by_hash);
        assert!(r.all_in_arch_indexes);
        assert_eq!(r.architectures, ["all", "amd64", "arm64"]);
        assert_eq!(r.files.len(), 1, "MD5Sum entries are not taken");
        let e = &r.files["main/binary-amd64/Packages.xz"];
        assert_eq!(e.size, 9678380);
        assert_eq!(format_unix(r.date_unix), "2026-09-12 07:55:41 UTC");
        assert_eq!(r.valid_until.unwrap() - r.date_unix, 7 * 86400);
    }

    #[test]
    fn the_suites_other_name_comes_from_suite_and_codename() {
        let r = Release::parse(SAMPLE, "u").unwrap();
        assert_eq!(r.other_suite_name("trixie").as_deref(), Some("stable"));
        assert_eq!(r.other_suite_name("stable").as_deref(), Some("trixie"));
        assert_eq!(r.other_suite_name("bookworm"), None);
        let older = Release::parse(&SAMPLE.replace("12 Sep", "1 Sep"), "v").unwrap();
        assert!(older.vouches_like(&r));
        let other = Release::parse(&SAMPLE.replace("Origin: Debian", "Origin: Evil"), "w").unwrap();
        assert!(!other.vouches_like(&r));
        let bookworm = Release::parse(
            &SAMPLE.replace("Codename: trixie", "Codename: bookworm"),
            "x",
        )
        .unwrap();
        assert!(!bookworm.vouches_like(&r));
    }

    #[test]
    fn valid_until_is_enforced() {
        let r = Release::parse(SAMPLE, "u").unwrap();
        let before = UNIX_EPOCH + Duration::from_secs(r.date_unix + 60);
        let after = UNIX_EPOCH + Duration::from_secs(r.valid_until.unwrap() + 1);
        assert!(r.check_valid_until(before, "u").is_ok());
        let e = r.check_valid_until(after, "u").unwrap_err().to_string();
        assert!(e.contains("2026-09-19 07:55:41 UTC"), "{e}");
    }

    #[test]
    fn rfc2822_dates() {
        assert_eq!(parse_rfc2822("Thu, 01 Jan 1970 00:00:00 UTC"), Some(0));
        assert_eq!(
            parse_rfc2822("Sat, 29 Feb 2020 12:00:00 +0100"),
            Some(1582974000)
        );
        assert_eq!(parse_rfc2822("Sat, 29 Foo 2020 12:00:00 UTC"), None);
        assert_eq!(format_unix(1582974000), "2020-02-29 11:00:00 UTC");
    }

    #[test]
    fn rejects_malformed_release() {
        let refused = |text: &str| Release::parse(text, "u").err().unwrap().to_string();
        let e = refused("Date: nonsense\nSHA256:\n x 1 y\n");
        assert!(
            e.contains("malformed Release file: malformed SHA256 in \" x 1 y\""),
            "{e}"
        );
        let e = refused("Origin: x\n");
        assert!(e.contains("malformed Release file: no Date field"), "{e}");
    }
}
