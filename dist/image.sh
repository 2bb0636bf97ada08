#!/usr/bin/env bash
# bareboat's own container image, built by bareboat: catalog:cc plus the release binary.
# The image's binary carries no debug info; its line tables are kept beside it in
# bareboat.debug, which the binary names (.gnu_debuglink) for addr2line and gdb, so a
# backtrace from the image can still be read. Every argument goes to `bareboat build`:
#
#   dist/image.sh -o docker://registry.example/tools/bareboat:1 --sign cosign.key
#
# BASE is the image to build on (default catalog:cc; catalog:cc:debug adds busybox's shell,
# for CI systems that run job scripts inside the image). DIST is where the stripped binary
# and bareboat.debug go (default target/dist); BAREBOAT_BINARY ships that binary instead of
# building the release one.
set -euo pipefail
cd "$(dirname "$0")/.."

binary=${BAREBOAT_BINARY:-}
if [ -z "$binary" ]; then
    cargo build --release --locked -p bareboat
    binary=target/release/bareboat
fi
dist=${DIST:-target/dist}
mkdir -p "$dist"
objcopy --only-keep-debug "$binary" "$dist/bareboat.debug"
objcopy --strip-debug --add-gnu-debuglink="$dist/bareboat.debug" "$binary" "$dist/bareboat"
exec "$binary" build --from "${BASE:-catalog:cc}" --add "$dist/bareboat:/usr/bin/bareboat" \
    --entrypoint /usr/bin/bareboat "$@"
