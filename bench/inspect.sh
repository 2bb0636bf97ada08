#!/usr/bin/env bash
# Image analysis figures:
#   inspect and audit of a 1 GB image (catalog:cc plus 1 GB of files, a third random and
#   the rest compressible text, in 4,000 files), side by side with `tar -tzf` listing the
#   same layer blobs, which only decompresses and lists where inspect also hashes every
#   file and stacks the layers;
#   audit of the catalogue's static image, which must take under 50 ms;
#   scan of the 1 GB image against tracker-format data of the real data's scale (20,000
#   source packages, 8 CVEs each in four releases), which streams through it once;
#   peak memory of each.
# With BASELINE=REV, inspect and audit of the 1 GB image as a layout, as an OCI archive and
# (inspect) straight from a registry on loopback are timed with that revision's build too.
# Needs the host's apt mirror for the packages, python3 to write the files, and
# docker-registry for the registry figures.
source "$(dirname "$0")/common.sh" inspect

data="$out/data"
python3 - "$data" <<'PY'
import os, random, sys
root = sys.argv[1]
text = open("/usr/share/common-licenses/GPL-3", "rb").read()
rng = random.Random(1)
for i in range(4000):
    d = os.path.join(root, str(i % 40))
    os.makedirs(d, exist_ok=True)
    size = 250_000
    if i % 3 == 0:
        body = rng.randbytes(size)
    else:
        start = rng.randrange(len(text))
        body = (text[start:] + text * (size // len(text) + 1))[:size]
    with open(os.path.join(d, f"f{i}"), "wb") as f:
        f.write(body)
PY
$bb --cache "$cache" build catalog:static -o "oci:$out/layout:static" >/dev/null
$bb --cache "$cache" build --from catalog:cc --add "$data:/data" -o "oci:$out/layout:big" >/dev/null
# What the builds wrote is flushed before anything is timed: the kernel's writeback would
# otherwise share the machine with it.
sync

# Peak resident memory of a command, in MB.
peak() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1 | awk '{printf "%.0f", $1/1024}'; }

# The layer blobs of the image tagged TAG in the bench's layout.
layer_blobs() {
    python3 - "$out/layout" "$1" <<'PY'
import json, sys
root, tag = sys.argv[1], sys.argv[2]
index = json.load(open(f"{root}/index.json"))
top = next(m for m in index["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag)
manifest = json.load(open(f"{root}/blobs/sha256/{top['digest'][7:]}"))
print(" ".join(f"{root}/blobs/sha256/{l['digest'][7:]}" for l in manifest["layers"]))
PY
}
blobs=$(layer_blobs big)
list_layers() { for b in $blobs; do tar -tzf "$b"; done; }
# The largest layer, which decodes in order (one gzip member): the floor of any reader, with
# GNU gzip and with the decoder bareboat reads layers with (examples/gunzip.rs).
cargo build --release -q --example gunzip -p bareboat-oci
ours_gunzip="$PWD/target/release/examples/gunzip"
largest=$(ls -S $blobs | head -1)
gunzip_largest() { gzip -dc "$largest" >/dev/null; }
# The floor with bareboat's own decoder for BLOB and a command, the best of N of each,
# taking turns so that both see the same machine: "FLOOR COMMAND", in seconds.
with_floor() { # N BLOB COMMAND...
    local n=$1 blob=$2 floor=999 cmd=999 f c
    shift 2
    for _ in $(seq "$n"); do
        f=$("$ours_gunzip" "$blob" | cut -d' ' -f1)
        c=$(best 1 "$@")
        floor=$(echo "$f $floor" | awk '{print ($1 < $2) ? $1 : $2}')
        cmd=$(echo "$c $cmd" | awk '{print ($1 < $2) ? $1 : $2}')
    done
    echo "$floor $cmd"
}

compressed=$(du -cb $blobs | tail -1 | cut -f1)
unpacked=$(for b in $blobs; do gzip -dc "$b"; done | wc -c)
tar_s=$(best 3 list_layers)
floor_s=$(best 3 gunzip_largest)
read -r own_floor_s inspect_s < <(with_floor 3 "$largest" $bb --cache "$cache" inspect "oci:$out/layout:big")
audit_s=$(best 3 $bb --cache "$cache" audit "oci:$out/layout:big")
static_s=$(best 5 $bb --cache "$cache" audit "oci:$out/layout:static")
python3 - "$out/tracker.json" <<'PY'
import json, random, sys
rng = random.Random(2)
releases = ["bookworm", "trixie", "forky", "sid"]
names = [f"src{i}" for i in range(20_000)] + ["glibc", "openssl", "gcc-14", "zlib", "tzdata"]
with open(sys.argv[1], "w") as f:
    f.write("{")
    for n, name in enumerate(names):
        cves = {}
        for c in range(8):
            states = {}
            for r in releases:
                fixed = rng.choice([None, "0", f"1.{rng.randrange(9)}-1", f"2:9.{c}-1"])
                states[r] = {"status": "open" if fixed is None else "resolved",
                             "repositories": {r: "1.0-1"}, "urgency": rng.choice(["low", "medium", "high", "unimportant", "not yet assigned"])}
                if fixed:
                    states[r]["fixed_version"] = fixed
            cves[f"CVE-2026-{n * 8 + c}"] = {"description": "A flaw was found in " + name + " that allows something bad. " * 3, "scope": "local", "releases": states}
        f.write(("," if n else "") + json.dumps(name) + ":" + json.dumps(cves))
    f.write("}")
PY
tracker_mb=$(( $(stat -c %s "$out/tracker.json") / 1000000 ))
scan_s=$(best 3 $bb --cache "$cache" scan --db "$out/tracker.json" "oci:$out/layout:big")
scan_mb=$(peak $bb --cache "$cache" scan --db "$out/tracker.json" "oci:$out/layout:big")
inspect_mb=$(peak $bb --cache "$cache" inspect "oci:$out/layout:big")
audit_mb=$(peak $bb --cache "$cache" audit "oci:$out/layout:big")

echo "== inspect and audit of a $((unpacked / 1000000)) MB image ($((compressed / 1000000)) MB of gzip layers), best of 3"
awk -v t="$tar_s" -v i="$inspect_s" -v a="$audit_s" -v u="$unpacked" -v f="$floor_s" -v o="$own_floor_s" 'BEGIN {
    printf "tar -tzf of each layer: %6.0f ms (%4.0f MB/s)\n", t*1000, u/t/1e6
    printf "the largest layer alone, decoded: gzip -dc %6.0f ms, bareboat'"'"'s decoder %6.0f ms (the floor)\n", f*1000, o*1000
    printf "bareboat inspect:       %6.0f ms (%4.0f MB/s)  %.2fx tar -tzf, %.2fx the floor (target: at most 1.2x)\n", i*1000, u/i/1e6, t/i, i/o
    printf "bareboat audit:         %6.0f ms (%4.0f MB/s)  %.2fx tar -tzf\n", a*1000, u/a/1e6, t/a
}'
awk -v s="$scan_s" -v m="$tracker_mb" 'BEGIN {printf "bareboat scan with %d MB of tracker data: %6.0f ms\n", m, s*1000}'
echo "peak memory: inspect ${inspect_mb} MB, audit ${audit_mb} MB, scan ${scan_mb} MB"
awk -v s="$static_s" 'BEGIN {printf "== audit of catalog:static (best of 5): %.0f ms (must be under 50 ms)\n", s*1000}'

# catalog:java21: its JDK layer is one gzip member of 71 MB that unpacks to 211 MB.
$bb --cache "$cache" build catalog:java21 -o "oci:$out/layout:java21" >/dev/null
java_blobs=$(layer_blobs java21)
java_largest=$(ls -S $java_blobs | head -1)
sync
read -r java_floor_s java_inspect_s < <(with_floor 5 "$java_largest" $bb --cache "$cache" inspect "oci:$out/layout:java21")
java_gzip_s=$(best 5 gzip -dc "$java_largest")
java_mb=$(peak $bb --cache "$cache" inspect "oci:$out/layout:java21")
peers=""
for tool in dive syft; do
    command -v "$tool" >/dev/null || peers="$peers $tool"
done
echo "== inspect of catalog:java21 (best of 5)"
awk -v i="$java_inspect_s" -v o="$java_floor_s" -v g="$java_gzip_s" -v m="$java_mb" 'BEGIN {
    printf "its largest layer alone, decoded: bareboat'"'"'s decoder %4.0f ms, gzip -dc %4.0f ms\n", o*1000, g*1000
    printf "bareboat inspect: %4.0f ms, %.2fx the floor (target: at most 1.2x), peak %d MB\n", i*1000, i/o, m
}'
if command -v dive >/dev/null; then
    $bb copy "oci:$out/layout:java21" "docker-archive:$out/java21.tar:java21:latest" >/dev/null
    echo "dive: $(best 3 dive --ci --source docker-archive "$out/java21.tar" | awk '{printf "%.0f ms", $1*1000}')"
fi
if command -v syft >/dev/null; then
    echo "syft: $(best 3 syft "oci-dir:$out/layout" | awk '{printf "%.0f ms", $1*1000}')"
fi
[ -z "$peers" ] || echo "not installed here, so not run:$peers (neither is packaged by Debian)"
if [ -n "$base" ]; then
    echo "== the same with this build and $rev, taking turns (best of 3)"
    $bb copy "oci:$out/layout:big" "oci-archive:$out/big.tar:big" >/dev/null
    pid=$(registry 5211 "$out/registry")
    trap 'kill $pid 2>/dev/null' EXIT
    $bb copy --insecure "oci:$out/layout:big" docker://127.0.0.1:5211/bench/big:1 >/dev/null
    against "inspect oci:" 3 --cache "$cache" inspect "oci:$out/layout:big"
    against "audit oci:" 3 --cache "$cache" audit "oci:$out/layout:big"
    against "inspect oci-archive:" 3 --cache "$cache" inspect "oci-archive:$out/big.tar:big"
    against "inspect docker:// (loopback registry)" 3 --cache "$cache" inspect --insecure docker://127.0.0.1:5211/bench/big:1
    against "audit of catalog:static" 5 --cache "$cache" audit "oci:$out/layout:static"
fi
