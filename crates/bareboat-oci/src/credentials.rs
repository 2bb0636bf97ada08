//! Registry credentials where Docker and podman keep them.
//!
//! Looked up in order: `$REGISTRY_AUTH_FILE`, podman's `$XDG_RUNTIME_DIR/containers/auth.json`,
//! then Docker's `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`). In each, a
//! registry's `credHelpers` entry or the file's `credsStore` names a credential helper
//! (`docker-credential-NAME get`, the registry on standard input), and `auths` holds
//! `auth` (base64 of `USER:PASSWORD`) or `username` and `password`. `bareboat login`
//! writes podman's file (or `$REGISTRY_AUTH_FILE`), atomically and readable by its owner
//! only.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use serde_json::Value;

use crate::Error;

/// A user name and a password (or token).
pub type Credentials = (String, String);

/// The files searched, in order.
fn auth_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(f) = std::env::var_os("REGISTRY_AUTH_FILE") {
        files.push(PathBuf::from(f));
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR") {
        files.push(PathBuf::from(d).join("containers/auth.json"));
    }
    match std::env::var_os("DOCKER_CONFIG") {
        Some(d) => files.push(PathBuf::from(d).join("config.json")),
        None => {
            if let Some(home) = std::env::var_os("HOME") {
                files.push(PathBuf::from(home).join(".docker/config.json"));
            }
        }
    }
    files
}

/// The file `bareboat login` writes.
pub fn login_file() -> Result<PathBuf, Error> {
    if let Some(f) = std::env::var_os("REGISTRY_AUTH_FILE") {
        return Ok(PathBuf::from(f));
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR") {
        return Ok(PathBuf::from(d).join("containers/auth.json"));
    }
    match std::env::var_os("DOCKER_CONFIG") {
        Some(d) => Ok(PathBuf::from(d).join("config.json")),
        None => std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".docker/config.json"))
            .ok_or(Error::NoAuthFile),
    }
}

/// The credentials stored for `registry` (a host, with its port if any), if any.
pub fn lookup(registry: &str) -> Result<Option<Credentials>, Error> {
    for file in auth_files() {
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(&file, e)),
        };
        let config: Value = serde_json::from_str(&text).map_err(|e| Error::BadLayout {
            path: file.clone(),
            reason: format!("not a credentials file: {e}"),
        })?;
        if let Some(found) = from_config(&config, registry, &file)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// The keys a registry may be stored under: its host, and Docker Hub's historical URL.
fn keys(registry: &str) -> Vec<String> {
    let mut keys = vec![registry.to_string(), format!("https://{registry}")];
    if registry == "docker.io" {
        keys.push("https://index.docker.io/v1/".into());
        keys.push("index.docker.io".into());
    }
    keys
}

fn from_config(config: &Value, registry: &str, file: &Path) -> Result<Option<Credentials>, Error> {
    let helper = keys(registry)
        .iter()
        .find_map(|k| config["credHelpers"][k].as_str())
        .or_else(|| config["credsStore"].as_str());
    if let Some(helper) = helper {
        return from_helper(helper, registry);
    }
    let Some(entry) = keys(registry).iter().find_map(|k| config["auths"].get(k)) else {
        return Ok(None);
    };
    if let (Some(user), Some(password)) = (entry["username"].as_str(), entry["password"].as_str()) {
        return Ok(Some((user.to_string(), password.to_string())));
    }
    let Some(auth) = entry["auth"].as_str() else {
        return Ok(None);
    };
    let bad = |reason: &str| Error::BadLayout {
        path: file.to_path_buf(),
        reason: format!("the entry for {registry}: {reason}"),
    };
    let decoded = base64_decode(auth).ok_or_else(|| bad("auth is not base64"))?;
    let text = String::from_utf8(decoded).map_err(|_| bad("auth is not text"))?;
    let (user, password) = text
        .split_once(':')
        .ok_or_else(|| bad("auth is not USER:PASSWORD"))?;
    Ok(Some((user.to_string(), password.to_string())))
}

/// Asks `docker-credential-HELPER get` for `registry`'s credentials.
fn from_helper(helper: &str, registry: &str) -> Result<Option<Credentials>, Error> {
    let program = format!("docker-credential-{helper}");
    let failed = |reason: String| Error::Registry {
        registry: registry.to_string(),
        reason: format!("credential helper {program}: {reason}"),
    };
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("{e} (is it installed?)")))?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(registry.as_bytes())
        .map_err(|e| failed(e.to_string()))?;
    let out = child
        .wait_with_output()
        .map_err(|e| failed(e.to_string()))?;
    if !out.status.success() {
        // Helpers say "credentials not found" on a miss.
        let said = String::from_utf8_lossy(&out.stdout).to_lowercase();
        if said.contains("not found") {
            return Ok(None);
        }
        return Err(failed(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    let reply: Value = serde_json::from_slice(&out.stdout).map_err(|e| failed(e.to_string()))?;
    match (reply["Username"].as_str(), reply["Secret"].as_str()) {
        (Some(u), Some(s)) => Ok(Some((u.to_string(), s.to_string()))),
        _ => Err(failed("its reply has no Username and Secret".into())),
    }
}

/// Stores `credentials` for `registry` in `file`, keeping its other entries.
pub fn store(file: &Path, registry: &str, (user, password): &Credentials) -> Result<(), Error> {
    let mut config: Value = match std::fs::read_to_string(file) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| Error::BadLayout {
            path: file.to_path_buf(),
            reason: format!("not a credentials file: {e}"),
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::json!({}),
        Err(e) => return Err(Error::io(file, e)),
    };
    if !config["auths"].is_object() {
        config["auths"] = serde_json::json!({});
    }
    config["auths"][registry] = serde_json::json!({
        "auth": base64_encode(format!("{user}:{password}").as_bytes()),
    });
    if let Some(dir) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let bytes = serde_json::to_vec_pretty(&config).map_err(|e| Error::io(file, e.into()))?;
    // Its temporary file is created 0600: the password stays its owner's.
    crate::layout::write_atomic(file, &bytes)?;
    Ok(())
}

fn base64_encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_read_as_docker_and_podman_write_them() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("auth.json");
        std::fs::write(
            &file,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpwYXNz"},
                "ghcr.io":{"username":"me","password":"tok"}}}"#,
        )
        .unwrap();
        let config: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let hub = from_config(&config, "docker.io", &file).unwrap().unwrap();
        assert_eq!(hub, ("user".to_string(), "pass".to_string()));
        let ghcr = from_config(&config, "ghcr.io", &file).unwrap().unwrap();
        assert_eq!(ghcr, ("me".to_string(), "tok".to_string()));
        assert!(from_config(&config, "quay.io", &file).unwrap().is_none());

        store(&file, "127.0.0.1:5000", &("u".into(), "p:w".into())).unwrap();
        let config: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let stored = from_config(&config, "127.0.0.1:5000", &file)
            .unwrap()
            .unwrap();
        assert_eq!(stored, ("u".to_string(), "p:w".to_string()));
        assert!(
            from_config(&config, "ghcr.io", &file).unwrap().is_some(),
            "others kept"
        );
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&file).unwrap().permissions(),
        );
        assert_eq!(mode & 0o077, 0, "owner only");
    }
}
