//! Image references in the transport syntax of skopeo and podman.

use std::path::PathBuf;

use crate::Error;

/// Where an image is written or read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageRef {
    /// `oci:DIR[:TAG]`: an OCI layout directory; the tag defaults to `latest`.
    Oci { dir: PathBuf, tag: String },
}

impl std::str::FromStr for ImageRef {
    type Err = Error;
    fn from_str(s: &str) -> Result<ImageRef, Error> {
        let bad = |reason: &str| Error::BadReference {
            reference: s.to_string(),
            reason: reason.to_string(),
        };
        let (transport, rest) = s
            .split_once(':')
            .ok_or_else(|| bad("expected TRANSPORT:DETAILS, such as oci:DIR:TAG"))?;
        match transport {
            "oci" => {
                // As skopeo does: the directory ends at the first colon.
                let (dir, tag) = rest.split_once(':').unwrap_or((rest, "latest"));
                if dir.is_empty() {
                    return Err(bad("the directory is empty"));
                }
                if !is_tag(tag) {
                    return Err(bad(&format!(
                        "{tag:?} is not a valid tag: use letters, digits, '_', '.' and '-', at most 128"
                    )));
                }
                Ok(ImageRef::Oci {
                    dir: PathBuf::from(dir),
                    tag: tag.to_string(),
                })
            }
            other => Err(bad(&format!(
                "unknown transport {other:?}: use oci:DIR[:TAG]"
            ))),
        }
    }
}

/// A tag as the distribution spec allows: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn is_tag(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphanumeric() || b == b'_')
        && s.len() <= 128
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oci_references() {
        let r: ImageRef = "oci:out:static".parse().unwrap();
        assert_eq!(
            r,
            ImageRef::Oci {
                dir: "out".into(),
                tag: "static".into()
            }
        );
        let r: ImageRef = "oci:out".parse().unwrap();
        assert!(matches!(r, ImageRef::Oci { tag, .. } if tag == "latest"));
        for bad in ["out", "oci:", "oci:out:-x", "oci:out:a/b", "tar:x"] {
            assert!(bad.parse::<ImageRef>().is_err(), "{bad}");
        }
    }
}
