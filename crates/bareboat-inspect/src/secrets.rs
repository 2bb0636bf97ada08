//! Secrets that must not ship in an image: private keys and the credential formats that
//! scanners commonly look for. Pure functions over a file's bytes.

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, MatchKind};

/// The files whose content is looked at; larger ones are not (keys and tokens are small).
pub const MAX_SCANNED: u64 = 1 << 20;

/// The fixed prefixes of the secrets looked for, each with what must follow it.
/// No prefix ends with the start of another (`PRIVATE KEY` is found without the dashes that
/// follow it, which a `-----BEGIN ` can start with), so one search that skips past each
/// prefix found misses none.
const PREFIXES: [(&str, Follows); 7] = [
    ("-----BEGIN ", Follows::Anything),
    ("PRIVATE KEY", Follows::Exactly(b"-----")),
    // An AWS access key id: AKIA and 16 upper-case letters or digits.
    ("AKIA", Follows::AwsKey),
    ("ghp_", Follows::Token),
    ("github_pat_", Follows::Token),
    ("xoxb-", Follows::Token),
    ("glpat-", Follows::Token),
];

#[derive(Clone, Copy)]
enum Follows {
    Anything,
    Exactly(&'static [u8]),
    /// 16 upper-case letters or digits.
    AwsKey,
    /// 20 letters, digits, `_` or `-`.
    Token,
}

impl Follows {
    fn after(self, content: &[u8], at: usize) -> bool {
        let (len, ok): (usize, fn(&u8) -> bool) = match self {
            Follows::Anything => return true,
            Follows::Exactly(text) => return content[at..].starts_with(text),
            Follows::AwsKey => (16, |b| b.is_ascii_uppercase() || b.is_ascii_digit()),
            Follows::Token => (20, |b| {
                b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-'
            }),
        };
        content
            .get(at..at + len)
            .is_some_and(|rest| rest.iter().all(ok))
    }
}

/// Every prefix at once: most files are looked at, so this must run at memory speed, in
/// one vectorised pass however many kinds there are.
static SEARCH: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostFirst)
        .build(PREFIXES.map(|(prefix, _)| prefix))
        .expect("fixed prefixes build")
});

/// What kind of secret `content` holds, if any: a prefix found, then the characters after
/// it checked.
pub fn kind(content: &[u8]) -> Option<&'static str> {
    let mut found = [false; PREFIXES.len()];
    for m in SEARCH.find_iter(content) {
        let i = m.pattern().as_usize();
        found[i] = found[i] || PREFIXES[i].1.after(content, m.end());
    }
    let kinds = [
        (found[0] && found[1], "private key"),
        (found[2], "AWS access key"),
        (found[3] || found[4], "GitHub token"),
        (found[5], "Slack token"),
        (found[6], "GitLab token"),
    ];
    kinds
        .into_iter()
        .find(|(yes, _)| *yes)
        .map(|(_, what)| what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_recognised_and_ordinary_files_are_not() {
        assert_eq!(
            kind(b"x\n-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n"),
            Some("private key")
        );
        assert_eq!(kind(b"key=AKIAIOSFODNN7EXAMPLE\n"), Some("AWS access key"));
        assert_eq!(
            kind(b"token: ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
            Some("GitHub token")
        );
        // A prefix too short to be a secret does not hide the next one, nor does one
        // prefix hide another that overlaps it.
        assert_eq!(
            kind(b"ghp_short ghp_abcdefghijklmnopqrstuvwxyz"),
            Some("GitHub token")
        );
        assert_eq!(kind(b"PRIVATE KEY-----BEGIN "), Some("private key"));
        assert_eq!(kind(b"-----BEGIN CERTIFICATE-----\nMIIB\n"), None);
        assert_eq!(kind(b"AKIA is a prefix"), None);
        assert_eq!(kind(b""), None);
    }
}
