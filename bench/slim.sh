#!/usr/bin/env bash
# Slim figures: a fat image made by mmdebstrap (Debian trixie minbase with build-essential,
# git, curl and python3-flask, about 750 MB unpacked) with a Flask app, slimmed by the
# static pass alone and with a probe of the app, each timed once the packages are in the
# cache (a first run fetches them); side by side with what only getting the source ready to
# look at costs, `skopeo copy` of it and `umoci unpack`. mint cannot run here (it needs
# Docker's API and Go modules that cannot be fetched). Needs root (mmdebstrap, probes),
# the host's apt mirror, mmdebstrap, umoci, skopeo, runc and strace.
source "$(dirname "$0")/common.sh" slim

mirror=${BAREBOAT_MIRROR:-$(sed -n 's/^URIs: *\([^ ]*\/debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)}
mkdir -p "$out/app/app"
cp crates/bareboat/tests/slim/python/app.py "$out/app/app/"
mmdebstrap --quiet --variant=minbase --include=build-essential,git,curl,python3-flask \
    --format=tar trixie "$out/root.tar" "deb $mirror trixie main"
tar --create --owner=0 --group=0 --numeric-owner -f "$out/app.tar" -C "$out/app" app
umoci init --layout "$out/fat"
umoci new --image "$out/fat:empty"
umoci raw add-layer --image "$out/fat:empty" "$out/root.tar" --tag root
umoci raw add-layer --image "$out/fat:root" "$out/app.tar" --tag app
umoci config --image "$out/fat:app" --tag app --config.entrypoint=python3 --config.cmd=app.py --config.workingdir=/app
unpacked=$(stat -c %s "$out/root.tar")
compressed=$(du -cb "$out"/fat/blobs/sha256/* | tail -1 | cut -f1)

slim() { rm -rf "$out/slim"; $bb --cache "$cache" slim "oci:$out/fat:app" -o "oci:$out/slim:app" "$@"; }
slim >/dev/null 2>&1  # fetches the packages
static_s=$(best 3 slim)
probe_s=$(best 3 slim --probe "python3 app.py")
peer() {
    rm -rf "$out/peer" "$out/bundle"
    skopeo copy -q "oci:$out/fat:app" "oci:$out/peer:app"
    umoci unpack --image "$out/peer:app" "$out/bundle"
}
peer_s=$(best 3 peer)
slim_size=$(du -cb "$out"/slim/blobs/sha256/* | tail -1 | cut -f1)

echo "== slim of a $((unpacked / 1000000)) MB image ($((compressed / 1000000)) MB of gzip layers) to $((slim_size / 1000000)) MB, packages cached, best of 3"
awk -v p="$peer_s" -v s="$static_s" -v q="$probe_s" 'BEGIN {
    printf "skopeo copy + umoci unpack of the source: %6.0f ms\n", p*1000
    printf "bareboat slim, static pass:               %6.0f ms  %.2fx the peer (target: under 10 s)\n", s*1000, s/p
    printf "bareboat slim, static pass and a probe:   %6.0f ms  %.2fx the peer (target: under 10 s)\n", q*1000, q/p
}'
