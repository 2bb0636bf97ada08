#!/usr/bin/env bash
# Hostile-input figures, with the release build: CPU seconds and peak memory of inspect,
# audit and sbom of an image whose manifest lists one layer of 1,000,000 entries of one
# name 8 times (the bound is 10 s of CPU and 300 MB each). With BASELINE=REV, that
# revision's build runs the same commands beside it.
source "$(dirname "$0")/common.sh" hostile

python3 - "$out" <<'PY'
import gzip, hashlib, io, json, os, random, sys, tarfile
out = sys.argv[1]
layout = os.path.join(out, "crowded")
blobs = os.path.join(layout, "blobs", "sha256")
os.makedirs(blobs)
def put(data):
    digest = hashlib.sha256(data).hexdigest()
    open(os.path.join(blobs, digest), "wb").write(data)
    return {"digest": "sha256:" + digest, "size": len(data)}
raw = io.BytesIO()
rng = random.Random(1)
with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
    for _ in range(1_000_000):
        info = tarfile.TarInfo("f")
        # Each entry its own time, so that the layer compresses like a real one.
        info.mtime = rng.randrange(1 << 32)
        tar.addfile(info, io.BytesIO(b""))
diff_id = "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()
layer = put(gzip.compress(raw.getvalue(), compresslevel=6, mtime=0))
layer["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"
config = put(json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [diff_id] * 8}}).encode())
config["mediaType"] = "application/vnd.oci.image.config.v1+json"
manifest = put(json.dumps({"schemaVersion": 2,
                           "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": config, "layers": [layer] * 8}).encode())
manifest["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
manifest["annotations"] = {"org.opencontainers.image.ref.name": "t"}
json.dump({"schemaVersion": 2, "manifests": [manifest]}, open(os.path.join(layout, "index.json"), "w"))
open(os.path.join(layout, "oci-layout"), "w").write('{"imageLayoutVersion":"1.0.0"}')
PY

# `cpu BINARY ARGS...`: CPU seconds (user + system) and peak MB of one run.
cpu() {
    /usr/bin/time -f "%U %S %M" -o "$out/time" "$@" >/dev/null 2>&1 || true
    awk '{printf "%5.1f s CPU  %5.0f MB", $1 + $2, $3 / 1024}' "$out/time"
}

for command in inspect audit sbom; do
    line=$(printf '%-36s this: %s' "$command of 1,000,000 x 8" "$(cpu "$bb" --cache "$cache" "$command" "oci:$out/crowded:t")")
    if [ -n "$base" ]; then
        line="$line   $rev: $(cpu "$base" --cache "$cache" "$command" "oci:$out/crowded:t")"
    fi
    echo "$line"
done
