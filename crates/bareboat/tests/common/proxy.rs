//! An HTTP proxy in front of the tests' docker-registry that injects faults and serves the
//! OCI referrers API that docker-registry 2.8 lacks.

use serde_json::Value;

/// For the next `times` requests whose method is `method` and whose path contains `path`:
/// answer `status` (with `Retry-After: 1` for 429) instead of forwarding, or, for status
/// [`DROP`], forward the head and 64 KiB of the body and then drop both connections.
pub const DROP: u16 = 0;

pub struct Rule {
    pub method: &'static str,
    pub path: &'static str,
    pub status: u16,
    pub times: usize,
}

/// The manifests with a `subject` that a proxy saw pushed: (subject digest, descriptor).
pub type Referrers = std::sync::Mutex<Vec<(String, Value)>>;

/// An HTTP proxy in front of a registry that injects faults, one connection per request
/// (it asks both sides to close), and records the faults it injected. With a referrers
/// store, it also serves the OCI referrers API that docker-registry 2.8 lacks, from the
/// manifests with a `subject` pushed through it.
pub struct FaultProxy {
    pub port: u16,
    fired: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl FaultProxy {
    pub fn start(upstream: u16, rules: Vec<Rule>) -> FaultProxy {
        FaultProxy::start_with(upstream, rules, None)
    }

    pub fn with_referrers_api(upstream: u16) -> FaultProxy {
        FaultProxy::start_with(upstream, Vec::new(), Some(Referrers::default()))
    }

    pub fn start_with(upstream: u16, rules: Vec<Rule>, referrers: Option<Referrers>) -> FaultProxy {
        use std::sync::{Arc, Mutex};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let rules = Arc::new(Mutex::new(rules));
        let referrers = Arc::new(referrers);
        let fired = Arc::new(Mutex::new(Vec::new()));
        let record = fired.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (rules, record, referrers) = (rules.clone(), record.clone(), referrers.clone());
                std::thread::spawn(move || {
                    proxy_one(conn, upstream, &rules, &record, referrers.as_ref().as_ref())
                });
            }
        });
        FaultProxy { port, fired }
    }

    pub fn fired(&self) -> Vec<String> {
        self.fired.lock().unwrap().clone()
    }
}

fn proxy_one(
    mut client: std::net::TcpStream,
    upstream: u16,
    rules: &std::sync::Mutex<Vec<Rule>>,
    fired: &std::sync::Mutex<Vec<String>>,
    referrers: Option<&Referrers>,
) {
    use std::io::{Read, Write};
    let Some(text) = read_head(&mut client) else {
        return;
    };
    let mut first = text.lines().next().unwrap_or_default().split(' ');
    let (method, path) = (
        first.next().unwrap_or_default(),
        first.next().unwrap_or_default(),
    );
    let status = {
        let mut rules = rules.lock().unwrap();
        rules
            .iter_mut()
            .find(|r| r.times > 0 && r.method == method && path.contains(r.path))
            .map(|r| {
                r.times -= 1;
                r.status
            })
    };
    let drop_mid_body = status == Some(DROP);
    if let Some(code) = status.filter(|c| *c != DROP) {
        fired
            .lock()
            .unwrap()
            .push(format!("{method} {path}: {code}"));
        let retry = if code == 429 {
            "Retry-After: 1\r\n"
        } else {
            ""
        };
        let _ = write!(
            client,
            "HTTP/1.1 {code} Injected\r\nContent-Length: 0\r\nConnection: close\r\n{retry}\r\n"
        );
        return;
    }
    let mut body = Vec::new();
    if let Some(store) = referrers {
        if method == "GET" && path.contains("/referrers/") {
            let subject = path.rsplit('/').next().unwrap_or_default();
            let subject = subject.split('?').next().unwrap_or_default();
            fired
                .lock()
                .unwrap()
                .push(format!("{method} {path}: referrers API"));
            let listed: Vec<Value> = store
                .lock()
                .unwrap()
                .iter()
                .filter(|(s, _)| s == subject)
                .map(|(_, d)| d.clone())
                .collect();
            let index = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": listed,
            })
            .to_string();
            let _ = write!(
                client,
                "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.index.v1+json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{index}",
                index.len()
            );
            return;
        }
        // A pushed manifest is read whole, so one with a subject can be listed.
        if method == "PUT" && path.contains("/manifests/") {
            let length: usize = text
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            body.resize(length, 0);
            if client.read_exact(&mut body).is_err() {
                return;
            }
            if let Ok(doc) = serde_json::from_slice::<Value>(&body)
                && let Some(subject) = doc["subject"]["digest"].as_str()
            {
                let descriptor = serde_json::json!({
                    "mediaType": doc["mediaType"],
                    "digest": format!("sha256:{}", bareboat_testkit::sha256(&body)),
                    "size": body.len(),
                    "artifactType": doc["artifactType"],
                    "annotations": doc["annotations"],
                });
                store
                    .lock()
                    .unwrap()
                    .push((subject.to_string(), descriptor));
            }
        }
    }
    let mut forwarded: String = text
        .trim_end_matches("\r\n")
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    forwarded.push_str("Connection: close\r\n\r\n");
    let Ok(mut up) = std::net::TcpStream::connect(("127.0.0.1", upstream)) else {
        return;
    };
    if up.write_all(forwarded.as_bytes()).is_err() || up.write_all(&body).is_err() {
        return;
    }
    if drop_mid_body {
        // Up to 64 KiB, or what a smaller body sends before it stops.
        let mut part = vec![0u8; 64 << 10];
        let mut got = 0;
        let _ = client.set_read_timeout(Some(std::time::Duration::from_millis(300)));
        while got < part.len() {
            match client.read(&mut part[got..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        let _ = up.write_all(&part[..got]);
        fired
            .lock()
            .unwrap()
            .push(format!("{method} {path}: dropped"));
        let _ = up.shutdown(std::net::Shutdown::Both);
        let _ = client.shutdown(std::net::Shutdown::Both);
        return;
    }
    relay(client, up);
}

/// Reads an HTTP request's head, a byte at a time so that none of its body is taken.
pub fn read_head(stream: &mut std::net::TcpStream) -> Option<String> {
    use std::io::Read;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).unwrap_or(0) == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// Relays bytes both ways between a client and its upstream until they close.
pub fn relay(mut client: std::net::TcpStream, mut up: std::net::TcpStream) {
    let (mut from_client, mut to_up) = (client.try_clone().unwrap(), up.try_clone().unwrap());
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_client, &mut to_up);
        let _ = to_up.shutdown(std::net::Shutdown::Write);
    });
    let _ = std::io::copy(&mut up, &mut client);
    let _ = client.shutdown(std::net::Shutdown::Both);
}
