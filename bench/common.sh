# Sourced by the benchmarks with their name: a fresh bench/out/NAME as $out, the release
# binary as $bb, and a package cache of the benchmark's own as $cache.
#
# BASELINE=REV (a commit, tag or branch) also builds that revision's release binary as
# $base, and `against` prints a figure of both side by side, with their ratio: how a change
# is shown to keep (or improve) the speed of what it touches.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=bench/out/$1
rm -rf "$out" && mkdir -p "$out"
cargo build --release -q -p bareboat
bb="$PWD/target/release/bareboat"
cache="$PWD/$out/cache"

base=""
if [ -n "${BASELINE:-}" ]; then
    rev=$(git rev-parse --short "$BASELINE")
    src="$PWD/target/baseline/$rev"
    if [ ! -x "$src/target/release/bareboat" ]; then
        rm -rf "$src" && mkdir -p "$src"
        git archive "$rev" | tar -x -C "$src"
        cargo build --release -q -p bareboat --manifest-path "$src/Cargo.toml"
    fi
    base="$src/target/release/bareboat"
fi

# Best of N wall-clock seconds of a command.
best() {
    local n=$1 best=999 s e t
    shift
    for _ in $(seq "$n"); do
        s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N)
        t=$(echo "$e - $s" | bc -l)
        best=$(echo "$t $best" | awk '{print ($1 < $2) ? $1 : $2}')
    done
    echo "$best"
}

# `against LABEL N ARGS...`: the best of N runs of `bareboat ARGS...` with this build and
# the baseline, taking turns so that both see the same machine; nothing without one.
against() {
    [ -n "$base" ] || return 0
    local label=$1 n=$2 ours=999 theirs=999 t
    shift 2
    for _ in $(seq "$n"); do
        t=$(best 1 "$bb" "$@"); ours=$(echo "$t $ours" | awk '{print ($1 < $2) ? $1 : $2}')
        t=$(best 1 "$base" "$@"); theirs=$(echo "$t $theirs" | awk '{print ($1 < $2) ? $1 : $2}')
    done
    awk -v l="$label" -v o="$ours" -v t="$theirs" -v r="$rev" 'BEGIN {
        printf "%-44s %7.0f ms   %s: %7.0f ms   this/%s %.2f\n", l, o*1000, r, t*1000, r, o/t
    }'
}

# `registry PORT DIR`: Debian's docker-registry serving DIR on 127.0.0.1:PORT, in the
# background; prints its pid once it answers.
registry() {
    cat > "$2.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $2
http:
  addr: 127.0.0.1:$1
YML
    docker-registry serve "$2.yml" >/dev/null 2>&1 &
    echo $!
    for _ in $(seq 50); do
        (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return
        sleep 0.1
    done
}
