#!/usr/bin/env bash
# Image build figures, side by side with the peer, from warm package caches:
#   bareboat build of catalog:static and catalog:cc, against
#   mmdebstrap --variant=extract of the same packages followed by umoci repack.
# Prints wall-clock times and their ratio (with a lockfile, and without one, online and
# --offline), image sizes, static's file bytes against what distroless's static-debian13
# holds of the same packages, and bareboat's peak RSS.
# With BASELINE=REV, the locked rebuild and the unlocked --offline build are timed with that
# revision's build too, side by side.
# Needs root (mmdebstrap and umoci as the peer run them) and the host's apt mirror.
source "$(dirname "$0")/common.sh" build

best_of_5() { # SETUP COMMAND...: SETUP runs untimed before each run
    local best=999 s e setup=$1
    shift
    for _ in 1 2 3 4 5; do
        $setup
        s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N)
        best=$(echo "$e - $s" | bc -l | awk -v b="$best" '{print ($1 < b) ? $1 : b}')
    done
    echo "$best"
}

for image in static cc; do
    echo "== $image (trixie, amd64)"
    # Warm the cache and learn the package list.
    $bb --cache "$cache" --json build "catalog:$image" -o "oci:$out/bb:$image" > "$out/$image.json"
    pkgs=$($bb --cache "$cache" --json lock "catalog:$image" --lockfile "$out/$image.lock" --no-fetch \
        | python3 -c 'import json,sys; print(",".join(p["name"] for p in json.load(sys.stdin)["packages"]))')
    # A new layout each time: first with every package unpacked and every layer compressed
    # (no saved trees, no kept blobs), then resuming from the unpacked layers earlier builds
    # saved, then also copying the compressed layers the cache keeps. A rebuild into the
    # same layout also reuses the layers it has already written.
    fresh() { $bb --cache "$cache" build "catalog:$image" --lockfile "$out/$image.lock" -o "oci:$(mktemp -u -p "$out" fresh.XXXXXX):$image"; }
    forget_trees() { find "$cache/trees" "$cache/blobs" -type f -delete 2>/dev/null || true; }
    forget_blobs() { find "$cache/blobs" -type f -delete 2>/dev/null || true; }
    ours=$(best_of_5 forget_trees fresh)
    saved=$(best_of_5 forget_blobs fresh)
    kept=$(best_of_5 true fresh)
    again=$(best_of_5 true $bb --cache "$cache" build "catalog:$image" --lockfile "$out/$image.lock" -o "oci:$out/bb:$image")
    # Without a lockfile the build resolves first: online it checks each InRelease.
    unlocked() { $bb --cache "$cache" build "catalog:$image" "$@" -o "oci:$(mktemp -u -p "$out" unlocked.XXXXXX):$image"; }
    unlocked_online=$(best_of_5 true unlocked)
    unlocked_offline=$(best_of_5 true unlocked --offline)
    against "$image: rebuild, same layout, locked" 5 --cache "$cache" build "catalog:$image" --lockfile "$out/$image.lock" -o "oci:$out/bb:$image"
    against "$image: unlocked --offline build, same layout" 5 --cache "$cache" build "catalog:$image" --offline -o "oci:$out/unlocked-again:$image"
    forget_trees
    rss=$( { /usr/bin/time -f %M $bb --cache "$cache" build "catalog:$image" --lockfile "$out/$image.lock" -o "oci:$out/rss-$image:$image" >/dev/null; } 2>&1 | tail -1)

    debs="$out/debs-$image" && mkdir -p "$debs"
    python3 - "$out/$image.lock" "$cache" "$debs" <<'PY'
import os, sys, tomllib
lock = tomllib.load(open(sys.argv[1], "rb"))
for p in lock["package"]:
    src = os.path.join(sys.argv[2], "debs", p["sha256"] + ".deb")
    dst = os.path.join(sys.argv[3], os.path.basename(p["filename"]))
    if not os.path.exists(dst):
        os.link(src, dst)
PY
    peer() {
        rm -rf "$out/peer-$image" "$out/rootfs-$image"
        mmdebstrap --quiet --variant=extract --include="$pkgs" --skip=download/empty \
            --setup-hook="mkdir -p \"\$1/var/cache/apt/archives\" && cp $debs/*.deb \"\$1/var/cache/apt/archives/\"" \
            trixie "$out/rootfs-$image" >/dev/null 2>&1
        umoci init --layout "$out/peer-$image" && umoci new --image "$out/peer-$image:t"
        umoci unpack --image "$out/peer-$image:t" "$out/bundle-$image" >/dev/null
        rm -rf "$out/bundle-$image/rootfs" && mv "$out/rootfs-$image" "$out/bundle-$image/rootfs"
        umoci repack --image "$out/peer-$image:t" "$out/bundle-$image" >/dev/null
        rm -rf "$out/bundle-$image"
    }
    s=$(date +%s.%N); peer; e=$(date +%s.%N)
    theirs=$(echo "$e - $s" | bc -l)

    python3 - "$out/$image.json" "$out/peer-$image" "$ours" "$theirs" "$rss" "$again" "$out/bb" "$saved" \
        "$unlocked_online" "$unlocked_offline" "$image" "$out/$image.lock" "$debs" "$kept" <<'PY'
import io, json, os, subprocess, sys, tomllib
report = json.load(open(sys.argv[1]))
layers = report["images"][0]["layers"]
ours_gz = sum(l["size"] for l in layers)
ours_tar = sum(l["uncompressed_size"] for l in layers)
peer = sys.argv[2]
idx = json.load(open(os.path.join(peer, "index.json")))
man = json.load(open(os.path.join(peer, "blobs/sha256", idx["manifests"][0]["digest"][7:])))
peer_gz = sum(l["size"] for l in man["layers"])
ours_t, theirs_t, rss = float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
again_t = float(sys.argv[6])
saved_t = float(sys.argv[8])
online_t, offline_t = float(sys.argv[9]), float(sys.argv[10])
image, lock, debs = sys.argv[11], sys.argv[12], sys.argv[13]
kept_t = float(sys.argv[14])
print(f"bareboat build into a new layout, unpacking every package (best of 5): {ours_t*1000:7.0f} ms   peak RSS {rss/1024:.0f} MB")
print(f"bareboat build into a new layout, unpacked layers saved (best of 5):  {saved_t*1000:7.0f} ms")
print(f"... and compressed layers kept in the cache (best of 5):              {kept_t*1000:7.0f} ms"
      f"   {kept_t/again_t:.2f}x a rebuild (target: at most 2x)")
print(f"bareboat rebuild, same layout (best of 5):                            {again_t*1000:7.0f} ms")
print(f"bareboat build without a lockfile, new layout (best of 5): online {online_t*1000:.0f} ms, --offline {offline_t*1000:.0f} ms")
print(f"mmdebstrap extract + umoci repack:                                    {theirs_t*1000:7.0f} ms")
print(f"ratio: {theirs_t/ours_t:.1f}x unpacking, {theirs_t/saved_t:.1f}x saved layers, {theirs_t/again_t:.1f}x rebuild")
# Unpacked size as distroless's figure counts it: the bytes of the files, not tar headers.
import gzip, tarfile
def image_files(layout, digests):
    sizes = {}
    for d in digests:
        with tarfile.open(fileobj=gzip.open(os.path.join(layout, "blobs/sha256", d[7:]))) as t:
            sizes.update((m.name, m.size) for m in t if m.isreg())
    return sizes
ours = image_files(sys.argv[7], [l["digest"] for l in layers])
ours_files = sum(ours.values())
print(f"bareboat image: {ours_gz/1e6:.2f} MB gzipped, {ours_files/1e6:.2f} MB unpacked, {ours_tar/1e6:.2f} MB as tar")
print(f"peer image:     {peer_gz/1e6:.2f} MB gzipped")
if image == "static":
    # distroless's static-debian13 holds these packages whole, and of ca-certificates the
    # bundle (as bareboat makes it, from the same certificates) and the copyright file.
    debs_of = {p["name"]: os.path.join(debs, os.path.basename(p["filename"]))
               for p in tomllib.load(open(lock, "rb"))["package"]}
    def deb_files(name):
        data = subprocess.run(["dpkg-deb", "--fsys-tarfile", debs_of[name]],
                              check=True, capture_output=True).stdout
        with tarfile.open(fileobj=io.BytesIO(data)) as t:
            return {os.path.normpath(m.name): m.size for m in t if m.isreg()}
    whole = ["base-files", "netbase", "tzdata", "tzdata-legacy", "media-types"]
    equivalent = sum(sum(deb_files(p).values()) for p in whole)
    equivalent += ours["etc/ssl/certs/ca-certificates.crt"]
    equivalent += deb_files("ca-certificates")["usr/share/doc/ca-certificates/copyright"]
    print(f"distroless static-debian13 equivalent (same packages): {equivalent/1e6:.2f} MB of files; "
          f"bareboat's static is {ours_files/equivalent:.3f}x")
PY
done

# Several architectures at once: catalog:cc for the architectures the host's mirror serves
# whole, locked, into a new layout each time, against one architecture. The
# Architecture: all packages are fetched and checked once for all, so N architectures
# cannot cost much less than 1 + (N-1) x s times one, where s is the architecture-specific
# share of one architecture's package bytes; the target is at most 1.1 times that.
arches=amd64,arm64,armhf,riscv64
$bb --cache "$cache" --json lock catalog:cc --arch amd64 --lockfile "$out/cc-one.lock" >/dev/null
$bb --cache "$cache" --json lock catalog:cc --arch "$arches" --lockfile "$out/cc-many.lock" >/dev/null
new_layout() { # LOCK ARCHES
    $bb --cache "$cache" build catalog:cc --arch "$2" --lockfile "$1" -o "oci:$(mktemp -u -p "$out" arches.XXXXXX):cc"
}
new_layout "$out/cc-many.lock" "$arches" >/dev/null
forget() { find "$cache/trees" "$cache/blobs" -type f -delete 2>/dev/null || true; }
one=$(best_of_5 forget new_layout "$out/cc-one.lock" amd64)
many=$(best_of_5 forget new_layout "$out/cc-many.lock" "$arches")
python3 - "$out/cc-one.lock" "$one" "$many" "$arches" <<'PY'
import sys, tomllib
lock = tomllib.load(open(sys.argv[1], "rb"))
one, many, n = float(sys.argv[2]), float(sys.argv[3]), len(sys.argv[4].split(","))
total = sum(p["size"] for p in lock["package"])
specific = sum(p["size"] for p in lock["package"] if p["architecture"] != "all")
s = specific / total
bound = 1 + (n - 1) * s
print(f"== catalog:cc for {n} architectures ({sys.argv[4]}), locked, new layout, nothing kept (best of 5)")
print(f"one architecture: {one*1000:.0f} ms; {n}: {many*1000:.0f} ms = {many/one:.2f}x one")
print(f"architecture-specific share of the package bytes s = {s:.3f}; 1 + (N-1) x s = {bound:.2f}; "
      f"target at most {1.1*bound:.2f}x: {'met' if many/one <= 1.1*bound else 'not met'}")
PY
