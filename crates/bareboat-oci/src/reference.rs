//! Image references in the transport syntax of skopeo and podman.

use std::path::PathBuf;

use crate::Error;
use crate::digest::Digest;

/// Where an image is written or read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageRef {
    /// `oci:DIR[:TAG]`: an OCI layout directory; the tag defaults to `latest`.
    Oci {
        /// The layout directory.
        dir: PathBuf,
        /// The tag, `latest` unless given.
        tag: String,
    },
    /// `oci-archive:FILE[:TAG]`: a tar of an OCI layout. Written, the tag defaults to
    /// `latest`; read, no tag means the archive's only image.
    OciArchive {
        /// The archive file.
        file: PathBuf,
        /// The tag, if given.
        tag: Option<String>,
    },
    /// `docker-archive:FILE[:NAME[:TAG]]`: what `docker save` writes.
    DockerArchive {
        /// The archive file.
        file: PathBuf,
        /// The `NAME[:TAG]` the image is tagged with in it, if given.
        name: Option<DockerName>,
    },
    /// `docker://NAME[:TAG|@DIGEST]`: an image in a registry. A digest names the image
    /// exactly; a push by digest sets no tag.
    Docker {
        /// The image's name, with its registry and tag.
        name: DockerName,
        /// The digest after `@`, if given.
        digest: Option<Digest>,
    },
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
        if transport == "docker" {
            let name = rest
                .strip_prefix("//")
                .ok_or_else(|| bad("expected docker://REGISTRY/REPOSITORY[:TAG|@DIGEST]"))?;
            return match name.split_once('@') {
                Some((name, digest)) => Ok(ImageRef::Docker {
                    name: name.parse()?,
                    digest: Some(digest.parse().map_err(|e: String| bad(&e))?),
                }),
                None => Ok(ImageRef::Docker {
                    name: name.parse()?,
                    digest: None,
                }),
            };
        }
        // As skopeo does: the path ends at the first colon.
        let (path, rest) = match rest.split_once(':') {
            Some((p, r)) => (p, Some(r)),
            None => (rest, None),
        };
        if path.is_empty() {
            return Err(bad("the path is empty"));
        }
        let tag = |t: &str| {
            if is_tag(t) {
                Ok(t.to_string())
            } else {
                Err(bad(&format!(
                    "{t:?} is not a valid tag: use letters, digits, '_', '.' and '-', at most 128"
                )))
            }
        };
        match transport {
            "oci" => Ok(ImageRef::Oci {
                dir: PathBuf::from(path),
                tag: tag(rest.unwrap_or("latest"))?,
            }),
            "oci-archive" => Ok(ImageRef::OciArchive {
                file: PathBuf::from(path),
                tag: rest.map(tag).transpose()?,
            }),
            "docker-archive" => Ok(ImageRef::DockerArchive {
                file: PathBuf::from(path),
                name: rest.map(str::parse).transpose()?,
            }),
            other => Err(bad(&format!(
                "unknown transport {other:?}: use oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG] or docker://REGISTRY/REPOSITORY[:TAG|@DIGEST]"
            ))),
        }
    }
}

/// An image name as Docker normalises it: `alpine` is `docker.io/library/alpine:latest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DockerName {
    /// The registry host, with its port if any.
    pub registry: String,
    /// The repository path inside the registry.
    pub repository: String,
    /// The tag, `latest` unless given.
    pub tag: String,
}

impl std::str::FromStr for DockerName {
    type Err = Error;
    fn from_str(s: &str) -> Result<DockerName, Error> {
        let bad = |reason: &str| Error::BadReference {
            reference: s.to_string(),
            reason: reason.to_string(),
        };
        // The tag follows the last colon after the last slash (a port's colon comes before).
        let last_part = s.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match s[last_part..].rfind(':') {
            Some(i) => (&s[..last_part + i], &s[last_part + i + 1..]),
            None => (s, "latest"),
        };
        if !is_tag(tag) {
            return Err(bad(&format!("{tag:?} is not a valid tag")));
        }
        // As Docker decides: a first component with a dot or colon, or `localhost`, is a
        // registry host.
        let (registry, path) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => ("docker.io".to_string(), name.to_string()),
        };
        let repository = if registry == "docker.io" && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        let component_ok = |c: &str| {
            !c.is_empty()
                && c.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                })
                && c.as_bytes()[0].is_ascii_alphanumeric()
                && c.as_bytes()[c.len() - 1].is_ascii_alphanumeric()
        };
        if !repository.split('/').all(component_ok) {
            return Err(bad(
                "a repository is lowercase letters, digits and separators (. _ -), in /-separated parts",
            ));
        }
        if registry.is_empty() || registry.contains(char::is_whitespace) {
            return Err(bad("the registry host is empty or has spaces"));
        }
        Ok(DockerName {
            registry,
            repository,
            tag: tag.to_string(),
        })
    }
}

impl DockerName {
    /// `REGISTRY/REPOSITORY:TAG`.
    pub fn full(&self) -> String {
        format!("{}/{}:{}", self.registry, self.repository, self.tag)
    }

    /// The repository as Docker shows it: Docker Hub's host and `library/` left out.
    pub fn familiar_repository(&self) -> String {
        if self.registry == "docker.io" {
            let short = self.repository.strip_prefix("library/");
            short.unwrap_or(&self.repository).to_string()
        } else {
            format!("{}/{}", self.registry, self.repository)
        }
    }

    /// `familiar_repository:TAG`, as `docker images` and `manifest.json` show it.
    pub fn familiar(&self) -> String {
        format!("{}:{}", self.familiar_repository(), self.tag)
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
    use std::path::Path;

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
        for (bad, why) in [
            ("out", "expected TRANSPORT:DETAILS"),
            ("oci:", "the path is empty"),
            ("oci:out:-x", "\"-x\" is not a valid tag"),
            ("oci:out:a/b", "\"a/b\" is not a valid tag"),
            ("tar:x", "unknown transport \"tar\""),
            ("oci-archive::v1", "the path is empty"),
            (
                "docker-archive:x.tar:Upper/Case",
                "a repository is lowercase",
            ),
        ] {
            let err = bad.parse::<ImageRef>().unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn archive_references() {
        let r: ImageRef = "oci-archive:out.tar".parse().unwrap();
        assert_eq!(
            r,
            ImageRef::OciArchive {
                file: "out.tar".into(),
                tag: None
            }
        );
        let r: ImageRef = "docker-archive:app.tar:localhost:5000/team/app:1.0"
            .parse()
            .unwrap();
        let ImageRef::DockerArchive { file, name } = r else {
            panic!("{r:?}")
        };
        assert_eq!(file, Path::new("app.tar"));
        assert_eq!(name.unwrap().full(), "localhost:5000/team/app:1.0");
        let r: ImageRef = "docker://127.0.0.1:5000/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
            .parse()
            .unwrap();
        let ImageRef::Docker { name, digest } = r else {
            panic!("{r:?}")
        };
        assert_eq!(name.registry, "127.0.0.1:5000");
        assert!(digest.unwrap().hex().starts_with("0123"));
        let r: ImageRef = "docker://alpine".parse().unwrap();
        assert!(
            matches!(r, ImageRef::Docker { name, digest: None } if name.full() == "docker.io/library/alpine:latest")
        );
        for (bad, why) in [
            ("docker:alpine", "expected docker://"),
            ("docker://Alpine", "a repository is lowercase"),
            (
                "docker://app@sha256:12",
                "\"sha256:12\" is not a sha256 digest",
            ),
        ] {
            let err = bad.parse::<ImageRef>().unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn names_are_normalised_as_docker_does() {
        let full = |s: &str| s.parse::<DockerName>().unwrap().full();
        assert_eq!(full("alpine"), "docker.io/library/alpine:latest");
        assert_eq!(full("team/app:2"), "docker.io/team/app:2");
        assert_eq!(full("ghcr.io/team/app:v1"), "ghcr.io/team/app:v1");
        assert_eq!(full("localhost/app"), "localhost/app:latest");
        assert_eq!(full("registry:5000/app"), "registry:5000/app:latest");
        let n: DockerName = "docker.io/library/alpine:3".parse().unwrap();
        assert_eq!(n.familiar(), "alpine:3");
        let n: DockerName = "127.0.0.1:5000/a/b".parse().unwrap();
        assert_eq!(n.familiar(), "127.0.0.1:5000/a/b:latest");
        for (bad, why) in [
            ("Alpine", "a repository is lowercase"),
            ("a//b", "a repository is lowercase"),
            ("app:", "\"\" is not a valid tag"),
            ("app:-x", "\"-x\" is not a valid tag"),
            ("-app", "a repository is lowercase"),
            ("team/app_:1", "a repository is lowercase"),
            ("", "a repository is lowercase"),
        ] {
            let err = bad.parse::<DockerName>().unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
