//! The image config a build writes: bareboat's defaults, a base image's settings, and the
//! spec's on top.

use std::collections::HashSet;

use bareboat_oci::image::RunConfig;
use bareboat_spec::accounts::NONROOT;
use bareboat_spec::catalog::Variant;
use bareboat_spec::spec::Spec;
use oci_spec::image::Config;

use crate::content::BUNDLE;
use crate::probe;

/// The image config: numeric user, PATH, SSL_CERT_FILE and, in an image with glibc's
/// C.UTF-8 locale (`with_locale`), LANG, then the spec's settings. On an image base, the
/// base's settings stand where bareboat's defaults would, as with a Dockerfile's FROM.
pub(crate) fn run_config(spec: &Spec, base: Option<&Config>, with_locale: bool) -> RunConfig {
    let root = matches!(spec.variant, Variant::Root | Variant::DebugRoot);
    let base_user = base
        .and_then(|c| c.user().clone())
        .filter(|u| !u.is_empty());
    let user = match (&spec.run.user, base_user) {
        (Some(u), _) => u.clone(),
        (None, Some(u)) => u,
        (None, None) if root => "0".to_string(),
        (None, None) => NONROOT.to_string(),
    };
    let mut env = match base {
        Some(c) => c.env().clone().unwrap_or_default(),
        None => {
            let mut path =
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string();
            if spec.variant.is_debug() {
                path.push_str(":/busybox");
            }
            let mut env = vec![format!("PATH={path}"), format!("SSL_CERT_FILE=/{BUNDLE}")];
            if with_locale {
                env.push("LANG=C.UTF-8".to_string());
            }
            // A uid with no passwd entry (OpenShift's arbitrary uids) would get HOME=/ from
            // the runtime: name the home every such user can write.
            if user == NONROOT.to_string() {
                env.push("HOME=/home/nonroot".to_string());
            }
            env
        }
    };
    // The spec's variables replace those of the same name, in one pass: a spec may set
    // thousands.
    let overridden: HashSet<&str> = spec.run.env.iter().map(|(k, _)| k.as_str()).collect();
    env.retain(|e| !overridden.contains(e.split_once('=').map_or(e.as_str(), |(k, _)| k)));
    env.extend(spec.run.env.iter().map(|(k, v)| format!("{k}={v}")));
    let base_entrypoint = base.and_then(|c| c.entrypoint().clone());
    let entrypoint = match &spec.run.entrypoint {
        Some(e) => e.clone(),
        None if base.is_some() => base_entrypoint.unwrap_or_default(),
        None if spec.variant.is_debug() => vec!["/busybox/sh".into()],
        None => Vec::new(),
    };
    // A new entrypoint drops the base's arguments for the old one.
    let cmd = match (&spec.run.cmd, &spec.run.entrypoint) {
        (Some(c), _) => c.clone(),
        (None, None) => base.and_then(|c| c.cmd().clone()).unwrap_or_default(),
        (None, Some(_)) => Vec::new(),
    };
    let workdir = spec
        .run
        .workdir
        .clone()
        .or_else(|| base.and_then(|c| c.working_dir().clone()))
        .or_else(|| {
            (base.is_none() && user == NONROOT.to_string()).then(|| "/home/nonroot".into())
        });
    let mut exposed_ports = base
        .and_then(|c| c.exposed_ports().clone())
        .unwrap_or_default();
    for p in &spec.run.ports {
        if !exposed_ports.contains(p) {
            exposed_ports.push(p.clone());
        }
    }
    let mut labels: Vec<(String, String)> = base
        .and_then(|c| c.labels().clone())
        .map(|l| l.into_iter().collect())
        .unwrap_or_default();
    labels.retain(|(k, _)| !spec.run.labels.iter().any(|(s, _)| s == k));
    labels.extend(spec.run.labels.iter().cloned());
    labels.sort();
    RunConfig {
        user,
        entrypoint,
        cmd,
        workdir,
        env,
        exposed_ports,
        labels,
        healthcheck: spec.run.health.as_ref().map(|target| {
            vec![
                "CMD".to_string(),
                format!("/{}", probe::PATH),
                target.clone(),
            ]
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lang_names_the_locale_only_where_the_image_has_it() {
        let release = bareboat_apt::sources::Distribution::Trixie;
        let spec = bareboat_spec::catalog::spec("cc", None, release, vec![]).unwrap();
        let lang = |config: &RunConfig| {
            let found = config.env.iter().filter(|e| e.starts_with("LANG="));
            found.cloned().collect::<Vec<_>>()
        };
        assert_eq!(lang(&run_config(&spec, None, true)), ["LANG=C.UTF-8"]);
        assert!(lang(&run_config(&spec, None, false)).is_empty());
        // The spec's environment wins; a base image's stands where bareboat's would.
        let mut custom = spec.clone();
        custom.run.env = vec![("LANG".into(), "de_DE.UTF-8".into())];
        assert_eq!(lang(&run_config(&custom, None, true)), ["LANG=de_DE.UTF-8"]);
        let mut base = Config::default();
        base.set_env(Some(vec!["PATH=/bin".into()]));
        assert!(lang(&run_config(&spec, Some(&base), true)).is_empty());
    }
}
