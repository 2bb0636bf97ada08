//! A small caching HTTP proxy, as a CI fleet shares one (apt-cacher-ng, a corporate
//! mirror's proxy), that says what it served from its cache and what it fetched.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};

use crate::{Listening, count_logged, read_request};

/// A forward proxy on 127.0.0.1 for plain HTTP: it answers absolute-form requests
/// (`GET http://host:port/path`), fetching a URL from its server the first time and
/// answering from memory after that. HEAD requests are passed on, uncached.
pub struct CachingProxy {
    listening: Listening,
    /// `HIT URL`, `MISS URL` or `PASS METHOD URL` for each request, in order.
    log: Arc<Mutex<Vec<String>>>,
}

/// Whole responses by URL.
type Store = Arc<Mutex<HashMap<String, Vec<u8>>>>;

impl Default for CachingProxy {
    fn default() -> CachingProxy {
        CachingProxy::start()
    }
}

impl CachingProxy {
    /// Starts the proxy with an empty cache.
    pub fn start() -> CachingProxy {
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let store: Store = Arc::default();
        let listening = {
            let log = log.clone();
            Listening::start(move |conn| {
                let _ = relay(conn, &store, &log);
            })
        };
        CachingProxy { listening, log }
    }

    /// The proxy's URL, as `http_proxy` or `Acquire::http::Proxy` names it.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.listening.port)
    }

    /// Every request, in order: `HIT URL`, `MISS URL` or `PASS METHOD URL`.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// How many requests for a URL ending in `suffix` were answered as `outcome` says
    /// (`HIT` from the cache, `MISS` fetched from the server).
    pub fn count(&self, outcome: &str, suffix: &str) -> usize {
        count_logged(&self.log, outcome, suffix)
    }
}

/// Answers one request from the cache, or from the server it names.
fn relay(mut conn: TcpStream, store: &Store, log: &Mutex<Vec<String>>) -> std::io::Result<()> {
    let (method, url) = read_request(&conn)?;
    let (method, url) = (method.as_str(), url.as_str());
    let Some((authority, path)) = url
        .strip_prefix("http://")
        .map(|rest| rest.split_at(rest.find('/').unwrap_or(rest.len())))
    else {
        conn.write_all(
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )?;
        return conn.flush();
    };
    let path = if path.is_empty() { "/" } else { path };
    let cached = store.lock().unwrap().get(url).cloned();
    let response = match (method, cached) {
        ("GET", Some(response)) => {
            log.lock().unwrap().push(format!("HIT {url}"));
            response
        }
        ("GET", None) => {
            log.lock().unwrap().push(format!("MISS {url}"));
            let response = fetch("GET", authority, path)?;
            if response.starts_with(b"HTTP/1.1 200") || response.starts_with(b"HTTP/1.0 200") {
                store
                    .lock()
                    .unwrap()
                    .insert(url.to_string(), response.clone());
            }
            response
        }
        (method, _) => {
            log.lock().unwrap().push(format!("PASS {method} {url}"));
            fetch(method, authority, path)?
        }
    };
    conn.write_all(&response)?;
    conn.flush()?;
    conn.shutdown(std::net::Shutdown::Both)
}

/// The server's whole response to `method path`, read until it closes the connection.
fn fetch(method: &str, authority: &str, path: &str) -> std::io::Result<Vec<u8>> {
    // A URL without a port names HTTP's.
    let address = match authority.rsplit_once(':') {
        Some((_, port)) if port.parse::<u16>().is_ok() => authority.to_string(),
        _ => format!("{authority}:80"),
    };
    let mut upstream = TcpStream::connect(address)?;
    write!(
        upstream,
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    upstream.read_to_end(&mut response)?;
    Ok(response)
}
