//! Authentication as a registry asks for it in its answer to `GET /v2/`: none, Basic, or
//! Bearer tokens from the realm it names.

use std::collections::HashMap;

use reqwest::header::HeaderValue;

use super::bounds::Failure;

/// How the registry asks to be authenticated, as its answer to `GET /v2/` says.
#[derive(Clone, Debug)]
pub(crate) enum Challenge {
    Open,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

#[derive(Default)]
pub(crate) struct AuthState {
    pub(crate) challenge: Option<Challenge>,
    /// Bearer tokens by scope.
    pub(crate) tokens: HashMap<String, String>,
}

pub(crate) fn bearer(token: &str) -> Result<HeaderValue, Failure> {
    HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| Failure::Protocol("the registry's token is not a valid header".into()))
}

/// A `WWW-Authenticate` challenge: `Basic realm=...` or `Bearer realm=...,service=...`.
pub(crate) fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, params) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut realm = None;
    let mut service = None;
    for (key, value) in challenge_params(params) {
        match key.to_ascii_lowercase().as_str() {
            "realm" => realm = Some(value),
            "service" => service = Some(value),
            _ => {}
        }
    }
    Some(Challenge::Bearer {
        realm: realm?,
        service,
    })
}

/// The `key=value` and `key="quoted, value"` pairs of a challenge.
fn challenge_params(mut rest: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        let Some((key, after)) = rest.split_once('=') else {
            return pairs;
        };
        let (value, after) = match after.strip_prefix('"') {
            Some(quoted) => match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            },
            None => after.split_once(',').unwrap_or((after, "")),
        };
        pairs.push((key.trim().to_string(), value.to_string()));
        rest = after;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_parsed_as_registries_send_them() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull""#,
        );
        match c {
            Some(Challenge::Bearer { realm, service }) => {
                assert_eq!(realm, "https://auth.example/token");
                assert_eq!(service.as_deref(), Some("registry.example"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        ));
        assert!(parse_challenge("Bearer service=x").is_none(), "no realm");
        assert!(parse_challenge("Negotiate abc").is_none());
    }
}
