# Sourced by the benchmarks with their name: a fresh bench/out/NAME as $out, the release
# binary as $bb, and a package cache of the benchmark's own as $cache.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=bench/out/$1
rm -rf "$out" && mkdir -p "$out"
cargo build --release -q -p bareboat
bb="$PWD/target/release/bareboat"
cache="$PWD/$out/cache"
