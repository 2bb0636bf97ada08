//! `bareboat debug`: a toolbox built from Debian packages, joined to a nonroot distroless
//! container running a server under runc and podman, and beside an image that will not
//! start; and the refusals.

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::debugging::{
    assert_probed, debug, debugged, listing, probing, server_image, toolbox_processes,
};
use common::{build, podman, run, tool, unpack, wait_for_port};

/// A command that removes a container when the test ends, passed or not.
struct Removed(Vec<String>);

impl Drop for Removed {
    fn drop(&mut self) {
        let _ = Command::new(&self.0[0])
            .args(&self.0[1..])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn debugs_a_nonroot_static_container_under_runc_and_podman() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = 18931;
    server_image(d, port, "oci:out:app");

    // runc, on the host's network.
    let bundle = unpack(d, "out", "app");
    let (mut cmd, id) = common::runc_command(&bundle, &[]);
    let mut container = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _removed = Removed(vec![tool("runc"), "delete".into(), "-f".into(), id.clone()]);
    wait_for_port(port);
    let before = listing(&bundle.join("rootfs"));
    assert_probed(&debugged(&mut probing(d, &format!("runc:{id}"), port)));
    // As the target's own user, with its capabilities: it reads the target's files.
    let out = debug(
        d,
        &[
            &format!("runc:{id}"),
            "--with",
            "strace",
            "--as-target-user",
            "--",
            "/busybox/sh",
            "-c",
            "id -u; id -g; cat /proc/1/root/etc/group >/dev/null && echo own-files",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "65532\n65532\nown-files\n"
    );
    assert_eq!(
        listing(&bundle.join("rootfs")),
        before,
        "the target's files changed"
    );
    run(Command::new(tool("runc")).args(["kill", &id, "KILL"]));
    container.wait().unwrap();
    let _ = Command::new(tool("runc"))
        .args(["delete", "-f", &id])
        .status();

    // podman, in a network namespace of the container's own: localhost is the target's.
    let bin = d.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let wrapped = podman(d);
    let mut script = format!(
        "#!/bin/sh\nexec {}",
        wrapped.get_program().to_string_lossy()
    );
    for arg in wrapped.get_args() {
        script.push_str(&format!(" '{}'", arg.to_string_lossy()));
    }
    script.push_str(" \"$@\"\n");
    std::fs::write(bin.join("podman"), script).unwrap();
    std::fs::set_permissions(
        bin.join("podman"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    // Relative: podman names the image after the path, which must be lowercase.
    let layout = "oci:out:app";
    run(podman(d).args(["run", "-d", "--name", "web", "--network=none", layout]));
    let podman_rm = podman(d);
    let mut rm = vec![podman_rm.get_program().to_string_lossy().into_owned()];
    rm.extend(
        podman_rm
            .get_args()
            .map(|a| a.to_string_lossy().into_owned()),
    );
    rm.extend(["rm".into(), "-f".into(), "web".into()]);
    let _removed_web = Removed(rm);
    std::thread::sleep(std::time::Duration::from_secs(1));
    let out = run(podman(d).args(["mount", "web"]));
    let mounted = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let before = listing(&mounted);
    assert_probed(&debugged(&mut probing(d, "podman:web", port)));
    assert_eq!(listing(&mounted), before, "the target's files changed");
    run(podman(d).args(["rm", "-f", "web"]));
}

#[test]
fn debugs_an_image_whose_entrypoint_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    build(
        d,
        &[
            "catalog:static",
            "--entrypoint",
            "/app/missing",
            "-o",
            "oci:out:broken",
        ],
    );
    let out = debug(
        d,
        &[
            "oci:out:broken",
            "--",
            "/busybox/sh",
            "-c",
            "echo \"in $PWD\"; ls -a; ls /target/app 2>&1; cat /target/etc/debian_version; touch /target/x 2>&1 || echo read-only",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{text}{err}");
    assert!(
        err.contains(
            "the image's entrypoint /app/missing is not in it: /target/app/missing does not exist"
        ),
        "{err}"
    );
    assert!(text.contains("in /target/home/nonroot\n.\n..\n"), "{text}");
    assert!(text.contains("13."), "{text}");
    assert!(text.contains("read-only"), "{text}");
    // As the image's own user.
    let out = debug(
        d,
        &[
            "oci:out:broken",
            "--as-target-user",
            "--",
            "/busybox/id",
            "-u",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "65532\n");
    // Ctrl-C, which the terminal sends to the whole process group, interrupts the
    // command (bareboat waits on): the shell ends with 130, and bareboat with it.
    let alone = common::debugging::one_session();
    let mut child = common::debugging::debug_command(
        d,
        &[
            "oci:out:broken",
            "--",
            "/busybox/sh",
            "-c",
            "sleep 30; echo not-interrupted",
        ],
    );
    let child = child
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    run(Command::new("kill").args(["-INT", "--", &format!("-{}", child.id())]));
    let started = std::time::Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(
        started.elapsed().as_secs() < 10,
        "Ctrl-C did not interrupt it"
    );
    assert_eq!(out.status.code(), Some(130));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("not-interrupted"));
    assert!(toolbox_processes().is_empty(), "{:?}", toolbox_processes());
    drop(alone);
    // A prebuilt toolbox serves the same way.
    build(d, &["catalog:base:debug-root", "-o", "oci:tools:debug"]);
    let out = debug(
        d,
        &[
            "oci:out:broken",
            "--toolbox",
            "oci:tools:debug",
            "--",
            "/busybox/sh",
            "-c",
            "cat /target/etc/debian_version",
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("13."));
}

#[test]
fn refusals_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = debug(d, &["runc:no-such-container", "--", "/busybox/true"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("runc has no running container \"no-such-container\""),
        "{err}"
    );
    let out = debug(d, &["pid:4194303", "--", "/busybox/true"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no process 4194303 is running"), "{err}");
    // Another user's process, without the privilege to join it.
    let mut sleeper = Command::new("sleep").arg("60").spawn().unwrap();
    let nobody_cache = d.join("nobody-cache");
    std::fs::create_dir(&nobody_cache).unwrap();
    std::fs::set_permissions(
        &nobody_cache,
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = Command::new(tool("setpriv"))
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_bareboat"))
        .arg("--cache")
        .arg(&nobody_cache)
        .args([
            "debug",
            &format!("pid:{}", sleeper.id()),
            "--",
            "/busybox/true",
        ])
        .current_dir("/")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "cannot join the namespaces of process {} (uid 0)",
            sleeper.id()
        )),
        "{err}"
    );
    assert!(err.contains("needs root"), "{err}");
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    // A rootless container's process, in a user namespace of its own.
    let mut rootless = Command::new(tool("unshare"))
        .args([
            "--user",
            "--map-root-user",
            "--pid",
            "--fork",
            "--kill-child",
            "sleep",
            "60",
        ])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let children =
        std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", rootless.id())).unwrap();
    let sleeping = children.split_whitespace().next().unwrap().to_string();
    let out = debug(d, &[&format!("pid:{sleeping}"), "--", "/busybox/true"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("runs in a user namespace of its own (a rootless container"),
        "{err}"
    );
    rootless.kill().unwrap();
    rootless.wait().unwrap();
    let out = debug(d, &["nerdctl:abc", "--", "/busybox/true"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bareboat debug pid:PID"), "{err}");
    // A package that does not exist.
    build(d, &["catalog:static", "-o", "oci:out:img"]);
    let out = debug(
        d,
        &[
            "oci:out:img",
            "--with",
            "no-such-package-xyz",
            "--",
            "/busybox/true",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("no-such-package-xyz"), "{err}");
}

/// A Kubernetes API server on loopback that knows one pod, `team/web-0` with the container
/// `app`, and records the ephemeral-container patches kubectl sends.
struct FakeApi {
    port: u16,
    patches: std::sync::Arc<std::sync::Mutex<Vec<(String, serde_json::Value)>>>,
}

impl FakeApi {
    fn start() -> FakeApi {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let patches = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let recorded = patches.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let recorded = recorded.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut stream = stream;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let mut words = line.split_whitespace();
                        let method = words.next().unwrap_or("").to_string();
                        let path = words.next().unwrap_or("").to_string();
                        let mut length = 0;
                        loop {
                            let mut header = String::new();
                            reader.read_line(&mut header).unwrap();
                            if header.trim().is_empty() {
                                break;
                            }
                            if let Some((k, v)) = header.split_once(':')
                                && k.eq_ignore_ascii_case("content-length")
                            {
                                length = v.trim().parse().unwrap();
                            }
                        }
                        let mut body = vec![0; length];
                        reader.read_exact(&mut body).unwrap();
                        let (status, reply) = answer(&method, &path, &body, &recorded);
                        let reply = reply.to_string();
                        let head = format!(
                            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                            reply.len()
                        );
                        if stream.write_all(head.as_bytes()).is_err()
                            || stream.write_all(reply.as_bytes()).is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        FakeApi { port, patches }
    }
}

/// The fake API server's answer to a request.
fn answer(
    method: &str,
    path: &str,
    body: &[u8],
    patches: &std::sync::Mutex<Vec<(String, serde_json::Value)>>,
) -> (u16, serde_json::Value) {
    use serde_json::json;
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-0", "namespace": "team", "uid": "1", "resourceVersion": "1"},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]},
        "status": {"phase": "Running"}
    });
    let route = path.split('?').next().unwrap_or("");
    match (method, route) {
        ("GET", "/api") => (200, json!({"kind": "APIVersions", "versions": ["v1"]})),
        ("GET", "/apis") => (
            200,
            json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []}),
        ),
        ("GET", "/api/v1") => (
            200,
            json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                {"name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod",
                 "verbs": ["get", "list", "watch", "patch"]},
                {"name": "pods/ephemeralcontainers", "singularName": "", "namespaced": true,
                 "kind": "Pod", "verbs": ["get", "patch", "update"]}
            ]}),
        ),
        ("GET", "/api/v1/namespaces/team/pods/web-0") => (200, pod),
        ("PATCH", "/api/v1/namespaces/team/pods/web-0/ephemeralcontainers") => {
            let patch: serde_json::Value = serde_json::from_slice(body).unwrap();
            patches
                .lock()
                .unwrap()
                .push((path.to_string(), patch.clone()));
            let mut patched = pod;
            patched["spec"]["ephemeralContainers"] = patch["spec"]["ephemeralContainers"].clone();
            (200, patched)
        }
        _ => (
            404,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}),
        ),
    }
}

/// Runs the command line bareboat printed, as a shell would, against the fake API server,
/// and returns the ephemeral container kubectl asked it for.
fn run_printed(dir: &Path, printed: &str) -> serde_json::Value {
    // The machine's kubectl (1.27 or later, for --profile and --custom) runs it.
    tool("kubectl");
    let api = FakeApi::start();
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://127.0.0.1:{}\nusers:\n- name: u\n  user: {{}}\ncontexts:\n- name: c\n  context:\n    cluster: fake\n    user: u\ncurrent-context: c\n",
            api.port
        ),
    )
    .unwrap();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("{} --request-timeout=5s", printed.trim()))
        .current_dir(dir)
        .env("KUBECONFIG", &kubeconfig)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("kubectl.log")).unwrap())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    // kubectl then waits for the container to run and attaches: the patch is what counts.
    let patched = || !api.patches.lock().unwrap().is_empty();
    while !patched() && child.try_wait().unwrap().is_none() && started.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    let patches = api.patches.lock().unwrap();
    let said = std::fs::read_to_string(dir.join("kubectl.log")).unwrap();
    assert_eq!(
        patches.len(),
        1,
        "kubectl sent {} patches: {said}",
        patches.len()
    );
    patches[0].1["spec"]["ephemeralContainers"][0].clone()
}

#[test]
fn prints_a_kubectl_debug_command_that_kubectl_runs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let registry = common::LocalRegistry::start(d);
    let reference = format!("docker://127.0.0.1:{}/tools/debug:1", registry.port);
    let print = |extra: &[&str]| {
        let mut args = vec!["--print-kubectl", "web-0", "-c", "app", "-n", "team"];
        args.extend_from_slice(extra);
        let out = debug(d, &args);
        assert_eq!(out.status.code(), Some(0));
        (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (printed, _) = print(&["--push", &reference, "--insecure"]);
    assert!(
        printed.starts_with("kubectl debug -it web-0 -n team --image=127.0.0.1:"),
        "{printed}"
    );
    assert!(
        printed
            .trim_end()
            .ends_with("--target=app --profile=general"),
        "{printed}"
    );
    let image = printed
        .split_whitespace()
        .find_map(|w| w.strip_prefix("--image="))
        .unwrap()
        .to_string();
    assert!(image.contains("/tools/debug@sha256:"), "{image}");
    // The pushed toolbox is in the registry, as its digest says.
    let manifest = common::skopeo_raw(d, &format!("docker://{image}"));
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );

    let container = run_printed(d, &printed);
    assert_eq!(container["image"], image.as_str());
    assert_eq!(container["targetContainerName"], "app");
    let added = &container["securityContext"]["capabilities"]["add"];
    assert!(
        added.as_array().unwrap().contains(&"SYS_PTRACE".into()),
        "{container}"
    );

    // Under the restricted level: the target's user, and the warning that no tracer
    // can attach.
    let toolbox = format!("docker://{image}");
    let (printed, warned) = print(&["--toolbox", &toolbox, "--pod-security", "restricted"]);
    assert!(
        printed.contains("--profile=restricted --custom=bareboat-debug-custom.json"),
        "{printed}"
    );
    assert!(warned.contains("strace and gdb cannot attach"), "{warned}");
    let container = run_printed(d, &printed);
    let context = &container["securityContext"];
    assert_eq!(context["runAsUser"], 65532, "{container}");
    assert_eq!(context["runAsGroup"], 65532, "{container}");
    assert_eq!(context["runAsNonRoot"], true, "{container}");
    assert_eq!(
        context["capabilities"]["drop"],
        serde_json::json!(["ALL"]),
        "{container}"
    );
}
