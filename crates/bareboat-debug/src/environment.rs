//! What a session's command is given: its environment, its working directory and whom it
//! runs as, beside a process or beside an image.

use oci_spec::image::Config;

use crate::Error;
use crate::session::User;

/// The toolbox's PATH: busybox's applets first, then the packages' programs.
pub const TOOLBOX_PATH: &str =
    "/busybox:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The environment and directory of a command beside a running process: the toolbox's
/// PATH, a HOME it can write, the root.
pub fn beside_process() -> (Vec<(String, String)>, String) {
    let env = vec![
        ("PATH".to_string(), TOOLBOX_PATH.to_string()),
        ("HOME".to_string(), "/tmp".to_string()),
    ];
    (env, "/".to_string())
}

/// The environment and directory of a command beside an image whose config is `config`:
/// its environment with `/busybox` first on its PATH, and its working directory under
/// `/target`, named in PWD too (it lies in the image's root, which getcwd() cannot name
/// from the toolbox's, so the shell takes its name from PWD).
pub fn beside_image(config: &Config) -> (Vec<(String, String)>, String) {
    let mut env: Vec<(String, String)> = config
        .env()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone());
    env.retain(|(k, _)| k != "PATH" && k != "PWD");
    let path = match path {
        Some(p) => format!("/busybox:{p}"),
        None => TOOLBOX_PATH.to_string(),
    };
    env.push(("PATH".into(), path));
    let workdir = config.working_dir().as_deref().unwrap_or_default();
    let cwd = format!("/target/{}", workdir.trim_start_matches('/'));
    env.push(("PWD".into(), cwd.clone()));
    (env, cwd)
}

/// Whom a command beside an image runs as, for `--as-target-user`: its config's `User`,
/// which must be numeric (`UID[:GID]`): the toolbox has no passwd of the image's to read a
/// name in.
pub fn image_user(config: &Config) -> Result<User, Error> {
    let user = config
        .user()
        .as_deref()
        .filter(|u| !u.is_empty())
        .unwrap_or("0");
    let (uid, gid) = user.split_once(':').unwrap_or((user, user));
    match (uid.parse(), gid.parse()) {
        (Ok(uid), Ok(gid)) => Ok(User {
            uid,
            gid,
            capabilities: 0,
        }),
        _ => Err(Error::Image(format!(
            "--as-target-user needs a numeric User in the image's config, and it is {user:?}\n  hint: debug as root (without --as-target-user)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::image::ConfigBuilder;

    fn config(env: &[&str], workdir: Option<&str>, user: Option<&str>) -> Config {
        let mut b =
            ConfigBuilder::default().env(env.iter().map(|e| e.to_string()).collect::<Vec<_>>());
        if let Some(w) = workdir {
            b = b.working_dir(w.to_string());
        }
        if let Some(u) = user {
            b = b.user(u.to_string());
        }
        b.build().unwrap()
    }

    #[test]
    fn beside_an_image_its_environment_with_busybox_first() {
        let (env, cwd) = beside_image(&config(
            &["PATH=/usr/bin:/bin", "LANG=C.UTF-8", "PWD=/elsewhere"],
            Some("/app"),
            None,
        ));
        assert_eq!(cwd, "/target/app");
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("PATH"), Some("/busybox:/usr/bin:/bin"));
        assert_eq!(get("LANG"), Some("C.UTF-8"));
        assert_eq!(get("PWD"), Some("/target/app"));
        assert_eq!(env.iter().filter(|(k, _)| k == "PWD").count(), 1);
        let (env, cwd) = beside_image(&config(&[], None, None));
        assert_eq!(cwd, "/target/");
        assert!(env.contains(&("PATH".into(), TOOLBOX_PATH.into())));
    }

    #[test]
    fn an_image_user_is_numeric() {
        let user = |u: Option<&str>| image_user(&config(&[], None, u));
        assert_eq!(
            user(Some("65532")).unwrap(),
            User {
                uid: 65532,
                gid: 65532,
                capabilities: 0
            }
        );
        assert_eq!(
            user(Some("1000:0")).unwrap(),
            User {
                uid: 1000,
                gid: 0,
                capabilities: 0
            }
        );
        assert_eq!(
            user(None).unwrap(),
            User {
                uid: 0,
                gid: 0,
                capabilities: 0
            }
        );
        let e = user(Some("nonroot")).unwrap_err().to_string();
        assert!(
            e.contains("needs a numeric User") && e.contains("\"nonroot\""),
            "{e}"
        );
    }
}
