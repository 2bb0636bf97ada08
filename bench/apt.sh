#!/usr/bin/env bash
# Archive-client figures, printed side by side with their peers:
#   - cold index: SHA256 + decompress + parse of trixie's amd64 Packages.xz vs `xz -dc` alone;
#   - warm resolve of python3 (indexes cached), offline and with the three InRelease fetched;
#   - download throughput of a python3 lock's packages: parallel fetch vs one sequential curl.
# The mirror comes from the host's apt configuration, or BAREBOAT_MIRROR.
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/out
rm -rf "$out" && mkdir -p "$out"

mirror=${BAREBOAT_MIRROR:-$(sed -n 's/^URIs: *\([^ ]*\/debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)}
[ -n "$mirror" ] || { echo "no Debian mirror: set BAREBOAT_MIRROR" >&2; exit 1; }

cargo build --release -q -p bareboat
bb=target/release/bareboat

echo "== cold index (trixie main amd64)"
curl -fsS "$mirror/dists/trixie/main/binary-amd64/Packages.xz" -o "$out/Packages.xz"
cargo bench -q -p bareboat-apt --bench index -- "$PWD/$out/Packages.xz"

echo "== warm resolve: python3 (trixie, amd64)"
printf 'packages = ["python3"]\nexclude = ["dpkg"]\n' > "$out/bareboat.toml"
$bb --cache "$out/cache" lock "$out/bareboat.toml" --no-fetch >/dev/null
best_of_5() {
    local best=999 s e
    for _ in 1 2 3 4 5; do
        s=$(date +%s.%N); "$@" >/dev/null; e=$(date +%s.%N)
        best=$(echo "$e - $s" | bc -l | awk -v b="$best" '{print ($1 < b) ? $1 : b}')
    done
    echo "$best * 1000" | bc -l | xargs printf '%.0f'
}
echo "bareboat lock python3, warm, offline (best of 5): $(best_of_5 $bb --cache "$out/cache" lock "$out/bareboat.toml" --no-fetch --offline) ms"
echo "bareboat lock python3, warm, InRelease fetched (best of 5): $(best_of_5 $bb --cache "$out/cache" lock "$out/bareboat.toml" --no-fetch) ms"
time_curl=$(curl -s -o /dev/null -w '%{time_total}' "$mirror/dists/trixie/InRelease")
printf 'for scale, one curl of trixie InRelease: %.0f ms\n' "$(echo "$time_curl * 1000" | bc -l)"

echo "== downloads: python3's packages"
$bb --cache "$out/cache" --json lock "$out/bareboat.toml" --no-fetch > "$out/lock.json"
python3 - "$out/lock.json" > "$out/urls.txt" <<'PY'
import json, sys
lock = json.load(open(sys.argv[1]))
urls = {s["suite"]: s["url"] for s in lock["sources"]}
for p in lock["packages"]:
    print(f'{urls[p["suite"]]}/{p["filename"]}')
PY
bytes=$(python3 -c 'import json,sys; print(sum(p["size"] for p in json.load(open(sys.argv[1]))["packages"]))' "$out/lock.json")
rm -rf "$out/cache/debs"
s=$(date +%s.%N); $bb --cache "$out/cache" fetch --lockfile "$out/bareboat.lock" >/dev/null; e=$(date +%s.%N)
ours=$(echo "$e - $s" | bc -l)
mkdir -p "$out/curl"
s=$(date +%s.%N); (cd "$out/curl" && xargs -n1 curl -fsS -O < ../urls.txt); e=$(date +%s.%N)
curl_t=$(echo "$e - $s" | bc -l)
n=$(wc -l < "$out/urls.txt")
printf '%d packages, %.1f MB\n' "$n" "$(echo "$bytes / 1000000" | bc -l)"
printf 'bareboat fetch (8 parallel, verified): %.2f s  %.1f MB/s\n' "$ours" "$(echo "$bytes / $ours / 1000000" | bc -l)"
printf 'curl, one at a time:                   %.2f s  %.1f MB/s\n' "$curl_t" "$(echo "$bytes / $curl_t / 1000000" | bc -l)"
printf 'speed-up: %.2fx\n' "$(echo "$curl_t / $ours" | bc -l)"
