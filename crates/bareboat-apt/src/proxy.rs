//! The proxy apt would use for each archive request, so that a fleet behind a shared package
//! proxy (apt-cacher-ng, a corporate mirror's proxy) fetches through it as apt does.
//!
//! As apt's `http` method decides, for a request to HOST over SCHEME (`https` falls back to
//! `http`'s settings, as apt's `ConfigFind` does):
//! 1. `Acquire::SCHEME::Proxy::HOST`, where `DIRECT` means no proxy;
//! 2. else `Acquire::SCHEME::Proxy`;
//! 3. else the environment's `http_proxy` or `https_proxy` (or their upper-case forms);
//! 4. and in every case none for a host `no_proxy` names.
//!
//! apt's configuration is read in apt's order, later settings winning: the file
//! `APT_CONFIG` names, the parts in `/etc/apt/apt.conf.d` (in name order, only names apt
//! reads), then `/etc/apt/apt.conf`. `#include` is not followed (a warning says so), and
//! `Acquire::http::Proxy-Auto-Detect` (a program apt runs) is not run.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::Error;

/// The most an apt configuration file may hold.
const MAX_CONFIG_FILE: u64 = 1 << 20;

/// The most configuration files read from `apt.conf.d`.
const MAX_CONFIG_PARTS: usize = 1000;

/// A proxy chosen for a request, and what chose it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chosen {
    /// The proxy's URL.
    pub url: String,
    /// The setting that names it, such as `Acquire::http::Proxy in /etc/apt/apt.conf`.
    pub from: String,
}

impl fmt::Display for Chosen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the proxy {} ({})",
            without_password(&self.url),
            self.from
        )
    }
}

/// A proxy URL as messages show it: a password in it is replaced by `***`.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_string(),
    }
}

/// The proxy settings of apt's configuration and the environment.
#[derive(Clone, Debug, Default)]
pub struct Proxies {
    /// apt's settings under `acquire::`, by lower-cased key: the value and the file that
    /// set it last.
    config: BTreeMap<String, (String, PathBuf)>,
    /// `(variable, value)` of the environment's proxy for `http` and for `https`.
    http_env: Option<(&'static str, String)>,
    https_env: Option<(&'static str, String)>,
    /// The hosts and domains `no_proxy` names.
    no_proxy: Vec<String>,
}

impl Proxies {
    /// Reads apt's configuration below `root` (normally `/`) and the proxy variables that
    /// `env` gives (normally the process's environment). A proxy that is not an
    /// `http://` or `https://` URL is an error naming where it was set.
    pub fn from_host(root: &Path, env: impl Fn(&str) -> Option<String>) -> Result<Proxies, Error> {
        let mut files = Vec::new();
        if let Some(named) = env("APT_CONFIG").filter(|n| !n.is_empty()) {
            files.push(PathBuf::from(named));
        }
        files.extend(config_parts(&root.join("etc/apt/apt.conf.d"))?);
        let main = root.join("etc/apt/apt.conf");
        if main.exists() {
            files.push(main);
        }
        let mut proxies = Proxies::default();
        for file in files {
            let bytes = crate::hostfile::read_capped(&file, MAX_CONFIG_FILE).map_err(|e| {
                Error::AptConfig {
                    path: file.clone(),
                    reason: e.to_string(),
                }
            })?;
            let text = String::from_utf8_lossy(&bytes);
            let settings = parse(&text).map_err(|reason| Error::AptConfig {
                path: file.clone(),
                reason,
            })?;
            for setting in settings {
                match setting {
                    Setting::Set(key, value) if key.starts_with("acquire::") => {
                        proxies.config.insert(key, (value, file.clone()));
                    }
                    Setting::Set(..) => {}
                    Setting::Clear(key) => {
                        let under = format!("{key}::");
                        proxies
                            .config
                            .retain(|k, _| k != &key && !k.starts_with(&under));
                    }
                }
            }
        }
        let var = |names: [&'static str; 2]| {
            names
                .into_iter()
                .find_map(|n| env(n).filter(|v| !v.is_empty()).map(|v| (n, v)))
        };
        // As curl reads them: a proxy variable without a scheme means http://.
        let with_scheme = |(name, value): (&'static str, String)| match value.contains("://") {
            true => (name, value),
            false => (name, format!("http://{value}")),
        };
        proxies.http_env = var(["http_proxy", "HTTP_PROXY"]).map(with_scheme);
        proxies.https_env = var(["https_proxy", "HTTPS_PROXY"]).map(with_scheme);
        proxies.no_proxy = var(["no_proxy", "NO_PROXY"])
            .map(|(_, list)| {
                list.split(',')
                    .map(|d| d.trim().to_ascii_lowercase())
                    .filter(|d| !d.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        proxies.check()?;
        Ok(proxies)
    }

    /// The proxy for a request to `host` over `scheme` (`http` or `https`), if any.
    pub fn for_request(&self, scheme: &str, host: &str) -> Option<Chosen> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = host.to_ascii_lowercase();
        let methods: &[&str] = match scheme {
            "https" => &["https", "http"],
            _ => &["http"],
        };
        let set = |name: &str| {
            methods.iter().find_map(|m| {
                let key = format!("acquire::{m}::{name}");
                let (value, file) = self.config.get(&key)?;
                let from = format!("{} in {}", display_key(m, name), file.display());
                Some((value.clone(), from))
            })
        };
        let env = match scheme {
            "https" => self.https_env.as_ref(),
            _ => self.http_env.as_ref(),
        };
        let (url, from) = set(&format!("proxy::{host}"))
            .or_else(|| set("proxy"))
            .or_else(|| env.map(|(var, value)| (value.clone(), var.to_string())))?;
        if url.eq_ignore_ascii_case("DIRECT") || url.is_empty() || self.bypasses(&host) {
            return None;
        }
        Some(Chosen { url, from })
    }

    /// Whether `no_proxy` names `host`: all hosts for `*`, else the host itself or a domain
    /// it is in (`example.org` and `.example.org` both cover `deb.example.org`).
    fn bypasses(&self, host: &str) -> bool {
        self.no_proxy.iter().any(|entry| {
            let domain = entry.split(':').next().unwrap_or(entry);
            let domain = domain.trim_start_matches("*.").trim_start_matches('.');
            entry == "*" || host == domain || host.ends_with(&format!(".{domain}"))
        })
    }

    /// Refuses a proxy that is not an http:// or https:// URL, naming where it was set.
    fn check(&self) -> Result<(), Error> {
        let configured = self
            .config
            .iter()
            .filter(|(k, (v, _))| {
                is_proxy_key(k) && !v.is_empty() && !v.eq_ignore_ascii_case("DIRECT")
            })
            .map(|(k, (v, file))| (v, format!("{k} in {}", file.display())));
        let environment = [&self.http_env, &self.https_env]
            .into_iter()
            .flatten()
            .map(|(var, v)| (v, format!("the environment's {var}")));
        for (value, from) in configured.chain(environment) {
            let scheme_ok = ["http://", "https://"]
                .iter()
                .any(|s| value.to_ascii_lowercase().starts_with(s));
            if !scheme_ok || reqwest::Url::parse(value).is_err() {
                return Err(Error::BadProxy {
                    value: without_password(value),
                    from,
                });
            }
        }
        Ok(())
    }
}

/// Whether a lower-cased `acquire::` key names a proxy (not `Proxy-Auto-Detect`).
fn is_proxy_key(key: &str) -> bool {
    ["acquire::http::proxy", "acquire::https::proxy"]
        .iter()
        .any(|p| key == *p || key.starts_with(&format!("{p}::")))
}

/// A setting's name as apt's documentation writes it.
fn display_key(method: &str, name: &str) -> String {
    let rest = name.strip_prefix("proxy").unwrap_or(name);
    format!("Acquire::{method}::Proxy{rest}")
}

/// The files of `apt.conf.d` that apt reads, in its order: names of letters, digits, `_`,
/// `-` and `.` only, with no extension or `.conf`.
fn config_parts(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut parts: Vec<PathBuf> = read
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        // As apt does, a link to a file is read (its target is capped as any file is).
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file()))
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            let plain = !name.starts_with('.')
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
            let extension = p.extension().map(|e| e.to_string_lossy());
            plain && extension.is_none_or(|e| e == "conf")
        })
        .collect();
    if parts.len() > MAX_CONFIG_PARTS {
        return Err(Error::AptConfig {
            path: dir.to_path_buf(),
            reason: format!("more than {MAX_CONFIG_PARTS} files"),
        });
    }
    parts.sort();
    Ok(parts)
}

/// What one statement of an apt configuration file does.
#[derive(Debug, PartialEq, Eq)]
enum Setting {
    /// Sets a key (lower-cased, `::`-joined) to a value.
    Set(String, String),
    /// `#clear`s a key and everything under it.
    Clear(String),
}

/// A token of apt's configuration syntax.
#[derive(Debug, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Open,
    Close,
    End,
    /// `#clear` or `#include`, with the rest of its statement.
    Directive(String),
}

/// The settings of an apt configuration file, in order. Scopes (`Acquire { http { Proxy
/// "x"; }; };`) are flattened into keys; list items and keys without values set nothing.
fn parse(text: &str) -> Result<Vec<Setting>, String> {
    let mut settings = Vec::new();
    let mut scopes: Vec<String> = Vec::new();
    let mut statement: Vec<Token> = Vec::new();
    for token in tokens(text)? {
        match token {
            Token::Open => {
                let Some(Token::Word(tag)) = statement.first() else {
                    return Err("a '{' without a name before it".into());
                };
                scopes.push(join(&scopes, tag));
                statement.clear();
            }
            Token::Close => {
                if scopes.pop().is_none() {
                    return Err("a '}' with no '{' open".into());
                }
                statement.clear();
            }
            Token::End => {
                if let [Token::Word(tag), Token::Quoted(value) | Token::Word(value)] =
                    statement.as_slice()
                {
                    settings.push(Setting::Set(join(&scopes, tag), value.clone()));
                }
                statement.clear();
            }
            Token::Directive(body) => {
                let mut words = body.split_whitespace();
                match words.next() {
                    Some("#clear") => {
                        settings.extend(words.map(|k| Setting::Clear(join(&scopes, k))));
                    }
                    other => tracing::warn!(
                        directive = other.unwrap_or_default(),
                        "an apt configuration directive bareboat does not follow"
                    ),
                }
            }
            word => statement.push(word),
        }
    }
    if !scopes.is_empty() {
        return Err("a '{' that is never closed".into());
    }
    Ok(settings)
}

/// `scope::tag`, lower-cased.
fn join(scopes: &[String], tag: &str) -> String {
    let tag = tag.trim_matches(':').to_ascii_lowercase();
    match scopes.last() {
        Some(scope) => format!("{scope}::{tag}"),
        None => tag,
    }
}

/// apt's configuration syntax as tokens: `//` and `/* */` comments and `#` lines are
/// skipped, except `#clear` and `#include` lines, which are directives.
fn tokens(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    let mut line_start = true;
    while let Some((at, c)) = chars.next() {
        match c {
            '\n' => {
                line_start = true;
                continue;
            }
            c if c.is_whitespace() => continue,
            // A comment to the end of the line, or, starting a line, a directive.
            '#' => {
                let end = text[at..].find('\n').map_or(text.len(), |n| at + n);
                let line = text[at..end].trim().trim_end_matches(';');
                let directive = line.starts_with("#clear") || line.starts_with("#include");
                if line_start && directive {
                    out.push(Token::Directive(line.to_string()));
                }
                while chars.peek().is_some_and(|(i, _)| *i < end) {
                    chars.next();
                }
            }
            '/' if chars.peek().is_some_and(|(_, n)| *n == '/') => {
                while chars.peek().is_some_and(|(_, n)| *n != '\n') {
                    chars.next();
                }
            }
            '/' if chars.peek().is_some_and(|(_, n)| *n == '*') => {
                chars.next();
                let mut last = ' ';
                loop {
                    match chars.next() {
                        Some((_, '/')) if last == '*' => break,
                        Some((_, n)) => last = n,
                        None => return Err("a /* comment that never ends".into()),
                    }
                }
            }
            '"' => {
                let mut value = String::new();
                loop {
                    match chars.next() {
                        Some((_, '"')) => break,
                        Some((_, n)) => value.push(n),
                        None => return Err("a quoted value that never ends".into()),
                    }
                }
                out.push(Token::Quoted(value));
            }
            '{' => out.push(Token::Open),
            '}' => out.push(Token::Close),
            ';' => out.push(Token::End),
            _ => {
                let mut word = String::from(c);
                while let Some((_, n)) = chars.peek() {
                    if n.is_whitespace() || "{};\"".contains(*n) {
                        break;
                    }
                    word.push(*n);
                    chars.next();
                }
                out.push(Token::Word(word));
            }
        }
        line_start = false;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let p = d.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        d
    }

    fn url(chosen: Option<Chosen>) -> Option<String> {
        chosen.map(|c| c.url)
    }

    #[test]
    fn apt_syntax_flattens_scopes_and_skips_comments() {
        let text = r#"
// a comment
# a comment too
/* and
   one over lines */
Acquire::http::Proxy "http://a:3142/";
Acquire {
  http { Proxy::Deb.Example.org "DIRECT"; };
  https::Proxy "http://b:3128";
};
APT::Keep-Downloaded-Packages "true";
DPkg::Pre-Invoke { "echo list item"; };
#clear Acquire::ftp;
Acquire::ftp::Proxy "http://c:1"; # a comment after a setting
Acquire::http::Timeout "10";
"#;
        assert_eq!(
            parse(text).unwrap(),
            [
                Setting::Set("acquire::http::proxy".into(), "http://a:3142/".into()),
                Setting::Set(
                    "acquire::http::proxy::deb.example.org".into(),
                    "DIRECT".into()
                ),
                Setting::Set("acquire::https::proxy".into(), "http://b:3128".into()),
                Setting::Set("apt::keep-downloaded-packages".into(), "true".into()),
                Setting::Clear("acquire::ftp".into()),
                Setting::Set("acquire::ftp::proxy".into(), "http://c:1".into()),
                Setting::Set("acquire::http::timeout".into(), "10".into()),
            ]
        );
        for (bad, why) in [
            ("Acquire { http {", "never closed"),
            ("};", "no '{' open"),
            ("a \"b", "never ends"),
            ("/* open", "never ends"),
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn apt_settings_come_before_the_environment_and_per_host_before_both() {
        let d = host(&[
            (
                "etc/apt/apt.conf.d/01proxy",
                "Acquire::http::Proxy \"http://parts:3142\";\n\
                 Acquire::http::Proxy::mirror.internal \"DIRECT\";\n\
                 Acquire::http::Proxy::special.example \"http://special:8080\";\n",
            ),
            // Read last: overrides the part.
            (
                "etc/apt/apt.conf",
                "Acquire::http::Proxy \"http://main:3142\";\n",
            ),
            // Not names apt reads.
            (
                "etc/apt/apt.conf.d/02proxy.disabled",
                "Acquire::http::Proxy \"http://x:1\";",
            ),
            (
                "etc/apt/apt.conf.d/03 space",
                "Acquire::http::Proxy \"http://x:1\";",
            ),
        ]);
        let env = |n: &str| (n == "http_proxy").then(|| "http://env:1".to_string());
        let p = Proxies::from_host(d.path(), env).unwrap();
        let chosen = p.for_request("http", "deb.example.org").unwrap();
        assert_eq!(chosen.url, "http://main:3142");
        assert!(
            chosen.from.starts_with("Acquire::http::Proxy in "),
            "{chosen}"
        );
        assert!(chosen.from.ends_with("etc/apt/apt.conf"), "{chosen}");
        assert_eq!(url(p.for_request("http", "mirror.internal")), None);
        assert_eq!(
            url(p.for_request("http", "Special.Example")),
            Some("http://special:8080".into())
        );
        // https falls back to http's settings, as apt's do.
        assert_eq!(
            url(p.for_request("https", "deb.example.org")),
            Some("http://main:3142".into())
        );
    }

    #[test]
    fn the_environment_serves_when_apt_sets_nothing_and_no_proxy_bypasses() {
        let d = host(&[]);
        let vars = [
            ("http_proxy", "http://squid:3128"),
            ("HTTPS_PROXY", "http://secure:3128"),
            ("no_proxy", "localhost, .internal,example.org:80"),
        ];
        let env = |n: &str| {
            vars.iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string())
        };
        let p = Proxies::from_host(d.path(), env).unwrap();
        let chosen = p.for_request("http", "deb.debian.example").unwrap();
        assert_eq!(
            chosen,
            Chosen {
                url: "http://squid:3128".into(),
                from: "http_proxy".into()
            }
        );
        assert_eq!(
            url(p.for_request("https", "deb.debian.example")),
            Some("http://secure:3128".into())
        );
        for bypassed in [
            "localhost",
            "mirror.internal",
            "example.org",
            "deb.example.org",
        ] {
            assert_eq!(p.for_request("http", bypassed), None, "{bypassed}");
        }
        let none = Proxies::from_host(d.path(), |_| None).unwrap();
        assert_eq!(none.for_request("https", "deb.debian.example"), None);
        // A variable without a scheme is http://, as curl reads it; an empty apt setting is
        // no proxy.
        let bare = |n: &str| (n == "http_proxy").then(|| "squid:3128".to_string());
        let p = Proxies::from_host(d.path(), bare).unwrap();
        assert_eq!(
            url(p.for_request("http", "h")),
            Some("http://squid:3128".into())
        );
        let empty = host(&[("etc/apt/apt.conf", "Acquire::http::Proxy \"\";")]);
        let p = Proxies::from_host(empty.path(), |_| None).unwrap();
        assert_eq!(p.for_request("http", "h"), None);
    }

    #[test]
    fn apt_config_names_a_file_read_first() {
        let d = host(&[
            ("extra.conf", "Acquire::http::Proxy \"http://named:1\";"),
            ("etc/apt/apt.conf", "#clear Acquire::http::Proxy;"),
        ]);
        let named = d.path().join("extra.conf").to_string_lossy().into_owned();
        let env = |n: &str| (n == "APT_CONFIG").then(|| named.clone());
        // apt.conf, read after it, clears it.
        let p = Proxies::from_host(d.path(), env).unwrap();
        assert_eq!(p.for_request("http", "h"), None);
        std::fs::remove_file(d.path().join("etc/apt/apt.conf")).unwrap();
        let p = Proxies::from_host(d.path(), env).unwrap();
        assert_eq!(
            url(p.for_request("http", "h")),
            Some("http://named:1".into())
        );
    }

    #[test]
    fn a_linked_part_is_read_and_passwords_are_never_shown() {
        let d = host(&[(
            "elsewhere/proxy.conf",
            "Acquire::http::Proxy \"http://ci:s3cret@cache:3142/\";",
        )]);
        std::fs::create_dir_all(d.path().join("etc/apt/apt.conf.d")).unwrap();
        std::os::unix::fs::symlink(
            d.path().join("elsewhere/proxy.conf"),
            d.path().join("etc/apt/apt.conf.d/01proxy"),
        )
        .unwrap();
        let chosen = Proxies::from_host(d.path(), |_| None)
            .unwrap()
            .for_request("http", "h")
            .unwrap();
        assert_eq!(chosen.url, "http://ci:s3cret@cache:3142/");
        let shown = chosen.to_string();
        assert!(
            shown.contains("http://ci:***@cache:3142/") && !shown.contains("s3cret"),
            "{shown}"
        );
        let env = |n: &str| (n == "https_proxy").then(|| "ftp://ci:s3cret@cache:1".to_string());
        let err = Proxies::from_host(&d.path().join("none"), env)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ftp://ci:***@cache:1") && !err.contains("s3cret"),
            "{err}"
        );
    }

    #[test]
    fn a_proxy_that_is_not_a_url_is_refused_naming_where_it_was_set() {
        let d = host(&[(
            "etc/apt/apt.conf.d/proxy",
            "Acquire::http::Proxy \"squid:3128\";",
        )]);
        let err = Proxies::from_host(d.path(), |_| None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"squid:3128\"") && err.contains("apt.conf.d/proxy"),
            "{err}"
        );
        let d = host(&[]);
        let env = |n: &str| (n == "https_proxy").then(|| "socks5://s:1".to_string());
        let err = Proxies::from_host(d.path(), env).unwrap_err().to_string();
        assert!(err.contains("https_proxy"), "{err}");
        let d = host(&[("etc/apt/apt.conf", "Acquire { http { Proxy \"x\"; };")]);
        let err = Proxies::from_host(d.path(), |_| None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("never closed") && err.contains("apt.conf"),
            "{err}"
        );
    }
}
