//! A registry on loopback that answers each request as a script says, for the tests of
//! registries that send too much, too slowly, or what they should not.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// What the scripted registry sends for one request.
pub enum Body {
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

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl Reply {
    pub fn ok(body: Body) -> Reply {
        Reply {
            status: 200,
            headers: Vec::new(),
            body,
        }
    }

    pub fn json(doc: &Value, media_type: &str) -> Reply {
        Reply {
            status: 200,
            headers: vec![("Content-Type".into(), media_type.into())],
            body: Body::Bytes(serde_json::to_vec(doc).unwrap()),
        }
    }

    pub fn not_found() -> Reply {
        Reply {
            status: 404,
            headers: Vec::new(),
            body: Body::Bytes(br#"{"errors":[{"code":"NOT_FOUND"}]}"#.to_vec()),
        }
    }
}

/// A script answers a request from its method, its path and where its `Range` starts.
pub type Script = dyn Fn(&str, &str, Option<u64>) -> Reply + Send + Sync;

/// A registry that answers each request as its script says, one connection at a time per
/// thread, and records every request and the bytes it sent.
pub struct Scripted {
    pub port: u16,
    /// Each request: when, its method and path, and whether it carried credentials.
    pub requests: Arc<Mutex<Vec<(Instant, String, bool)>>>,
    sent: Arc<Mutex<u64>>,
}

impl Scripted {
    pub fn start(
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

    pub fn reference(&self, path: &str) -> String {
        format!("docker://127.0.0.1:{}/{path}", self.port)
    }

    /// How many requests asked for a path ending in `suffix`.
    pub fn hits(&self, suffix: &str) -> usize {
        self.when(suffix).len()
    }

    /// When the requests for a path ending in `suffix` came.
    pub fn when(&self, suffix: &str) -> Vec<Instant> {
        let requests = self.requests.lock().unwrap();
        let asked = requests.iter().filter(|(_, r, _)| r.ends_with(suffix));
        asked.map(|(t, _, _)| *t).collect()
    }

    /// The requests that carried an `Authorization` header.
    pub fn authorized(&self) -> Vec<String> {
        let requests = self.requests.lock().unwrap();
        let with = requests.iter().filter(|(_, _, auth)| *auth);
        with.map(|(_, r, _)| r.clone()).collect()
    }

    pub fn bytes_sent(&self) -> u64 {
        *self.sent.lock().unwrap()
    }
}

fn serve(
    mut stream: TcpStream,
    script: &Script,
    log: &Mutex<Vec<(Instant, String, bool)>>,
    sent: &Mutex<u64>,
) {
    // A reply's head and body are written apart: Nagle's algorithm would hold back each
    // body until the client's delayed acknowledgement, 40 ms a request.
    let _ = stream.set_nodelay(true);
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

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", bareboat_testkit::sha256(bytes))
}

/// A small image's blobs: an uncompressed layer of one file, its config and manifest.
pub struct Image {
    pub layer: Vec<u8>,
    pub config: Vec<u8>,
    pub manifest: Value,
}

pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";

pub fn image() -> Image {
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
