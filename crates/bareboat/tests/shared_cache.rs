//! The registry as a build cache that runners share: one runner publishes a signed map of
//! its package layers (`--cache-to`), and another, with an empty cache, builds on them
//! (`--cache-from`) without fetching a package, against a real docker-registry and the
//! host's mirror behind a logging proxy. Stale, forged, unsigned and oversized maps, and
//! publishers racing for one tag, are each tested.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use bareboat_oci::digest::Digest;
use bareboat_sign::formats::Envelope;
use bareboat_sign::key::KeyPair;
use bareboat_testkit::CachingProxy;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use common::{CACHE_FILL, LocalRegistry, bareboat, podman, run, tool};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse";
const MAP_TYPE: &str = "application/vnd.bareboat.cache.v1+json";
const ENVELOPE_TYPE: &str = "application/vnd.dsse.envelope.v1+json";

/// `bareboat --json COMMAND ARGS` in `dir`, with the keys' password, and the package cache
/// `cache` (the tests' shared one when `None`).
fn command(dir: &Path, cache: Option<&Path>, command: &str, args: &[&str]) -> Command {
    let mut cmd = match cache {
        Some(cache) => common::bareboat_with_cache(dir, cache, command, args),
        None => bareboat(dir, command, args),
    };
    cmd.env("BAREBOAT_KEY_PASSWORD", PASSWORD)
        .env_remove("COSIGN_PASSWORD");
    cmd
}

/// Runs a build, which must succeed; returns its report.
fn built(cmd: &mut Command) -> Value {
    let _guard = CACHE_FILL.lock().unwrap_or_else(|e| e.into_inner());
    serde_json::from_slice(&run(cmd).stdout).unwrap()
}

/// Makes the key pair `NAME.key`, `NAME.pub` in `dir`.
fn key_pair(dir: &Path, name: &str) {
    run(&mut command(
        dir,
        None,
        "key",
        &["generate", "--output-key-prefix", name],
    ));
}

/// The layer digests of the report's first image.
fn layers(report: &Value) -> Vec<String> {
    common::layer_digests(report)
}

/// How many of the report's first image's layers are package layers: all but the accounts
/// layer and the added files' layer.
fn package_layers(report: &Value) -> usize {
    let listed = report["images"][0]["layers"].as_array().unwrap();
    listed
        .iter()
        .filter(|l| {
            let by = l["created_by"].as_str().unwrap();
            !by.contains("accounts") && !by.contains("files ")
        })
        .count()
}

/// The app: a Python program that prints `greeting`.
fn write_app(dir: &Path, greeting: &str) {
    std::fs::write(
        dir.join("main.py"),
        format!("import ssl, sqlite3\nprint({greeting:?}, ssl.OPENSSL_VERSION.split()[0])\n"),
    )
    .unwrap();
}

/// The build of the app on catalog:python3 from the lockfile `ci.lock`, to `outputs`.
fn app_args<'a>(outputs: &[&'a str], more: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--from",
        "catalog:python3",
        "--add",
        "main.py:/app/main.py",
        "--entrypoint",
        "/usr/bin/python3",
        "--cmd",
        "/app/main.py",
        "--lockfile",
        "ci.lock",
        "--insecure",
    ];
    for o in outputs {
        args.extend(["-o", o]);
    }
    args.extend(more);
    args
}

/// An apt configuration that sends the mirror's requests through `proxy`.
fn through(dir: &Path, proxy: &CachingProxy) -> String {
    let conf = dir.join("apt-proxy.conf");
    std::fs::write(
        &conf,
        format!("Acquire::http::Proxy \"{}\";\n", proxy.url()),
    )
    .unwrap();
    conf.display().to_string()
}

/// Pushes an artifact of type [`MAP_TYPE`] to `repository:tag` of the registry on `port`
/// with the registry's API, through curl: its first layer is `map` (an envelope), the rest
/// `listed` (blobs the repository holds).
fn push_map(port: u16, repository: &str, tag: &str, map: &[u8], listed: &[Value]) {
    let base = format!("http://127.0.0.1:{port}/v2/{repository}");
    let put_blob = |bytes: &[u8]| -> Value {
        let digest = Digest::of(bytes).to_string();
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), bytes).unwrap();
        let started = run(Command::new(tool("curl")).args([
            "-sf",
            "-X",
            "POST",
            "-D",
            "-",
            "-o",
            "/dev/null",
            &format!("{base}/blobs/uploads/"),
        ]));
        let head = String::from_utf8_lossy(&started.stdout).into_owned();
        let location = head
            .lines()
            .find_map(|l| {
                l.strip_prefix("Location: ")
                    .or(l.strip_prefix("location: "))
            })
            .unwrap()
            .trim()
            .to_string();
        let location = match location.starts_with("http") {
            true => location,
            false => format!("http://127.0.0.1:{port}{location}"),
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        run(Command::new(tool("curl")).args([
            "-sf",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &format!("@{}", file.path().display()),
            &format!("{location}{sep}digest={digest}"),
        ]));
        json!({"digest": digest, "size": bytes.len()})
    };
    let config = put_blob(b"{}");
    let first = put_blob(map);
    let mut layers = vec![json!({
        "mediaType": ENVELOPE_TYPE,
        "digest": first["digest"],
        "size": first["size"],
    })];
    layers.extend(listed.iter().cloned());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": MAP_TYPE,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config["digest"], "size": 2},
        "layers": layers,
    });
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_vec(&manifest).unwrap()).unwrap();
    run(Command::new(tool("curl")).args([
        "-sf",
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/vnd.oci.image.manifest.v1+json",
        "--data-binary",
        &format!("@{}", file.path().display()),
        &format!("{base}/manifests/{tag}"),
    ]));
}

/// The manifest and the envelope of the map under `repository:tag`.
fn read_map(port: u16, repository: &str, tag: &str) -> (Value, Envelope) {
    let base = format!("http://127.0.0.1:{port}/v2/{repository}");
    let manifest = run(Command::new(tool("curl")).args([
        "-sf",
        "-H",
        "Accept: application/vnd.oci.image.manifest.v1+json",
        &format!("{base}/manifests/{tag}"),
    ]));
    let manifest: Value = serde_json::from_slice(&manifest.stdout).unwrap();
    let digest = manifest["layers"][0]["digest"].as_str().unwrap();
    let blob = run(Command::new(tool("curl")).args(["-sfL", &format!("{base}/blobs/{digest}")]));
    (manifest, serde_json::from_slice(&blob.stdout).unwrap())
}

/// The private key `NAME.key` of `dir`.
fn private_key(dir: &Path, name: &str) -> KeyPair {
    let pem = std::fs::read_to_string(dir.join(format!("{name}.key"))).unwrap();
    KeyPair::from_encrypted_pem(&pem, PASSWORD.as_bytes(), name).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs `cmd`, which must fail with exit status 1 and an error containing `expected`.
fn fails_with(cmd: &mut Command, expected: &str) {
    let _guard = CACHE_FILL.lock().unwrap_or_else(|e| e.into_inner());
    common::fails_with(cmd, expected);
}

#[test]
fn a_cold_runner_builds_on_the_layers_another_published_and_fetches_no_package() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let registry = LocalRegistry::start(d);
    key_pair(d, "cache");
    key_pair(d, "other");
    let cache_map = registry.reference("cache:main");

    // Runner A builds the app from its committed lockfile, pushes it, and publishes its
    // layers.
    write_app(d, "hello from A");
    let app_a = registry.reference("app:a");
    let a = built(&mut command(
        d,
        None,
        "build",
        &app_args(
            &[&app_a],
            &["--cache-to", &cache_map, "--cache-sign-key", "cache.key"],
        ),
    ));
    let published = &a["shared"]["published"];
    let packages = package_layers(&a);
    assert!(packages >= 3, "{a}");
    assert_eq!(published["recorded"], packages, "{a}");
    assert_eq!(published["entries"], packages, "{a}");
    // The map lists every blob it names, so the cache repository holds them.
    let (manifest, envelope) = read_map(registry.port, "cache", "main");
    assert_eq!(manifest["artifactType"], MAP_TYPE);
    let listed: Vec<&str> = (manifest["layers"].as_array().unwrap().iter().skip(1))
        .map(|l| l["digest"].as_str().unwrap())
        .collect();
    for layer in &layers(&a)[..packages] {
        assert!(listed.contains(&layer.as_str()), "{layer} is not listed");
    }
    assert_eq!(envelope.payload_type, MAP_TYPE);

    // Runner B starts with nothing, and its mirror requests go through a logging proxy.
    // One program file changed.
    write_app(d, "hello from B");
    let proxy = CachingProxy::start();
    let conf = through(d, &proxy);
    let cold = tempfile::tempdir().unwrap();
    let app_b = registry.reference("app:b");
    let b = built(
        command(
            d,
            Some(cold.path()),
            "build",
            &app_args(
                &[&app_b, "oci:b-layout:app"],
                &[
                    "--cache-from",
                    &cache_map,
                    "--cache-verify-key",
                    "cache.pub",
                ],
            ),
        )
        .env("APT_CONFIG", &conf),
    );
    assert_eq!(
        proxy.count("", ".deb"),
        0,
        "B fetched packages: {:?}",
        proxy.log()
    );
    assert_eq!(b["images"][0]["shared_layers"], packages, "{b}");
    // The same cold runner without the shared cache fetches every package, through the
    // proxy: the count above is of the path the packages take.
    let without = tempfile::tempdir().unwrap();
    let unshared = built(
        command(
            d,
            Some(without.path()),
            "build",
            &app_args(&["oci:unshared:app"], &[]),
        )
        .env("APT_CONFIG", &conf),
    );
    let fetched = proxy.count("MISS", ".deb");
    assert!(fetched >= 20, "{fetched} packages: {:?}", proxy.log());
    assert_eq!(layers(&unshared), layers(&b));
    // The same lower layers; a new app layer, and only it and the config uploaded.
    let (la, lb) = (layers(&a), layers(&b));
    assert_eq!(la.len(), lb.len());
    assert_eq!(la[..la.len() - 1], lb[..lb.len() - 1]);
    assert_ne!(la.last(), lb.last());
    let push = &b["pushes"][0];
    assert_eq!(push["uploaded_blobs"], 2, "{b}");
    assert!(
        b["shared"]["notes"].to_string().contains("pulled"),
        "the layout output pulled the shared layers: {b}"
    );
    // The layout holds every blob, each checked again by oci-image-tool and umoci.
    common::unpack(d, "b-layout", "app");
    // B's image runs.
    let name = app_b.trim_start_matches("docker://");
    run(podman(d).args(["pull", "--tls-verify=false", name]));
    let out = run(podman(d).args(["run", "--rm", "--network=none", name]));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from B OpenSSL\n"
    );

    // A stale entry: the top package layer's blob is deleted from the cache repository.
    // A new cold runner builds that layer (fetching its packages), and the image is the
    // same as B's. It pushes to a repository of its own, and nothing else: the shared layers
    // are mounted from the cache repository, never read.
    let top = &la[packages - 1];
    let link = d.join(format!(
        "registry-data/docker/registry/v2/repositories/cache/_layers/sha256/{}",
        top.trim_start_matches("sha256:")
    ));
    std::fs::remove_dir_all(&link).unwrap();
    let stale = tempfile::tempdir().unwrap();
    let c = built(&mut command(
        d,
        Some(stale.path()),
        "build",
        &app_args(
            &[&registry.reference("elsewhere/app:c")],
            &[
                "--cache-from",
                &cache_map,
                "--cache-verify-key",
                "cache.pub",
            ],
        ),
    ));
    assert_eq!(c["images"][0]["shared_layers"], packages - 1, "{c}");
    assert!(c["shared"]["notes"].to_string().contains("gone"), "{c}");
    assert_eq!(layers(&c), lb);
    assert_eq!(c["pushes"][0]["mounted_blobs"], packages - 1, "{c}");

    // A map signed by another key, an entry changed under a valid signature, a map with no
    // signature, and maps over the caps: each is refused. Nothing of it is used: the build
    // goes on without it, with a warning, so that junk pushed to a cache tag cannot stop
    // the builds that publish there.
    run(&mut command(
        d,
        None,
        "build",
        &app_args(
            &[&registry.reference("app:other")],
            &[
                "--cache-to",
                &registry.reference("cache:other"),
                "--cache-sign-key",
                "other.key",
            ],
        ),
    ));
    let refused = |tag: &str, reason: &str| {
        let reference = registry.reference(&format!("cache:{tag}"));
        let mut cmd = command(
            d,
            None,
            "build",
            &app_args(
                &[&format!("oci:refused:{tag}")],
                &[
                    "--cache-from",
                    &reference,
                    "--cache-verify-key",
                    "cache.pub",
                ],
            ),
        );
        let _guard = CACHE_FILL.lock().unwrap_or_else(|e| e.into_inner());
        let out = run(&mut cmd);
        assert!(stderr(&out).contains(reason), "{tag}: {}", stderr(&out));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["images"][0]["shared_layers"], 0, "{tag}: {report}");
        let notes = report["shared"]["notes"].to_string();
        assert!(
            notes.contains("refused, and built without") && notes.contains(reason),
            "{tag}: {notes}"
        );
        assert_eq!(layers(&report), lb, "{tag}: the same image, built");
    };
    refused("other", "not valid for the key --cache-verify-key names");
    // A forged entry points the first layer at another blob the repository holds, whose
    // digest checks out: only the signature tells.
    let mut map: Value =
        serde_json::from_slice(&BASE64.decode(&envelope.payload).unwrap()).unwrap();
    let entries = map["entries"].as_object_mut().unwrap();
    let (first, second) = {
        let mut by_digest: Vec<(String, Value)> = entries
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        by_digest.sort_by_key(|(_, v)| v["digest"].as_str().unwrap().to_string());
        (by_digest[0].clone(), by_digest[1].clone())
    };
    for field in ["digest", "size", "diff_id", "uncompressed_size"] {
        entries.get_mut(&first.0).unwrap()[field] = second.1[field].clone();
    }
    let forged = Envelope {
        payload: BASE64.encode(serde_json::to_vec(&map).unwrap()),
        ..envelope.clone()
    };
    let listed_layers: Vec<Value> = manifest["layers"].as_array().unwrap()[1..].to_vec();
    // A map's envelope under a tag of the cache repository, with the blobs it lists.
    let push_envelope = |tag: &str, envelope: &Envelope, listed: &[Value]| {
        let bytes = serde_json::to_vec(envelope).unwrap();
        push_map(registry.port, "cache", tag, &bytes, listed)
    };
    push_envelope("forged", &forged, &listed_layers);
    refused("forged", "not valid for the key --cache-verify-key names");
    let unsigned = Envelope {
        signatures: Vec::new(),
        ..envelope.clone()
    };
    push_envelope("unsigned", &unsigned, &listed_layers);
    refused("unsigned", "its map is not signed");
    // The map is a blob with a cap of its own, and a count of entries.
    let key = private_key(d, "cache");
    let sign = |map: &Value| Envelope::sign(&key, MAP_TYPE, &serde_json::to_vec(map).unwrap());
    let mut many = serde_json::Map::new();
    let one = map["entries"][&second.0].clone();
    let mut small = one.clone();
    small["nodes"] = json!({});
    small["contents"] = json!({});
    small["versions"] = json!({});
    for i in 0..100_000 {
        many.insert(format!("{i:064x}"), small.clone());
    }
    let crowded = json!({"version": 1, "entries": many});
    push_envelope("crowded", &sign(&crowded), &[]);
    refused(
        "crowded",
        "it has 100000 entries; a map may have at most 10000",
    );
    // A signed map with an entry no build could stand on (a path out of the root): that
    // entry is dropped with a note, and its layer is built, with those above it.
    let mut corrupt: Value =
        serde_json::from_slice(&BASE64.decode(&envelope.payload).unwrap()).unwrap();
    let below_top = &la[packages - 2];
    for entry in corrupt["entries"].as_object_mut().unwrap().values_mut() {
        if entry["digest"] == below_top.as_str() {
            let any = entry["nodes"]
                .as_object()
                .unwrap()
                .values()
                .next()
                .unwrap()
                .clone();
            entry["nodes"]["../escape"] = any;
        }
    }
    push_envelope("corrupt", &sign(&corrupt), &listed_layers);
    let fresh = tempfile::tempdir().unwrap();
    let reference = registry.reference("cache:corrupt");
    let e = built(&mut command(
        d,
        Some(fresh.path()),
        "build",
        &app_args(
            &["oci:corrupt:app"],
            &[
                "--cache-from",
                &reference,
                "--cache-verify-key",
                "cache.pub",
            ],
        ),
    ));
    assert_eq!(e["images"][0]["shared_layers"], packages - 2, "{e}");
    assert!(
        e["shared"]["notes"].to_string().contains("is not used"),
        "{e}"
    );
    assert_eq!(layers(&e), lb);
    let huge = vec![b' '; (64 << 20) + 1];
    push_map(registry.port, "cache", "huge", &huge, &[]);
    refused("huge", "a map may have at most 67108864");

    // Without the key, --cache-from is refused before anything is read.
    let mut unkeyed = command(
        d,
        Some(cold.path()),
        "build",
        &app_args(&["oci:refused:app"], &["--cache-from", &cache_map]),
    );
    let out = unkeyed.output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--cache-verify-key"),
        "{}",
        stderr(&out)
    );
}

/// Two runners publish to one tag at once: the last writer wins, and the map there is whole
/// and signed. Runners that publish under tags of their own lose nothing: a reader names
/// both.
#[test]
fn publishers_racing_for_one_tag_leave_one_whole_map_and_per_runner_tags_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let registry = LocalRegistry::start(d);
    key_pair(d, "cache");
    let images = ["catalog:static", "catalog:base-nossl"];
    // Each publisher is a runner of its own, with a cache of its own.
    let caches: Vec<tempfile::TempDir> = (0..5).map(|_| tempfile::tempdir().unwrap()).collect();
    let publish = |image: &str, tag: &str, cache: &Path| {
        let mut cmd = command(
            d,
            Some(cache),
            "build",
            &[
                image,
                "-o",
                &format!("oci:{tag}-{}:i", image.replace(':', "-")),
                "--insecure",
                "--cache-to",
                &registry.reference(&format!("cache:{tag}")),
                "--cache-sign-key",
                "cache.key",
            ],
        );
        cmd.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        cmd.spawn().unwrap()
    };
    let racing: Vec<_> = (images.iter().zip(&caches))
        .map(|(i, c)| publish(i, "race", c.path()))
        .collect();
    for child in racing {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    for ((image, tag), cache) in images.iter().zip(["x", "y"]).zip(&caches[2..]) {
        let out = publish(image, tag, cache.path())
            .wait_with_output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    // Another runner publishes catalog:static to y's tag: it keeps base-nossl's entries,
    // whose blobs it never had, since the repository holds them.
    let out = publish("catalog:static", "y", caches[4].path())
        .wait_with_output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let published = &report["shared"]["published"];
    let (entries, recorded) = (
        published["entries"].as_u64(),
        published["recorded"].as_u64(),
    );
    assert!(entries > recorded, "merged: {published}");
    assert_eq!(published["dropped"], 0, "{published}");
    // A cold reader of each image: from the raced tag, at least the last writer's image
    // shares every package layer; from both runners' tags, both do.
    let read = |image: &str, from: &[&str]| -> (usize, usize) {
        let cold = tempfile::tempdir().unwrap();
        let mut args = vec![image, "-o", "oci:read:i", "--insecure"];
        let refs: Vec<String> = from.iter().map(|t| registry.reference(t)).collect();
        for r in &refs {
            args.extend(["--cache-from", r.as_str()]);
        }
        args.extend(["--cache-verify-key", "cache.pub"]);
        let report = built(&mut command(d, Some(cold.path()), "build", &args));
        let shared = report["images"][0]["shared_layers"].as_u64().unwrap() as usize;
        (shared, package_layers(&report))
    };
    let whole = |(shared, packages): (usize, usize)| shared == packages;
    let raced: Vec<(usize, usize)> = images.iter().map(|i| read(i, &["cache:race"])).collect();
    assert!(raced.iter().any(|r| whole(*r)), "{raced:?}");
    for image in images {
        let both = read(image, &["cache:x", "cache:y"]);
        assert!(whole(both), "{image}: {both:?}");
    }
}

/// What later steps read from layers a cold runner never unpacks comes from the map: the
/// ABI guard reads the symbol versions its libraries define, and the SBOM the packages'
/// licences. The image is the one a full build makes, byte for byte.
#[test]
fn the_abi_guard_and_the_sbom_read_what_the_map_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let registry = LocalRegistry::start(d);
    key_pair(d, "cache");
    common::trixie_programs(d);
    common::hello(d, "#include <stdio.h>\nint main(void){puts(\"hi\");}\n");
    let map = registry.reference("cache:cc");
    let on_cc = |program: &str, output: &str, more: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = [
            "--from",
            "catalog:cc",
            "--release",
            "bookworm",
            "--add",
            &format!("{program}:/app/{program}"),
            "--entrypoint",
            &format!("/app/{program}"),
            "--sbom",
            "spdx",
            "--sbom-files",
            "--insecure",
            "-o",
            output,
        ]
        .map(String::from)
        .to_vec();
        args.extend(more.iter().map(|s| s.to_string()));
        args
    };
    let args = on_cc(
        "hello",
        "oci:full:app",
        &["--cache-to", &map, "--cache-sign-key", "cache.key"],
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let full = built(&mut command(d, None, "build", &args));

    let from = [
        "--cache-from",
        map.as_str(),
        "--cache-verify-key",
        "cache.pub",
    ];
    let cold = tempfile::tempdir().unwrap();
    let args = on_cc("hello", "oci:shared:app", &from);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let shared = built(&mut command(d, Some(cold.path()), "build", &args));
    assert_eq!(
        shared["images"][0]["shared_layers"],
        package_layers(&full),
        "{shared}"
    );
    assert_eq!(shared["digest"], full["digest"], "the same image");
    let licences = |file: &str| -> Vec<(String, String)> {
        let doc: Value = serde_json::from_slice(&std::fs::read(d.join(file)).unwrap()).unwrap();
        let mut found: Vec<(String, String)> = (doc["packages"].as_array().unwrap().iter())
            .map(|p| {
                (
                    p["name"].as_str().unwrap().to_string(),
                    p["licenseDeclared"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect();
        found.sort();
        found
    };
    let (a, b) = (licences("full.spdx.json"), licences("shared.spdx.json"));
    assert!(a.iter().any(|(_, l)| l.contains("GPL")), "{a:?}");
    assert_eq!(a, b);

    // trixie's jq needs GLIBC_2.38: refused on the shared layers as on unpacked ones.
    let args = on_cc("jq", "oci:jq-image:app", &from);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    fails_with(
        &mut command(d, Some(cold.path()), "build", &args),
        "/app/jq needs GLIBC_2.38 from /usr/lib/x86_64-linux-gnu/libc.so.6, which defines at most GLIBC_2.36",
    );
    assert!(!d.join("jq-image").exists(), "nothing is written");
}
