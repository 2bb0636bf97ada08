//! Registries that answer with too much, too slowly, or not at all: a scripted registry on
//! loopback serves each case, and bareboat must stop with a clear error, in bounded memory
//! and without filling the disk.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{bareboat, measured, run};
use serde_json::{Value, json};

/// The most memory any of these commands may use.
const PEAK_MIB: u64 = 300;

/// What the scripted registry sends for one request.
enum Body {
    Bytes(Vec<u8>),
    /// `count` zero bytes, announced with a Content-Length or (`None`) until the connection
    /// closes.
    Zeros {
        count: u64,
        announced: bool,
    },
    /// `chunk` bytes of `bytes` every `every`, announced in full.
    Drip {
        bytes: Vec<u8>,
        chunk: usize,
        every: Duration,
    },
    /// `bytes` announced in full, of which only the first `after` are sent before the
    /// connection closes.
    Cut {
        bytes: Vec<u8>,
        after: usize,
    },
    /// No answer at all, for `for_`.
    Silence {
        for_: Duration,
    },
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Body,
}

impl Reply {
    fn ok(body: Body) -> Reply {
        Reply {
            status: 200,
            headers: Vec::new(),
            body,
        }
    }

    fn json(doc: &Value, media_type: &str) -> Reply {
        Reply {
            status: 200,
            headers: vec![("Content-Type".into(), media_type.into())],
            body: Body::Bytes(serde_json::to_vec(doc).unwrap()),
        }
    }

    fn not_found() -> Reply {
        Reply {
            status: 404,
            headers: Vec::new(),
            body: Body::Bytes(br#"{"errors":[{"code":"NOT_FOUND"}]}"#.to_vec()),
        }
    }
}

/// A script answers a request from its method, its path and where its `Range` starts.
type Script = dyn Fn(&str, &str, Option<u64>) -> Reply + Send + Sync;

/// A registry that answers each request as its script says, one connection at a time per
/// thread, and records every request and the bytes it sent.
struct Scripted {
    port: u16,
    /// Each request: when, its method and path, and whether it carried credentials.
    requests: Arc<Mutex<Vec<(Instant, String, bool)>>>,
    sent: Arc<Mutex<u64>>,
}

impl Scripted {
    fn start(
        script: impl Fn(&str, &str, Option<u64>) -> Reply + Send + Sync + 'static,
    ) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let sent = Arc::new(Mutex::new(0));
        let script: Arc<Script> = Arc::new(script);
        let (log, count) = (requests.clone(), sent.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (script, log, count) = (script.clone(), log.clone(), count.clone());
                std::thread::spawn(move || serve(stream, &*script, &log, &count));
            }
        });
        Scripted {
            port,
            requests,
            sent,
        }
    }

    fn reference(&self, path: &str) -> String {
        format!("docker://127.0.0.1:{}/{path}", self.port)
    }

    /// How many requests asked for a path ending in `suffix`.
    fn hits(&self, suffix: &str) -> usize {
        self.when(suffix).len()
    }

    /// When the requests for a path ending in `suffix` came.
    fn when(&self, suffix: &str) -> Vec<Instant> {
        let requests = self.requests.lock().unwrap();
        let asked = requests.iter().filter(|(_, r, _)| r.ends_with(suffix));
        asked.map(|(t, _, _)| *t).collect()
    }

    /// The requests that carried an `Authorization` header.
    fn authorized(&self) -> Vec<String> {
        let requests = self.requests.lock().unwrap();
        let with = requests.iter().filter(|(_, _, auth)| *auth);
        with.map(|(_, r, _)| r.clone()).collect()
    }

    fn bytes_sent(&self) -> u64 {
        *self.sent.lock().unwrap()
    }
}

fn serve(
    mut stream: TcpStream,
    script: &Script,
    log: &Mutex<Vec<(Instant, String, bool)>>,
    sent: &Mutex<u64>,
) {
    loop {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if stream.read(&mut byte).unwrap_or(0) == 0 {
                return;
            }
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let mut words = head.split_whitespace();
        let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        let path = target.split('?').next().unwrap_or("").to_string();
        let auth = head.to_ascii_lowercase().contains("\r\nauthorization:");
        let asked = (Instant::now(), format!("{method} {path}"), auth);
        log.lock().unwrap().push(asked);
        let range = head.lines().find_map(|l| {
            let (name, value) = l.split_once(':')?;
            let start = value.trim().strip_prefix("bytes=")?.strip_suffix('-')?;
            name.eq_ignore_ascii_case("range")
                .then(|| start.parse().ok())?
        });
        let reply = script(method, &path, range);
        let mut out = format!("HTTP/1.1 {} X\r\n", reply.status);
        for (k, v) in &reply.headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        let written = |n: usize| *sent.lock().unwrap() += n as u64;
        match reply.body {
            Body::Bytes(bytes) => {
                out.push_str(&format!("Content-Length: {}\r\n\r\n", bytes.len()));
                let body = if method == "HEAD" { &[][..] } else { &bytes };
                if stream.write_all(out.as_bytes()).is_err() || stream.write_all(body).is_err() {
                    return;
                }
                written(body.len());
            }
            Body::Zeros { count, announced } => {
                if announced {
                    out.push_str(&format!("Content-Length: {count}\r\n"));
                }
                out.push_str("Connection: close\r\n\r\n");
                let _ = stream.write_all(out.as_bytes());
                let zeros = vec![0u8; 64 << 10];
                let mut left = count;
                while left > 0 {
                    let n = left.min(zeros.len() as u64) as usize;
                    if stream.write_all(&zeros[..n]).is_err() {
                        return;
                    }
                    written(n);
                    left -= n as u64;
                }
                return;
            }
            Body::Drip {
                bytes,
                chunk,
                every,
            } => {
                out.push_str(&format!("Content-Length: {}\r\n\r\n", bytes.len()));
                let _ = stream.write_all(out.as_bytes());
                for part in bytes.chunks(chunk) {
                    std::thread::sleep(every);
                    if stream.write_all(part).is_err() {
                        return;
                    }
                    written(part.len());
                }
            }
            Body::Cut { bytes, after } => {
                out.push_str(&format!("Content-Length: {}\r\n\r\n", bytes.len()));
                if stream.write_all(out.as_bytes()).is_ok()
                    && stream.write_all(&bytes[..after]).is_ok()
                {
                    written(after);
                }
                return;
            }
            Body::Silence { for_ } => {
                std::thread::sleep(for_);
                return;
            }
        }
    }
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", bareboat_testkit::sha256(bytes))
}

/// A small image's blobs: an uncompressed layer of one file, its config and manifest.
struct Image {
    layer: Vec<u8>,
    config: Vec<u8>,
    manifest: Value,
}

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn image() -> Image {
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    let content = vec![b'x'; 200_000];
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    tar.append_data(&mut h, "data", &content[..]).unwrap();
    let layer = tar.into_inner().unwrap();
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [sha256(&layer)]},
    }))
    .unwrap();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256(&layer), "size": layer.len()}],
    });
    Image {
        layer,
        config,
        manifest,
    }
}

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
    // that never ends.
    let size = image().layer.len() as u64;
    let needle = format!("is larger than the {size}-byte limit");
    let cases = [
        (1_500_000_000, true),
        (1_500_000_000, false),
        (u64::MAX, false),
    ];
    for (count, announced) in cases {
        let registry = serving(image(), move |_, _| {
            Reply::ok(Body::Zeros { count, announced })
        });
        let source = registry.reference("team/app:1");
        let err =
            refused_in_bounded_memory(d, "copy", &["--insecure", &source, "oci:dest:x"], &needle);
        assert!(err.contains("do not trust it"), "{err}");
        assert!(
            registry.bytes_sent() < 64 << 20,
            "{} bytes were sent before bareboat stopped",
            registry.bytes_sent()
        );
        assert_eq!(registry.hits(&sha256(&image().layer)), 1, "not retried");
        assert!(largest_file(d) <= size, "a file outgrew the layer");
    }
}

#[test]
fn stalled_transfers_and_silent_registries_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 10 kB a second against a floor of 50 kB a second over 1 s windows: each of the five
    // attempts stops after a window.
    let registry = serving(image(), |layer, _| {
        Reply::ok(Body::Drip {
            bytes: layer.to_vec(),
            chunk: 1000,
            every: Duration::from_millis(100),
        })
    });
    let source = registry.reference("team/app:1");
    refused_in_bounded_memory(
        d,
        "copy",
        &["--insecure", "--min-rate", "50000/1", &source, "oci:dest:x"],
        "below the minimum of 50000 bytes a second",
    );
    assert_eq!(
        registry.hits(&sha256(&image().layer)),
        5,
        "tried five times"
    );

    // The same rate passes a blob that keeps to it.
    let steady = serving(image(), |layer, _| {
        Reply::ok(Body::Drip {
            bytes: layer.to_vec(),
            chunk: 20_000,
            every: Duration::from_millis(100),
        })
    });
    run(&mut bareboat(
        d,
        "copy",
        &[
            "--insecure",
            "--min-rate",
            "50000/1",
            &steady.reference("team/app:1"),
            "oci:steady:x",
        ],
    ));

    // A registry that accepts the connection and never answers: each attempt at the
    // manifest ends after one window.
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
    assert_eq!(silent.hits("/manifests/1"), 5, "tried five times");

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
    let out = std::process::Command::new("unshare")
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
