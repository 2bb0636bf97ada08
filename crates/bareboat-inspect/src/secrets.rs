//! Secrets that must not ship in an image: private keys and the credential formats that
//! scanners commonly look for. Pure functions over a file's bytes.

/// The files whose content is looked at; larger ones are not (keys and tokens are small).
pub const MAX_SCANNED: u64 = 1 << 20;

/// What kind of secret `content` holds, if any.
pub fn kind(content: &[u8]) -> Option<&'static str> {
    let find = |needle: &[u8]| content.windows(needle.len()).any(|w| w == needle);
    if find(b"PRIVATE KEY-----") && find(b"-----BEGIN ") {
        return Some("private key");
    }
    // An AWS access key id: AKIA and 16 upper-case letters or digits.
    let aws = content.windows(20).any(|w| {
        w.starts_with(b"AKIA")
            && w[4..]
                .iter()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    });
    if aws {
        return Some("AWS access key");
    }
    for (prefix, what) in [
        (&b"ghp_"[..], "GitHub token"),
        (b"github_pat_", "GitHub token"),
        (b"xoxb-", "Slack token"),
        (b"glpat-", "GitLab token"),
    ] {
        let token = content.windows(prefix.len() + 20).any(|w| {
            w.starts_with(prefix)
                && w[prefix.len()..]
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
        });
        if token {
            return Some(what);
        }
    }
    None
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
