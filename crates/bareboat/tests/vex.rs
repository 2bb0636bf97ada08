//! `bareboat vex` and `scan --vex` on catalog:cc, against tracker-format data the test
//! writes from the image's packages and a rules file of its own; judged by openvex/spec's
//! JSON schema, packageurl-python, and a reader of the OpenVEX matching rules written in
//! Python (`tests/vex/check.py`).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::{bareboat, build, run};
use serde_json::{Value, json};

/// `tests/vex/check.py ARGS`, and what it printed.
fn check(args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vex/check.py");
    let out = run(Command::new(common::validators_python())
        .arg(script)
        .args(args));
    String::from_utf8(out.stdout).unwrap()
}

fn open(urgency: &str) -> Value {
    json!({"releases": {"trixie": {"status": "open", "urgency": urgency}}})
}

/// Package -> (source, source version, version), as inspect reads them.
fn packages(dir: &Path, image: &str) -> (String, BTreeMap<String, (String, String, String)>) {
    let report: Value =
        serde_json::from_slice(&run(&mut bareboat(dir, "inspect", &[image])).stdout).unwrap();
    let packages = (report["packages"].as_array().unwrap().iter())
        .map(|p| {
            let s = |k: &str| p[k].as_str().map(String::from);
            let name = s("name").unwrap();
            let version = s("version").unwrap();
            let source = s("source").unwrap_or_else(|| name.clone());
            let source_version = s("source_version").unwrap_or_else(|| version.clone());
            (name, (source, source_version, version))
        })
        .collect();
    (report["image"].as_str().unwrap().to_string(), packages)
}

#[test]
fn vex_states_what_the_image_proves_and_scan_puts_aside_exactly_that() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    build(d, &["catalog:cc", "-o", "oci:out:cc"]);
    let (digest, packages) = packages(d, "oci:out:cc");
    let glibc = &packages["libc6"];
    let later = format!("{}+x1", glibc.1);
    // openssl's source has two binaries: libssl3t64 is in the image, openssl (which
    // ca-certificates depends on) is not. debconf's (which tzdata depends on) has none here.
    let data = json!({
        "openssl": {
            "CVE-2026-1001": open("high"),
            "CVE-2026-1002": open("medium"),
            "CVE-2026-1003": open("low"),
        },
        "glibc": {
            "CVE-2026-2001": {"releases": {"trixie": {"status": "resolved", "fixed_version": later, "urgency": "high"}}},
            "CVE-2026-2002": {"releases": {"trixie": {"status": "resolved", "fixed_version": glibc.1, "urgency": "high"}}},
            "CVE-2026-2003": {"releases": {"trixie": {"status": "undetermined", "urgency": "not yet assigned"}}},
            "CVE-2026-2004": open("medium"),
        },
        "debconf": {"CVE-2026-3001": open("high")},
    });
    std::fs::write(d.join("tracker.json"), data.to_string()).unwrap();
    // Rules: the CLI's code (not in the image), and the library's (in it).
    std::fs::write(
        d.join("rules.toml"),
        "[[rule]]\ncve = \"CVE-2026-1001\"\nsource = \"openssl\"\npaths = [\"/usr/bin/openssl\", \"/usr/lib/ssl/misc/CA.pl\"]\nreason = \"the flaw is in the openssl command's argument parser\"\n\n\
[[rule]]\ncve = \"CVE-2026-1002\"\nsource = \"openssl\"\npaths = [\"/usr/lib/x86_64-linux-gnu/libssl.so.3\"]\n",
    )
    .unwrap();
    let vex = |out: &str| {
        let mut cmd = bareboat(
            d,
            "vex",
            &[
                "oci:out:cc",
                "--db",
                "tracker.json",
                "--rules",
                "rules.toml",
                "--repository",
                "registry.example/team/cc",
                "-o",
                out,
            ],
        );
        run(cmd.env("SOURCE_DATE_EPOCH", "1800000000"));
        serde_json::from_slice::<Value>(&std::fs::read(d.join(out)).unwrap()).unwrap()
    };
    let doc = vex("cc.vex.json");
    // The same again, byte for byte.
    vex("again.vex.json");
    assert_eq!(
        std::fs::read(d.join("cc.vex.json")).unwrap(),
        std::fs::read(d.join("again.vex.json")).unwrap()
    );
    check(&["schema", d.join("cc.vex.json").to_str().unwrap()]);
    assert_eq!(doc["@context"], "https://openvex.dev/ns/v0.2.0");
    assert_eq!(doc["timestamp"], "2027-01-15T08:00:00Z");
    assert_eq!(doc["author"], "bareboat");
    assert_eq!(doc["version"], 1);

    let product = format!(
        "pkg:oci/cc@{}?repository_url=registry.example/team/cc",
        digest.replace(':', "%3A")
    );
    let statements = doc["statements"].as_array().unwrap();
    for s in statements {
        assert_eq!(s["products"][0]["@id"], product.as_str(), "{s}");
        let purl = s["products"][0]["subcomponents"][0]["@id"]
            .as_str()
            .unwrap();
        assert!(
            purl.ends_with("?arch=amd64"),
            "only the arch qualifier: {purl}"
        );
    }
    let about = |cve: &str, package: &str| -> Vec<&Value> {
        (statements.iter())
            .filter(|s| s["vulnerability"]["name"] == cve)
            .filter(|s| {
                let purl = s["products"][0]["subcomponents"][0]["@id"]
                    .as_str()
                    .unwrap();
                purl.starts_with(&format!("pkg:deb/debian/{package}@"))
                    || purl.starts_with(&format!("pkg:deb/debian/{package}?"))
            })
            .collect()
    };
    // The rule's paths are not in the image: not_affected, saying which were checked.
    let cli = about("CVE-2026-1001", "libssl3t64");
    assert_eq!(cli.len(), 1);
    assert_eq!(cli[0]["status"], "not_affected");
    assert_eq!(cli[0]["justification"], "vulnerable_code_not_present");
    let notes = cli[0]["status_notes"].as_str().unwrap();
    assert!(
        notes.contains("/usr/bin/openssl") && notes.contains("/usr/lib/ssl/misc/CA.pl"),
        "{notes}"
    );
    // The rule's path is in the image, and a CVE without a rule: affected, with an action.
    for cve in ["CVE-2026-1002", "CVE-2026-1003"] {
        let s = about(cve, "libssl3t64");
        assert_eq!(s[0]["status"], "affected", "{cve}");
        assert!(
            s[0]["action_statement"]
                .as_str()
                .is_some_and(|a| !a.is_empty())
        );
    }
    // A CVE with no rule in a sliced package (libc-bin keeps only its locale) gets no
    // not_affected; the tracker's states come through.
    let status =
        |cve: &str, package: &str| about(cve, package).first().map(|s| s["status"].clone());
    for package in ["libc6", "libc-bin"] {
        assert_eq!(
            status("CVE-2026-2001", package),
            Some(json!("affected")),
            "{package}"
        );
        assert_eq!(
            status("CVE-2026-2002", package),
            Some(json!("fixed")),
            "{package}"
        );
        assert_eq!(
            status("CVE-2026-2003", package),
            Some(json!("under_investigation")),
            "{package}"
        );
        assert_eq!(
            status("CVE-2026-2004", package),
            Some(json!("affected")),
            "{package}"
        );
    }
    let fixed = &about("CVE-2026-2002", "libc6")[0];
    assert!(fixed["status_notes"].as_str().unwrap().contains(&glibc.1));
    // openssl's other binary is absent, but one of its binaries is here: no
    // component_not_present for openssl. debconf's source has none here.
    assert!(about("CVE-2026-1003", "openssl").is_empty());
    let debconf = about("CVE-2026-3001", "debconf");
    assert_eq!(debconf.len(), 1);
    assert_eq!(debconf[0]["justification"], "component_not_present");
    let not_affected: Vec<(&str, &str)> = (statements.iter())
        .filter(|s| s["status"] == "not_affected")
        .map(|s| {
            (
                s["vulnerability"]["name"].as_str().unwrap(),
                s["justification"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        not_affected,
        [
            ("CVE-2026-1001", "vulnerable_code_not_present"),
            ("CVE-2026-3001", "component_not_present")
        ]
    );

    // A scan with the document differs from one without exactly by what the statements put
    // aside, as the independent reader of the matching rules finds it.
    let scan = |args: &[&str]| {
        let mut all = vec!["oci:out:cc", "--db", "tracker.json"];
        all.extend(args);
        serde_json::from_slice::<Value>(&run(&mut bareboat(d, "scan", &all)).stdout).unwrap()
    };
    let plain = scan(&[]);
    std::fs::write(d.join("plain.json"), plain.to_string()).unwrap();
    let with = scan(&["--vex", "cc.vex.json"]);
    let inspected = run(&mut bareboat(d, "inspect", &["oci:out:cc"]));
    std::fs::write(d.join("inspect.json"), &inspected.stdout).unwrap();
    let expected: Vec<Vec<String>> = serde_json::from_str(&check(&[
        "apply",
        d.join("cc.vex.json").to_str().unwrap(),
        d.join("plain.json").to_str().unwrap(),
        &digest,
        d.join("inspect.json").to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(expected, [["CVE-2026-1001", "libssl3t64", "not_affected"]]);
    let put_aside: Vec<Vec<String>> = (with["suppressed"].as_array().unwrap().iter())
        .map(|s| {
            ["cve", "package", "status"]
                .iter()
                .map(|k| s[k].as_str().unwrap().to_string())
                .collect()
        })
        .collect();
    assert_eq!(put_aside, expected);
    let key = |v: &Value| {
        (
            v["cve"].as_str().unwrap().to_string(),
            v["package"].as_str().unwrap().to_string(),
        )
    };
    let before: Vec<_> = plain["scan"]["vulnerabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(key)
        .collect();
    let after: Vec<_> = with["scan"]["vulnerabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(key)
        .collect();
    let gone: Vec<_> = before
        .iter()
        .filter(|k| !after.contains(k))
        .cloned()
        .collect();
    assert_eq!(
        gone,
        [("CVE-2026-1001".to_string(), "libssl3t64".to_string())]
    );
    assert_eq!(before.len(), after.len() + 1);
    // Another image's document puts nothing aside.
    let other = std::fs::read_to_string(d.join("cc.vex.json"))
        .unwrap()
        .replace(&digest.replace(':', "%3A"), "sha256%3A0000");
    std::fs::write(d.join("other.vex.json"), other).unwrap();
    assert_eq!(scan(&["--vex", "other.vex.json"])["suppressed"], json!([]));

    // Published where scanners look: a signed attestation of predicate type
    // https://openvex.dev/ns, as a Sigstore-bundle referrer and cosign's `.att` tag.
    let password = |command: &str, args: &[&str]| {
        let mut cmd = bareboat(d, command, args);
        cmd.env("BAREBOAT_KEY_PASSWORD", "vex-test")
            .env_remove("COSIGN_PASSWORD");
        run(&mut cmd)
    };
    password("key", &["generate"]);
    password(
        "attest",
        &[
            "--key",
            "cosign.key",
            "--type",
            "openvex",
            "--predicate",
            "cc.vex.json",
            "oci:out:cc",
        ],
    );
    let verified = run(&mut bareboat(
        d,
        "verify",
        &[
            "--key",
            "cosign.pub",
            "--attestation",
            "openvex",
            "oci:out:cc",
        ],
    ));
    let verified = String::from_utf8_lossy(&verified.stdout);
    assert!(verified.contains("https://openvex.dev/ns"), "{verified}");
    let index = std::fs::read_to_string(d.join("out/index.json")).unwrap();
    let tag = format!("sha256-{}.att", digest.trim_start_matches("sha256:"));
    assert!(index.contains(&tag), "{index}");

    // A build attests it too: the predicate of its `.att` attestation is the document
    // `bareboat vex` writes of the built image.
    let mut built = bareboat(
        d,
        "build",
        &[
            "catalog:cc",
            "--key",
            "cosign.key",
            "--vex",
            "--vex-db",
            "tracker.json",
            "--vex-rules",
            "rules.toml",
            "-o",
            "oci:built:cc",
        ],
    );
    built
        .env("BAREBOAT_KEY_PASSWORD", "vex-test")
        .env("SOURCE_DATE_EPOCH", "1800000000");
    let report: Value = serde_json::from_slice(&run(&mut built).stdout).unwrap();
    assert_eq!(
        report["attestations"], 2,
        "a bundle and a legacy attestation: {report}"
    );
    let built_digest = report["digest"].as_str().unwrap();
    let mut stated = bareboat(
        d,
        "vex",
        &[
            "oci:built:cc",
            "--db",
            "tracker.json",
            "--rules",
            "rules.toml",
            "-o",
            "built.vex.json",
        ],
    );
    run(stated.env("SOURCE_DATE_EPOCH", "1800000000"));
    let expected: Value =
        serde_json::from_slice(&std::fs::read(d.join("built.vex.json")).unwrap()).unwrap();
    assert_eq!(attested_predicate(&d.join("built"), built_digest), expected);

    // trivy reads the document where one with --vex is installed.
    let trivy = Command::new("trivy").arg("image").arg("--help").output();
    match trivy {
        Ok(out) if String::from_utf8_lossy(&out.stdout).contains("--vex") => {
            let out = Command::new("trivy")
                .args(["image", "--input"])
                .arg(d.join("out"))
                .args(["--vex"])
                .arg(d.join("cc.vex.json"))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        _ => eprintln!(
            "trivy with --vex is not installed here: the document is judged by the schema and the Python reader of OpenVEX's matching rules instead"
        ),
    }

    // A document with nothing to state is refused: OpenVEX wants a statement.
    std::fs::write(d.join("empty.json"), "{\"bash\": {}}").unwrap();
    common::fails_with(
        &mut bareboat(
            d,
            "vex",
            &["oci:out:cc", "--db", "empty.json", "-o", "none.json"],
        ),
        "nothing to state",
    );
    assert!(!d.join("none.json").exists());
}

/// The predicate of the legacy (`.att`) attestation of the image `digest` in `layout`: its
/// DSSE envelope's in-toto Statement, read without bareboat.
fn attested_predicate(layout: &Path, digest: &str) -> Value {
    use base64::Engine as _;
    let blob = |digest: &str| {
        let path = layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"));
        std::fs::read(path).unwrap()
    };
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let tag = format!("sha256-{}.att", digest.trim_start_matches("sha256:"));
    let entry = (index["manifests"].as_array().unwrap().iter())
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag.as_str())
        .unwrap_or_else(|| panic!("no {tag} in {index}"));
    let manifest: Value = serde_json::from_slice(&blob(entry["digest"].as_str().unwrap())).unwrap();
    let layer = &manifest["layers"][0];
    assert_eq!(
        layer["annotations"]["predicateType"],
        "https://openvex.dev/ns"
    );
    let envelope: Value = serde_json::from_slice(&blob(layer["digest"].as_str().unwrap())).unwrap();
    let payload = base64::engine::general_purpose::STANDARD
        .decode(envelope["payload"].as_str().unwrap())
        .unwrap();
    let statement: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(statement["predicateType"], "https://openvex.dev/ns");
    statement["predicate"].clone()
}
