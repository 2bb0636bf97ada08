//! Secrets that must not ship in an image: private keys and the credential formats that
//! scanners commonly look for. Pure functions over a file's bytes.

use memchr::memmem;

/// The files whose content is looked at; larger ones are not (keys and tokens are small).
pub const MAX_SCANNED: u64 = 1 << 20;

/// What kind of secret `content` holds, if any. Each pattern is a fixed prefix found with
/// a vectorised substring search, then the characters after it checked: most files are
/// looked at, so this must run at memory speed.
pub fn kind(content: &[u8]) -> Option<&'static str> {
    let has = |needle: &[u8]| memmem::find(content, needle).is_some();
    if has(b"PRIVATE KEY-----") && has(b"-----BEGIN ") {
        return Some("private key");
    }
    // `prefix` followed by at least `len` characters that `ok` accepts.
    let followed_by = |prefix: &[u8], len: usize, ok: fn(&u8) -> bool| {
        memmem::find_iter(content, prefix).any(|at| {
            let rest = at + prefix.len();
            content
                .get(rest..rest + len)
                .is_some_and(|r| r.iter().all(ok))
        })
    };
    // An AWS access key id: AKIA and 16 upper-case letters or digits.
    if followed_by(b"AKIA", 16, |b| {
        b.is_ascii_uppercase() || b.is_ascii_digit()
    }) {
        return Some("AWS access key");
    }
    let token = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-';
    [
        (&b"ghp_"[..], "GitHub token"),
        (b"github_pat_", "GitHub token"),
        (b"xoxb-", "Slack token"),
        (b"glpat-", "GitLab token"),
    ]
    .into_iter()
    .find(|(prefix, _)| followed_by(prefix, 20, token))
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
        assert_eq!(kind(b"-----BEGIN CERTIFICATE-----\nMIIB\n"), None);
        assert_eq!(kind(b"AKIA is a prefix"), None);
        assert_eq!(kind(b""), None);
    }
}
