//! What the health probe an image can carry may check: the spec's `health` and `--health`.
//! The probe itself is built and added by `bareboat-build`.

/// Whether `target` is a URL the probe understands; the reason if not.
pub fn check_target(target: &str) -> Result<(), String> {
    let rest = ["http://", "tcp://", "file:///"]
        .iter()
        .find_map(|scheme| target.strip_prefix(scheme));
    match rest {
        Some(r) if !r.is_empty() => Ok(()),
        _ => Err(format!(
            "health check {target:?}: expected http://HOST[:PORT][/PATH], tcp://HOST:PORT or file:///PATH"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        for ok in [
            "http://127.0.0.1:8080/healthz",
            "tcp://[::1]:5432",
            "file:///tmp/ready",
        ] {
            check_target(ok).unwrap();
        }
        for bad in ["https://x/", "file://relative", "tcp://", "127.0.0.1:80"] {
            let err = check_target(bad).unwrap_err().to_string();
            assert!(
                err.contains("expected http://HOST[:PORT][/PATH]"),
                "{bad}: {err}"
            );
        }
    }
}
