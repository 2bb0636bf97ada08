//! Registry credentials where Docker and podman keep them.
//!
//! Looked up in order: `$REGISTRY_AUTH_FILE`, podman's `$XDG_RUNTIME_DIR/containers/auth.json`,
//! then Docker's `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`). In each, a
//! registry's `credHelpers` entry or the file's `credsStore` names a credential helper
//! (`docker-credential-NAME get`, the registry on standard input), and `auths` holds
//! `auth` (base64 of `USER:PASSWORD`) or `username` and `password`. `bareboat login`
//! writes podman's file (or `$REGISTRY_AUTH_FILE`), atomically and readable by its owner
//! only.
//!
//! A credentials file may come from anywhere (a checked-out project sets `DOCKER_CONFIG`),
//! so a helper's NAME must be a name, its program is looked for in the absolute
//! directories of `PATH` only, and it has [`HELPER_TIMEOUT`] to answer.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::Value;

use crate::Error;

/// A user name and a password (or token).
pub type Credentials = (String, String);

/// How long a credential helper has to answer: one waiting on a prompt that no one sees,
/// or on a locked keyring, would hold bareboat forever.
const HELPER_TIMEOUT: Duration = Duration::from_secs(30);

/// The most of a helper's output that is read; a reply is a few hundred bytes.
const MAX_HELPER_OUTPUT: u64 = 1 << 20;

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
        return from_helper(helper, registry, file);
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

/// Asks `docker-credential-HELPER get`, as `file` names it, for `registry`'s credentials.
fn from_helper(helper: &str, registry: &str, file: &Path) -> Result<Option<Credentials>, Error> {
    if !is_helper_name(helper) {
        return Err(Error::BadHelperName {
            file: file.to_path_buf(),
            name: helper.to_string(),
        });
    }
    let program = format!("docker-credential-{helper}");
    let path = std::env::var_os("PATH");
    let found = on_path(&program, path.as_deref()).ok_or_else(|| Error::Registry {
        registry: registry.to_string(),
        reason: format!(
            "credential helper {program} is not in any absolute directory of PATH (is it installed?)"
        ),
    })?;
    ask_helper(&found, registry, HELPER_TIMEOUT)
}

/// Whether `name` may follow `docker-credential-`: a file name, never a path, so that
/// `x/../../evil` cannot run a program of the credentials file's choosing.
fn is_helper_name(name: &str) -> bool {
    !matches!(name, "" | "." | "..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// The executable file `program` in the first directory of `path` (a `PATH` value) that
/// has one. Relative directories (an empty entry stands for the working directory) are
/// passed over: where bareboat runs must not choose what it runs.
fn on_path(program: &str, path: Option<&OsStr>) -> Option<PathBuf> {
    std::env::split_paths(path?)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(program))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Runs `program get`, `registry` on its standard input, and reads its reply. A helper
/// that has not exited and closed its output within `timeout` is killed.
fn ask_helper(
    program: &Path,
    registry: &str,
    timeout: Duration,
) -> Result<Option<Credentials>, Error> {
    let failed = |reason: String| Error::Registry {
        registry: registry.to_string(),
        reason: format!("credential helper {}: {reason}", program.display()),
    };
    let mut child = Command::new(program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(e.to_string()))?;
    let deadline = Instant::now() + timeout;
    let outputs = [
        drain(child.stdout.take().expect("piped")),
        drain(child.stderr.take().expect("piped")),
    ];
    // The registry's name fits in the pipe: this does not wait on the helper.
    let sent = child
        .stdin
        .take()
        .expect("piped")
        .write_all(registry.as_bytes());
    if let Err(e) = sent {
        stop(&mut child);
        return Err(failed(e.to_string()));
    }
    let Some((status, out, err)) = finish(&mut child, deadline, outputs) else {
        stop(&mut child);
        return Err(Error::HelperTimedOut {
            registry: registry.to_string(),
            program: program.display().to_string(),
            after: timeout,
        });
    };
    if !status.success() {
        // Helpers say "credentials not found" on a miss.
        let said = String::from_utf8_lossy(&out).to_lowercase();
        if said.contains("not found") {
            return Ok(None);
        }
        return Err(failed(String::from_utf8_lossy(&err).trim().to_string()));
    }
    let reply: Value = serde_json::from_slice(&out).map_err(|e| failed(e.to_string()))?;
    match (reply["Username"].as_str(), reply["Secret"].as_str()) {
        (Some(u), Some(s)) => Ok(Some((u.to_string(), s.to_string()))),
        _ => Err(failed("its reply has no Username and Secret".into())),
    }
}

/// What `pipe` yields, up to [`MAX_HELPER_OUTPUT`] bytes, read on a thread of its own so
/// that the wait for it can end.
fn drain(mut pipe: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        // A read that fails ends the output, and the reply then says what is wrong.
        let _ = (&mut pipe).take(MAX_HELPER_OUTPUT).read_to_end(&mut bytes);
        let _ = tx.send(bytes);
    });
    rx
}

/// The helper's exit status, output and error output, once it has exited and closed both;
/// `None` if that is not by `deadline`.
fn finish(
    child: &mut Child,
    deadline: Instant,
    [out, err]: [mpsc::Receiver<Vec<u8>>; 2],
) -> Option<(ExitStatus, Vec<u8>, Vec<u8>)> {
    let left = || deadline.saturating_duration_since(Instant::now());
    let out = out.recv_timeout(left()).ok()?;
    let err = err.recv_timeout(left()).ok()?;
    // Its output closed, the helper is exiting, or holds on with its output shut.
    loop {
        // A helper that cannot be waited for is stopped like one that does not answer.
        if let Some(status) = child.try_wait().ok()? {
            return Some((status, out, err));
        }
        if left().is_zero() {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Kills the helper and reaps it. Only the helper: in a process group of its own, one that
/// asks for a passphrase on the terminal (as Docker lets it) would be stopped by the
/// terminal. What it started and left holding its output is not waited for.
fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
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

    /// An executable `docker-credential-NAME` in `dir` that runs `script`.
    fn helper(dir: &Path, name: &str, script: &str) -> PathBuf {
        let path = dir.join(format!("docker-credential-{name}"));
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn a_helper_is_a_name_looked_for_in_absolute_path_directories_only() {
        for name in ["desktop", "ecr-login", "osxkeychain", "pass", "acr_env.2"] {
            assert!(is_helper_name(name), "{name}");
        }
        for name in [
            "x/../../payload/evil",
            "/bin/sh",
            "../evil",
            ".",
            "..",
            "",
            "a b",
        ] {
            assert!(!is_helper_name(name), "{name:?}");
        }
        // A hostile entry is refused by name, before anything runs.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.json");
        let config = serde_json::json!({"credHelpers": {"r.example": "x/../../payload/evil"}});
        let err = from_config(&config, "r.example", &file).unwrap_err();
        assert!(matches!(err, Error::BadHelperName { .. }), "{err}");
        assert!(
            err.to_string().contains("\"x/../../payload/evil\""),
            "{err}"
        );

        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let found = helper(&bin, "t", "exit 0");
        std::fs::write(bin.join("docker-credential-plain"), "not executable").unwrap();
        let path = std::env::join_paths(["bin", "", bin.to_str().unwrap()]).unwrap();
        assert_eq!(on_path("docker-credential-t", Some(&path)), Some(found));
        assert_eq!(on_path("docker-credential-plain", Some(&path)), None);
        // Relative entries (an empty one is the working directory) are passed over, even
        // one that leads to the helper.
        let cwd = std::env::current_dir().unwrap();
        let up = "../".repeat(cwd.components().count() - 1);
        let relative = PathBuf::from(up).join(bin.strip_prefix("/").unwrap());
        assert!(relative.join("docker-credential-t").is_file());
        let path = std::env::join_paths([relative, PathBuf::new()]).unwrap();
        assert_eq!(on_path("docker-credential-t", Some(&path)), None);
    }

    #[test]
    fn a_helper_is_asked_with_the_registry_and_stopped_when_it_hangs() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let answers = helper(
            d,
            "answers",
            r#"r=$(cat); printf '{"Username":"%s","Secret":"s"}' "$r""#,
        );
        let reply = ask_helper(&answers, "r.example", Duration::from_secs(10)).unwrap();
        assert_eq!(reply, Some(("r.example".to_string(), "s".to_string())));

        // A helper that hangs is killed; one whose child holds its output open too is
        // left to it.
        let (pid, orphan) = (d.join("pid"), d.join("orphan"));
        let hangs = helper(
            d,
            "hangs",
            &format!("echo $$ > {}; exec sleep 1000", pid.display()),
        );
        let leaves = helper(
            d,
            "leaves",
            &format!("sleep 1000 & echo $! > {}; wait", orphan.display()),
        );
        for program in [&hangs, &leaves] {
            let started = Instant::now();
            let err = ask_helper(program, "r.example", Duration::from_millis(500)).unwrap_err();
            assert!(started.elapsed() < Duration::from_secs(5), "{err}");
            assert!(matches!(err, Error::HelperTimedOut { .. }), "{err}");
            let message = err.to_string();
            assert!(
                message.contains(&format!(
                    "credential helper {} timed out",
                    program.display()
                )),
                "{message}"
            );
        }
        let pid = std::fs::read_to_string(&pid).unwrap();
        assert!(
            !Path::new(&format!("/proc/{}", pid.trim())).exists(),
            "the helper still runs"
        );
        let orphan = std::fs::read_to_string(&orphan).unwrap();
        Command::new("kill").arg(orphan.trim()).status().unwrap();
    }
}
