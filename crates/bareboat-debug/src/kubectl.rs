//! The `kubectl debug` command that runs a toolbox as an ephemeral container of a pod:
//! Kubernetes has the machinery to join a pod's container, and needs only an image it can
//! pull and the right profile for the namespace's Pod Security level.

use serde::Serialize;

/// The Pod Security level a namespace enforces, which decides the debug profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PodSecurity {
    /// No restriction: the `general` profile, which adds SYS_PTRACE.
    Privileged,
    /// `baseline`: no added capability, so no tracer can attach.
    Baseline,
    /// `restricted`: nonroot, no capability, no privilege escalation.
    Restricted,
}

/// A `kubectl debug` invocation.
#[derive(Clone, Debug, Serialize)]
pub struct Invocation {
    /// The command and its arguments.
    pub command: Vec<String>,
    /// The partial container spec `--custom` names, to be written beside, if any.
    pub custom: Option<serde_json::Value>,
    /// What the user should know: what the profile forbids.
    pub warnings: Vec<String>,
}

/// What to debug in a cluster, and with which image.
pub struct Debug<'a> {
    /// The pod.
    pub pod: &'a str,
    /// Its container whose processes the toolbox sees (`--target`).
    pub container: Option<&'a str>,
    /// Its namespace.
    pub namespace: Option<&'a str>,
    /// The toolbox image, as the cluster pulls it (best by digest).
    pub image: &'a str,
    /// The namespace's Pod Security level.
    pub level: PodSecurity,
    /// The target container's uid and gid, which a restricted or baseline debug container
    /// runs as, so that it can read the target's files.
    pub run_as: (u32, u32),
    /// Where the partial container spec for `--custom` goes.
    pub custom_path: &'a str,
}

impl Debug<'_> {
    /// The invocation.
    pub fn invocation(&self) -> Invocation {
        let mut command: Vec<String> = ["kubectl", "debug", "-it", self.pod]
            .map(String::from)
            .to_vec();
        if let Some(ns) = self.namespace {
            command.extend(["-n".into(), ns.into()]);
        }
        command.push(format!("--image={}", self.image));
        let mut warnings = Vec::new();
        match self.container {
            Some(c) => command.push(format!("--target={c}")),
            None => warnings.push(
                "no container named (-c): the toolbox will not see the pod's processes unless the pod shares its process namespace".into(),
            ),
        }
        let custom = match self.level {
            PodSecurity::Privileged => {
                command.push("--profile=general".into());
                None
            }
            level @ (PodSecurity::Baseline | PodSecurity::Restricted) => {
                let name = match level {
                    PodSecurity::Baseline => "baseline",
                    _ => "restricted",
                };
                command.push(format!("--profile={name}"));
                command.push(format!("--custom={}", self.custom_path));
                warnings.push(format!(
                    "the {name} Pod Security level rejects SYS_PTRACE: strace and gdb cannot attach to the target; reading its files at /proc/1/root works as its own user"
                ));
                let (uid, gid) = self.run_as;
                Some(serde_json::json!({
                    "securityContext": {"runAsUser": uid, "runAsGroup": gid}
                }))
            }
        };
        Invocation {
            command,
            custom,
            warnings,
        }
    }
}

/// `words` as one line a POSIX shell reads back as the same words.
pub fn shell_line(words: &[String]) -> String {
    let quoted: Vec<String> = words
        .iter()
        .map(|w| {
            let plain = !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_=./:@,+".contains(&b));
            if plain {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', r"'\''"))
            }
        })
        .collect();
    quoted.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn debug(level: PodSecurity, container: Option<&'static str>) -> Invocation {
        Debug {
            pod: "web-0",
            container,
            namespace: Some("shop"),
            image: "registry.example/tools/debug@sha256:abc",
            level,
            run_as: (65532, 65532),
            custom_path: "custom.json",
        }
        .invocation()
    }

    #[test]
    fn the_profile_follows_the_pod_security_level() {
        let general = debug(PodSecurity::Privileged, Some("app"));
        assert_eq!(
            shell_line(&general.command),
            "kubectl debug -it web-0 -n shop --image=registry.example/tools/debug@sha256:abc --target=app --profile=general"
        );
        assert!(general.custom.is_none() && general.warnings.is_empty());
        let restricted = debug(PodSecurity::Restricted, Some("app"));
        assert!(
            restricted
                .command
                .ends_with(&["--profile=restricted".into(), "--custom=custom.json".into()])
        );
        assert_eq!(
            restricted.custom.unwrap()["securityContext"],
            serde_json::json!({"runAsUser": 65532, "runAsGroup": 65532})
        );
        assert!(restricted.warnings[0].contains("strace and gdb cannot attach"));
        let untargeted = debug(PodSecurity::Baseline, None);
        assert!(untargeted.command.contains(&"--profile=baseline".into()));
        assert!(untargeted.warnings[0].contains("no container named"));
        assert_eq!(
            shell_line(&["a b".into(), "it's".into()]),
            r"'a b' 'it'\''s'"
        );
    }
}
