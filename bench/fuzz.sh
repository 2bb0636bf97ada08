#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ for SECONDS each (default 600, ten CPU-minutes), JOBS at a
# time (default: the number of cores), each on a corpus grown from fuzz/seeds/TARGET in
# fuzz/corpus/TARGET, and prints per target the inputs run, the coverage reached, peak
# memory and whether it found a crash (kept in fuzz/artifacts/TARGET).
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
jobs=${JOBS:-$(nproc)}
out=$PWD/bench/out/fuzz
rm -rf "$out" && mkdir -p "$out"
cd fuzz
cargo +nightly fuzz build -O
run() {
    local target=$1 seconds=$2 out=$3
    mkdir -p "corpus/$target"
    cp -n "seeds/$target"/* "corpus/$target/" 2>/dev/null || true
    local status=0
    cargo +nightly fuzz run -O "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 \
        >"$out/$target.log" 2>&1 || status=$?
    local runs cov rss
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$target.log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$out/$target.log" | tail -1)
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$out/$target.log" | tail -1)
    local found="no crash"
    [ "$status" = 0 ] || found="CRASH (exit $status): see fuzz/artifacts/$target and $out/$target.log"
    printf '%-16s %5ss  %10s runs  %-10s  peak %s MB  %s\n' "$target" "$seconds" "${runs:-?}" "${cov:-cov: ?}" "${rss:-?}" "$found"
}
export -f run
cargo +nightly fuzz list | xargs -P "$jobs" -I{} bash -c 'run "$@"' _ {} "$seconds" "$out"
