#!/usr/bin/env bash
# Language runtime image sizes, side by side with the peer:
#   bareboat build of catalog:python3, java21, java25, nodejs, ruby and php (trixie, amd64),
#   against mmdebstrap --variant=minbase with the same runtime package installed.
# Prints each image's gzipped size and unpacked file bytes. Then the application rebuild
# figures, with a lockfile as CI would use: a rebuild after only the added program changed,
# and a rebuild with nothing changed, which does all of that work except compressing the
# program's layer: it is what a program change costs beyond that compression.
# Needs root (mmdebstrap) and the host's apt mirror.
source "$(dirname "$0")/common.sh" runtimes

sizes() { # LAYOUT TAG -> "GZ_MB FILES_MB" of the image's layers
    python3 - "$1" "$2" <<'PY'
import gzip, json, os, sys, tarfile
layout, tag = sys.argv[1], sys.argv[2]
blob = lambda d: os.path.join(layout, "blobs/sha256", d.split(":")[1])
idx = json.load(open(os.path.join(layout, "index.json")))
m = next(m for m in idx["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag)
man = json.load(open(blob(m["digest"])))
gz = sum(l["size"] for l in man["layers"])
files = 0
for l in man["layers"]:
    with tarfile.open(fileobj=gzip.open(blob(l["digest"]))) as t:
        files += sum(x.size for x in t if x.isreg())
print(f"{gz/1e6:.1f} {files/1e6:.1f}")
PY
}

printf '%-8s %-26s %14s %14s %14s %14s\n' image package "bareboat gz" "unpacked" "minbase gz" "unpacked"
for image in python3:python3 java21:openjdk-21-jre-headless java25:openjdk-25-jre-headless \
             nodejs:nodejs ruby:ruby php:php8.4-cli; do
    name=${image%%:*} pkg=${image#*:}
    $bb --cache "$cache" build "catalog:$name" -o "oci:$out/bb:$name" >/dev/null
    read -r our_gz our_files < <(sizes "$out/bb" "$name")
    mmdebstrap --quiet --variant=minbase --include="$pkg" trixie "$out/$name.tar" >/dev/null 2>&1
    peer_files=$(python3 -c 'import sys, tarfile; print(f"{sum(m.size for m in tarfile.open(sys.argv[1]) if m.isreg())/1e6:.1f}")' "$out/$name.tar")
    peer_gz=$(gzip -6 -c "$out/$name.tar" | wc -c | awk '{printf "%.1f", $1/1e6}')
    rm -f "$out/$name.tar"
    printf '%-8s %-26s %11s MB %11s MB %11s MB %11s MB\n' "$name" "$pkg" "$our_gz" "$our_files" "$peer_gz" "$peer_files"
done

echo "== application rebuild: catalog:cc + an 8 MB program, only the program changed (best of 5)"
head -c 8000000 /dev/urandom > "$out/app"
build_app() { $bb --cache "$cache" build --from catalog:cc --add "$out/app:/app/app" --no-auto-deps \
    --entrypoint /app/app --lockfile "$out/app.lock" -o "oci:$out/app-layout:app" >/dev/null; }
build_app
lower() { $bb --cache "$cache" --json build --from catalog:cc --add "$out/app:/app/app" --no-auto-deps \
    --entrypoint /app/app --lockfile "$out/app.lock" -o "oci:$out/app-layout:app" \
    | python3 -c 'import json,sys; print(" ".join(l["digest"] for l in json.load(sys.stdin)["images"][0]["layers"][:-1]))'; }
before=$(lower)
best() {
    local best=999 s e
    for _ in 1 2 3 4 5; do
        [ "$1" = change ] && printf 'x' >> "$out/app"
        s=$(date +%s.%N); build_app; e=$(date +%s.%N)
        best=$(echo "$e - $s" | bc -l | awk -v b="$best" '{print ($1 < b) ? $1 : b}')
    done
    echo "$best"
}
same=$(best same)
changed=$(best change)
echo "$same $changed" | awk '{printf "rebuild, program changed: %.0f ms, of which compressing its layer %.0f ms\nrebuild, nothing changed (all but that compression): %.0f ms\n", $2*1000, ($2-$1)*1000, $1*1000}'
printf 'x' >> "$out/app"
[ "$(lower)" = "$before" ] && echo "every layer below the program's: byte for byte the same" \
    || echo "LOWER LAYERS CHANGED"
