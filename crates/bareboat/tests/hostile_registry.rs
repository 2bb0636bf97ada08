//! Registries that answer with too much, too slowly, or not at all: a scripted registry on
//! loopback serves each case, and bareboat must stop with a clear error, in bounded memory
//! and without filling the disk.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::scripted::{Body, INDEX, Image, MANIFEST, Reply, Scripted, image, sha256};
use common::{bareboat, measured, run};
use serde_json::{Value, json};

/// The most memory any of these commands may use.
const PEAK_MIB: u64 = 300;

/// Serves `image` as `r:1`, with `layer` deciding how the layer is sent, from the layer and
/// where the request's `Range` starts.
fn serving(
    image: Image,
    layer: impl Fn(&[u8], Option<u64>) -> Reply + Send + Sync + 'static,
) -> Scripted {
    let manifest = serde_json::to_vec(&image.manifest).unwrap();
    let (layer_path, config_path) = (
        format!("/blobs/{}", sha256(&image.layer)),
        format!("/blobs/{}", sha256(&image.config)),
    );
    Scripted::start(move |_, path, range| {
        if path.ends_with("/manifests/1")
            || path.ends_with(&format!("/manifests/{}", sha256(&manifest)))
        {
            Reply::json(&serde_json::from_slice(&manifest).unwrap(), MANIFEST)
        } else if path.ends_with(&config_path) {
            Reply::ok(Body::Bytes(image.config.clone()))
        } else if path.ends_with(&layer_path) {
            layer(&image.layer, range)
        } else if path == "/v2/" {
            Reply::ok(Body::Bytes(b"{}".to_vec()))
        } else {
            Reply::not_found()
        }
    })
}

/// Runs bareboat `command ARGS`, expecting it to fail with `needle` in bounded memory and
/// to leave no output behind.
fn refused_in_bounded_memory(d: &Path, command: &str, args: &[&str], needle: &str) -> String {
    let mut cmd = bareboat(d, command, args);
    cmd.env("TMPDIR", d.join("tmp"));
    std::fs::create_dir_all(d.join("tmp")).unwrap();
    let m = measured(&cmd);
    let err = String::from_utf8_lossy(&m.out.stderr).into_owned();
    assert_eq!(m.out.status.code(), Some(1), "{args:?}: {err}");
    assert!(
        err.contains(needle),
        "{args:?}: stderr lacks {needle:?}: {err}"
    );
    assert!(
        m.peak_mib < PEAK_MIB,
        "{args:?} peaked at {} MiB",
        m.peak_mib
    );
    assert!(!d.join("dest").exists(), "{args:?} wrote a layout");
    err
}

/// The largest file under `dir`.
fn largest_file(dir: &Path) -> u64 {
    let mut largest = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                pending.push(entry.path());
            } else {
                largest = largest.max(meta.len());
            }
        }
    }
    largest
}

#[test]
fn documents_and_tokens_larger_than_their_caps_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A 2 GiB manifest, announced and not.
    for announced in [true, false] {
        let registry = Scripted::start(move |_, path, _| match path {
            "/v2/" => Reply::ok(Body::Bytes(b"{}".to_vec())),
            _ => Reply {
                status: 200,
                headers: vec![("Content-Type".into(), MANIFEST.into())],
                body: Body::Zeros {
                    count: 2 << 30,
                    announced,
                },
            },
        });
        let source = registry.reference("team/app:1");
        for command in ["copy", "inspect"] {
            let mut args = vec!["--insecure", &source];
            if command == "copy" {
                args.push("oci:dest:x");
            }
            refused_in_bounded_memory(d, command, &args, "larger than the 4194304-byte limit");
        }
        assert!(
            registry.bytes_sent() < 64 << 20,
            "{} bytes were read",
            registry.bytes_sent()
        );
    }

    // A 100 MB token from the realm the registry names.
    let port = Arc::new(Mutex::new(0u16));
    let realm = port.clone();
    let registry = Scripted::start(move |_, path, _| match path {
        "/token" => Reply::ok(Body::Zeros {
            count: 100_000_000,
            announced: false,
        }),
        _ => Reply {
            status: 401,
            headers: vec![(
                "WWW-Authenticate".into(),
                format!(
                    "Bearer realm=\"http://127.0.0.1:{}/token\",service=\"test\"",
                    realm.lock().unwrap()
                ),
            )],
            body: Body::Bytes(Vec::new()),
        },
    });
    *port.lock().unwrap() = registry.port;
    refused_in_bounded_memory(
        d,
        "inspect",
        &["--insecure", &registry.reference("team/app:1")],
        "the token response is larger than the 1048576-byte limit",
    );
}

#[test]
fn a_blob_is_read_no_further_than_its_descriptor_says() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 1.5 GB for a layer whose descriptor says 200 kB, announced and not, then a body
    // that never ends; copied into a layout, or streamed by inspect.
    let size = image().layer.len() as u64;
    let needle = format!("the registry sent more than the {size} bytes its descriptor gives");
    let cases = [
        (1_500_000_000, true),
        (1_500_000_000, false),
        (u64::MAX, false),
    ];
    for (count, announced) in cases {
        for (command, output) in [("copy", Some("oci:dest:x")), ("inspect", None)] {
            let registry = serving(image(), move |_, _| {
                Reply::ok(Body::Zeros { count, announced })
            });
            let source = registry.reference("team/app:1");
            let mut args = vec!["--insecure", &source];
            args.extend(output);
            let err = refused_in_bounded_memory(d, command, &args, &needle);
            assert!(err.contains("do not trust it"), "{command}: {err}");
            assert!(!err.contains("ends after"), "{command}: {err}");
            assert!(
                registry.bytes_sent() < 64 << 20,
                "{} bytes were sent before bareboat stopped",
                registry.bytes_sent()
            );
            assert_eq!(registry.hits(&sha256(&image().layer)), 1, "not retried");
            assert!(largest_file(d) <= size, "a file outgrew the layer");
        }
    }
}

#[test]
fn slow_stalled_and_silent_registries_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The rates are ten times or more from the floor on either side, so that a busy
    // machine, which can only slow a transfer down, cannot make the slow one pass, nor
    // slow the steady one five times over.
    //
    // 1 kB a second against a floor of 10 kB a second over 1 s windows: the transfer
    // stops after a window, too slow, and is not tried again, which would take as long.
    // inspect, which streams the layer, says so too.
    for (command, output) in [("copy", Some("oci:dest:x")), ("inspect", None)] {
        let registry = serving(image(), |layer, _| {
            Reply::ok(Body::Drip {
                bytes: layer.to_vec(),
                chunk: 100,
                every: Duration::from_millis(100),
            })
        });
        let source = registry.reference("team/app:1");
        let mut args = vec!["--insecure", "--min-rate", "10000/1", &source];
        args.extend(output);
        let err = refused_in_bounded_memory(d, command, &args, "the transfer is too slow");
        assert!(
            err.contains("below the minimum of 10000 bytes a second") && err.contains("--min-rate"),
            "{command}: {err}"
        );
        assert!(!err.contains("ends after"), "{command}: {err}");
        let layer = sha256(&image().layer);
        assert_eq!(registry.hits(&layer), 1, "{command}: tried again");
    }

    // A manifest at 100 bytes a second, against a floor of 1 kB a second (it must arrive
    // whole within 1 s): the same.
    let manifest = serde_json::to_vec(&image().manifest).unwrap();
    let slow = Scripted::start(move |_, path, _| match path {
        "/v2/" => Reply::ok(Body::Bytes(b"{}".to_vec())),
        _ => Reply::ok(Body::Drip {
            bytes: manifest.clone(),
            chunk: 10,
            every: Duration::from_millis(100),
        }),
    });
    let source = slow.reference("team/app:1");
    let err = refused_in_bounded_memory(
        d,
        "inspect",
        &["--insecure", "--min-rate", "1000/1", &source],
        "a manifest is too slow",
    );
    assert!(err.contains("--min-rate"), "{err}");
    assert_eq!(slow.hits("/manifests/1"), 1, "tried again");

    // A layer that stalls, with not a byte in a window, is tried again: a connection
    // lost without a word looks like that.
    let asked = AtomicUsize::new(0);
    let stalls = serving(image(), move |layer, _| {
        match asked.fetch_add(1, Ordering::SeqCst) {
            0 => Reply::ok(Body::Drip {
                bytes: layer.to_vec(),
                chunk: layer.len(),
                every: Duration::from_secs(3),
            }),
            _ => Reply::ok(Body::Bytes(layer.to_vec())),
        }
    });
    run(&mut bareboat(
        d,
        "copy",
        &[
            "--insecure",
            "--min-rate",
            "50000/1",
            &stalls.reference("team/app:1"),
            "oci:stalled:x",
        ],
    ));
    assert_eq!(stalls.hits(&sha256(&image().layer)), 2);

    // The same floor passes a blob that keeps to it: 50 kB a second, over several windows.
    let steady = serving(image(), |layer, _| {
        Reply::ok(Body::Drip {
            bytes: layer.to_vec(),
            chunk: 5_000,
            every: Duration::from_millis(100),
        })
    });
    run(&mut bareboat(
        d,
        "copy",
        &[
            "--insecure",
            "--min-rate",
            "10000/1",
            &steady.reference("team/app:1"),
            "oci:steady:x",
        ],
    ));

    // A registry that accepts the connection and never answers: each attempt at the
    // manifest ends after one window, and a stall is tried again once, not five times.
    let silent = Scripted::start(|_, path, _| match path {
        "/v2/" => Reply::ok(Body::Bytes(b"{}".to_vec())),
        _ => Reply::ok(Body::Silence {
            for_: Duration::from_secs(600),
        }),
    });
    refused_in_bounded_memory(
        d,
        "inspect",
        &[
            "--insecure",
            "--min-rate",
            "1000/1",
            &silent.reference("team/app:1"),
        ],
        "a manifest took longer than 1s",
    );
    assert_eq!(silent.hits("/manifests/1"), 2, "tried twice");

    // Throttled with a Retry-After of 3 s, longer than the first backoff: bareboat waits.
    let throttled = AtomicUsize::new(0);
    let patient = Scripted::start(move |_, path, _| match path {
        "/v2/" => Reply::ok(Body::Bytes(b"{}".to_vec())),
        _ if throttled.fetch_add(1, Ordering::SeqCst) == 0 => Reply {
            status: 429,
            headers: vec![("Retry-After".into(), "3".into())],
            body: Body::Bytes(br#"{"errors":[{"code":"TOOMANYREQUESTS"}]}"#.to_vec()),
        },
        _ => Reply::not_found(),
    });
    let out = bareboat(
        d,
        "inspect",
        &["--insecure", &patient.reference("team/app:1")],
    )
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the registry has no such manifest"), "{err}");
    let asked = patient.when("/manifests/1");
    assert_eq!(asked.len(), 2, "{err}");
    assert!(asked[1] - asked[0] >= Duration::from_secs(3), "{asked:?}");
}

/// How a registry answers the request that follows a transfer broken off at `cut`.
#[derive(Clone, Copy)]
enum Resumed {
    /// With the rest, as asked.
    AsAsked,
    /// With the whole blob again, as a registry that ignores `Range` does.
    Whole,
    /// With a range that starts somewhere else.
    Elsewhere,
    /// With the rest, but other bytes than the blob's.
    Tampered,
}

/// Serves `image()` with its layer cut off at `cut` bytes on the first request, and the
/// next as `resumed` says; records where each layer request's range started.
fn cut_off(cut: usize, resumed: Resumed) -> (Scripted, Arc<Mutex<Vec<Option<u64>>>>) {
    let asked = Arc::new(Mutex::new(Vec::new()));
    let log = asked.clone();
    let registry = serving(image(), move |layer, range| {
        let mut log = log.lock().unwrap();
        log.push(range);
        if log.len() == 1 {
            return Reply::ok(Body::Cut {
                bytes: layer.to_vec(),
                after: cut,
            });
        }
        let from = range.unwrap_or(0) as usize;
        let partial = |start: usize, mut rest: Vec<u8>| {
            if let Resumed::Tampered = resumed {
                rest[0] ^= 1;
            }
            Reply {
                status: 206,
                headers: vec![(
                    "Content-Range".into(),
                    format!("bytes {start}-{}/{}", layer.len() - 1, layer.len()),
                )],
                body: Body::Bytes(rest),
            }
        };
        match resumed {
            Resumed::Whole => Reply::ok(Body::Bytes(layer.to_vec())),
            Resumed::Elsewhere => partial(0, layer.to_vec()),
            Resumed::AsAsked | Resumed::Tampered => partial(from, layer[from..].to_vec()),
        }
    });
    (registry, asked)
}

#[test]
fn a_broken_blob_transfer_goes_on_from_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let layer = image().layer;
    let cut = 120_000;
    // inspect streams the layer into its reader, and copy into a layout: either way the
    // second request asks for the rest only, and what arrives is checked whole.
    for (command, output) in [("inspect", None), ("copy", Some("oci:resumed:x"))] {
        let (registry, asked) = cut_off(cut, Resumed::AsAsked);
        let source = registry.reference("team/app:1");
        let mut args = vec!["--insecure", &source];
        args.extend(output);
        run(&mut bareboat(d, command, &args));
        assert_eq!(
            *asked.lock().unwrap(),
            [None, Some(cut as u64)],
            "{command}"
        );
        assert!(
            registry.bytes_sent() < layer.len() as u64 + 10_000,
            "{command}: {} bytes for a {}-byte layer",
            registry.bytes_sent(),
            layer.len()
        );
    }
    let copied = d
        .join("resumed/blobs")
        .join(sha256(&layer).replace(':', "/"));
    assert_eq!(std::fs::read(copied).unwrap(), layer);

    // A registry that sends the whole blob again has the part already read skipped.
    let (registry, asked) = cut_off(cut, Resumed::Whole);
    run(&mut bareboat(
        d,
        "inspect",
        &["--insecure", &registry.reference("team/app:1")],
    ));
    assert_eq!(asked.lock().unwrap().len(), 2);

    // One that answers with another range, or with other bytes, is refused.
    let (registry, _) = cut_off(cut, Resumed::Elsewhere);
    let source = registry.reference("team/app:1");
    refused_in_bounded_memory(
        d,
        "copy",
        &["--insecure", &source, "oci:dest:x"],
        &format!("asked for blob {} from byte {cut}", sha256(&layer)),
    );
    let (registry, _) = cut_off(cut, Resumed::Tampered);
    let source = registry.reference("team/app:1");
    // The reader or the download finds it first; either names the blob.
    let err = refused_in_bounded_memory(
        d,
        "copy",
        &["--insecure", &source, "oci:dest:x"],
        "hashes to",
    );
    assert!(err.contains(&sha256(&layer)), "{err}");
}

#[test]
fn each_document_and_blob_is_fetched_once_and_nesting_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let img = image();
    let manifest = serde_json::to_vec(&img.manifest).unwrap();
    let platform = json!({"mediaType": MANIFEST, "digest": sha256(&manifest), "size": manifest.len(),
        "platform": {"architecture": "amd64", "os": "linux"}});
    // An index listing one manifest 1,000 times.
    let wide =
        json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": vec![platform.clone(); 1000]});
    // 40 levels of indexes, each listing the next twice: 2^40 paths.
    let mut docs: HashMap<String, Vec<u8>> = HashMap::new();
    docs.insert(sha256(&manifest), manifest.clone());
    let mut below = platform;
    for _ in 0..40 {
        let level = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": INDEX,
            "manifests": [below.clone(), below.clone()]}))
        .unwrap();
        below = json!({"mediaType": INDEX, "digest": sha256(&level), "size": level.len()});
        docs.insert(sha256(&level), level);
    }
    let deep_top = below["digest"].as_str().unwrap().to_string();
    docs.insert("wide".into(), serde_json::to_vec(&wide).unwrap());
    docs.insert("deep".into(), docs[&deep_top].clone());
    let (layer, config) = (img.layer.clone(), img.config.clone());
    let registry = Scripted::start(move |_, path, _| {
        let name = path.rsplit('/').next().unwrap_or_default();
        if path == "/v2/" {
            Reply::ok(Body::Bytes(b"{}".to_vec()))
        } else if let Some(doc) = docs.get(name).filter(|_| path.contains("/manifests/")) {
            let doc: Value = serde_json::from_slice(doc).unwrap();
            let media_type = doc["mediaType"].as_str().unwrap().to_string();
            Reply::json(&doc, &media_type)
        } else if name == sha256(&layer) {
            Reply::ok(Body::Bytes(layer.clone()))
        } else if name == sha256(&config) {
            Reply::ok(Body::Bytes(config.clone()))
        } else {
            Reply::not_found()
        }
    });
    run(&mut bareboat(
        d,
        "copy",
        &[
            "--insecure",
            &registry.reference("team/app:wide"),
            "oci:wide:x",
        ],
    ));
    assert_eq!(
        registry.hits(&format!("/manifests/{}", sha256(&manifest))),
        1
    );
    assert_eq!(registry.hits(&sha256(&img.layer)), 1);

    refused_in_bounded_memory(
        d,
        "copy",
        &[
            "--insecure",
            &registry.reference("team/app:deep"),
            "oci:dest:x",
        ],
        "images nest at most 4",
    );
    // inspect streams the image and reads only the platform it picks: the top index lists
    // no platform, only more indexes.
    refused_in_bounded_memory(
        d,
        "inspect",
        &["--insecure", &registry.reference("team/app:deep")],
        "the image has no amd64 platform",
    );
    let requests = registry.requests.lock().unwrap().len();
    assert!(requests < 100, "{requests} requests");
}

/// `count` bytes that do not compress, the same each run.
fn noise(count: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..count)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

#[test]
fn inspect_streams_a_registry_image_without_writing_it_to_disk() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A 100 MB layer, against a cache and TMPDIR on a 16 MB tmpfs of a private mount
    // namespace: pulling the image to disk first would fill it.
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    let content = noise(100 << 20);
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    tar.append_data(&mut h, "big", &content[..]).unwrap();
    drop(content);
    let layer = tar.into_inner().unwrap();
    let mut img = image();
    img.config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [sha256(&layer)]},
    }))
    .unwrap();
    img.manifest["config"]["digest"] = json!(sha256(&img.config));
    img.manifest["config"]["size"] = json!(img.config.len());
    img.manifest["layers"][0]["digest"] = json!(sha256(&layer));
    img.manifest["layers"][0]["size"] = json!(layer.len());
    let size = layer.len();
    img.layer = layer;
    let registry = serving(img, |layer, _| Reply::ok(Body::Bytes(layer.to_vec())));
    let small = d.join("small");
    std::fs::create_dir(&small).unwrap();
    let script = "mount -t tmpfs -o size=16m tmpfs \"$0\" && mkdir \"$0/tmp\" && TMPDIR=\"$0/tmp\" exec \"$@\"";
    let out = std::process::Command::new(common::tool("unshare"))
        .args(["-m", "sh", "-c", script])
        .arg(&small)
        .arg(env!("CARGO_BIN_EXE_bareboat"))
        .arg("--cache")
        .arg(small.join("cache"))
        .args([
            "--json",
            "inspect",
            "--insecure",
            &registry.reference("team/app:1"),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "inspect with a 16 MB cache and TMPDIR (this test mounts a tmpfs in a private mount namespace, which needs root): {err}"
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["layers"][0]["size"], json!(size), "{report}");
    let layer = report["layers"][0]["digest"].as_str().unwrap();
    assert_eq!(registry.hits(layer), 1, "the layer was fetched once");
}

#[test]
fn credentials_go_to_the_registry_only() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::build(d, &["catalog:static", "-o", "oci:out:static"]);
    // An upload whose Location names another host, as a registry that hands uploads to
    // storage may: the blob goes there without the registry's password.
    let storage = Scripted::start(|method, _, _| match method {
        "PATCH" => Reply {
            status: 202,
            headers: vec![("Location".into(), "/stored".into())],
            body: Body::Bytes(Vec::new()),
        },
        _ => Reply {
            status: 500,
            headers: Vec::new(),
            body: Body::Bytes(b"stop here".to_vec()),
        },
    });
    let elsewhere = format!("http://127.0.0.1:{}/upload", storage.port);
    let registry = Scripted::start(move |method, path, _| {
        let challenge = (
            "WWW-Authenticate".to_string(),
            "Basic realm=\"r\"".to_string(),
        );
        match (method, path) {
            ("GET", "/v2/") => Reply {
                status: 401,
                headers: vec![challenge],
                body: Body::Bytes(Vec::new()),
            },
            ("HEAD", _) => Reply::not_found(),
            ("POST", _) => Reply {
                status: 202,
                headers: vec![("Location".into(), elsewhere.clone())],
                body: Body::Bytes(Vec::new()),
            },
            _ => Reply::not_found(),
        }
    });
    let out = bareboat(
        d,
        "copy",
        &[
            "--insecure",
            "--creds",
            "user:secret",
            "oci:out:static",
            &registry.reference("team/app:1"),
        ],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    // The storage's refusal, after the retries, is what the copy says.
    let err = String::from_utf8_lossy(&out.stderr);
    let said = err
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_default();
    assert!(
        said.contains("writing docker://")
            && said.contains("uploading blob sha256:")
            && said.ends_with("500 Internal Server Error: stop here"),
        "{err}"
    );
    assert!(
        !storage.requests.lock().unwrap().is_empty(),
        "the upload went to storage"
    );
    assert_eq!(
        storage.authorized(),
        Vec::<String>::new(),
        "no credentials to storage"
    );
    assert!(
        registry.authorized().iter().any(|r| r.starts_with("POST")),
        "the registry had them: {:?}",
        registry.authorized()
    );
}

#[test]
fn a_credential_helper_is_a_name_found_on_path_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let marker = d.join("ran");
    // A helper that leaves a mark, and answers.
    let helper = |path: &Path| {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let script = format!(
            "#!/bin/sh\ntouch '{}'\necho '{{\"Username\":\"u\",\"Secret\":\"s\"}}'\n",
            marker.display()
        );
        std::fs::write(path, script).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    // `docker-credential-x/../../payload/evil`, taken from the working directory, is
    // d/payload/evil; and a helper in the working directory itself.
    let work = d.join("work");
    std::fs::create_dir_all(work.join("docker-credential-x")).unwrap();
    helper(&d.join("payload/evil"));
    helper(&work.join("docker-credential-here"));
    helper(&d.join("bin/docker-credential-good"));
    let registry = Scripted::start(|method, path, _| match (method, path) {
        ("GET", "/v2/") => Reply {
            status: 401,
            headers: vec![("WWW-Authenticate".into(), "Basic realm=\"r\"".into())],
            body: Body::Bytes(Vec::new()),
        },
        _ => Reply::not_found(),
    });
    let host = format!("127.0.0.1:{}", registry.port);
    let source = registry.reference("team/app:1");
    let config = d.join("docker/config.json");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    let system_path = std::env::var("PATH").unwrap();
    let inspect = |helper: &str, path: &str| {
        let helpers = json!({ "credHelpers": { &host: helper } });
        std::fs::write(&config, helpers.to_string()).unwrap();
        let mut cmd = bareboat(&work, "inspect", &["--insecure", &source]);
        cmd.env("DOCKER_CONFIG", d.join("docker"))
            .env("PATH", path)
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("BAREBOAT_REGISTRY_CREDS");
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };

    let err = inspect("x/../../payload/evil", &system_path);
    assert!(
        err.contains(&format!(
            "{}: the credential helper \"x/../../payload/evil\" is not a helper's name",
            config.display()
        )),
        "{err}"
    );
    assert!(
        !marker.exists(),
        "the credentials file chose a program to run"
    );

    // PATH's relative entries, the working directory among them, are passed over.
    let err = inspect("here", &format!(":.:{system_path}"));
    assert!(
        err.contains("docker-credential-here is not in any absolute directory of PATH"),
        "{err}"
    );
    assert!(!marker.exists(), "a helper ran from the working directory");

    // A helper in an absolute directory of PATH is asked, and its answer sent.
    let err = inspect(
        "good",
        &format!("{}:{system_path}", d.join("bin").display()),
    );
    assert!(err.contains("no such manifest"), "{err}");
    assert!(marker.exists());
    assert!(
        !registry.authorized().is_empty(),
        "the helper's answer was not sent"
    );
}
