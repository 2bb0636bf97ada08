#!/usr/bin/env bash
# A CI fleet sharing one registry: 8 runners, each with a cache of its own (empty, as a fresh
# CI runner's is), 2 at a time on this two-core machine, each building a different app on
# catalog:python3 from the same lockfile and pushing it to one docker-registry on loopback:
#   without the registry cache, every runner fetches, unpacks and compresses every package
#   layer; with it (--cache-from a map a protected-branch build published with --cache-to),
#   the package layers are taken as they are.
# Prints each runner's wall time, the bytes of packages it fetched from the mirror, and the
# bytes it uploaded; then a cold runner with the cache against a warm runner's local rebuild
# (the target: at most 2x, and 0 bytes of packages fetched for the shared layers).
# Needs docker-registry and the host's apt mirror.
source "$(dirname "$0")/common.sh" fleet

runners=8
pid=$(registry 5301 "$out/registry")
trap 'kill $pid 2>/dev/null' EXIT
reg=127.0.0.1:5301
export BAREBOAT_KEY_PASSWORD=bench
(cd "$out" && $bb key generate --output-key-prefix cache >/dev/null)

app() { # N: app N's program
    mkdir -p "$out/app$1"
    printf 'print("app %s")\n' "$1" > "$out/app$1/main.py"
}
build() { # CACHE N OUTPUT MORE...: builds app N; prints its JSON report
    local cache=$1 n=$2 output=$3
    shift 3
    (cd "$out" && $bb --cache "$cache" --json build --from catalog:python3 \
        --add "app$n/main.py:/app/main.py" --entrypoint /usr/bin/python3 --cmd /app/main.py \
        --lockfile python3.lock --insecure -o "$output" "$@")
}
field() { # JSON-FILE EXPRESSION
    python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print($2)" "$1"
}

# The protected branch's build: it locks, fills its cache and publishes the map.
app 0
build "$cache" 0 "docker://$reg/fleet/app:main" \
    --cache-to "docker://$reg/fleet/cache:main" --cache-sign-key cache.key > "$out/publish.json"

run_fleet() { # LABEL MORE...: every runner, 2 at a time; writes $out/LABEL-N.{json,time}
    local label=$1
    shift
    for n in $(seq 1 "$runners"); do
        app "$n"
        (
            runner="$PWD/$out/runner-$label-$n"
            rm -rf "$runner" && mkdir -p "$runner"
            s=$(date +%s.%N)
            build "$runner" "$n" "docker://$reg/fleet/app:$label-$n" "$@" > "$out/$label-$n.json"
            e=$(date +%s.%N)
            echo "$e - $s" | bc -l > "$out/$label-$n.time"
            find "$runner/debs" -type f -printf '%s\n' 2>/dev/null | awk '{s+=$1} END {print s+0}' > "$out/$label-$n.debs"
        ) &
        if (( n % 2 == 0 )); then wait; fi
    done
    wait
}
run_fleet plain
run_fleet shared --cache-from "docker://$reg/fleet/cache:main" --cache-verify-key cache.pub

printf '%-8s %-28s %-28s\n' runner "without the cache" "with the registry cache"
printf '%-8s %9s %8s %9s %9s %8s %9s\n' "" seconds "pkg MB" "up kB" seconds "pkg MB" "up kB"
for n in $(seq 1 "$runners"); do
    row=()
    for label in plain shared; do
        t=$(cat "$out/$label-$n.time")
        debs=$(cat "$out/$label-$n.debs"); debs=${debs:-0}
        up=$(field "$out/$label-$n.json" 'sum(p["uploaded_bytes"] for p in r["pushes"])')
        row+=("$(awk -v t="$t" -v d="$debs" -v u="$up" 'BEGIN {printf "%9.2f %8.1f %9.1f", t, d/1e6, u/1e3}')")
    done
    printf '%-8s %s %s\n' "$n" "${row[0]}" "${row[1]}"
done

# One runner alone, as a build is timed anywhere: a cold runner with the registry cache, and
# a warm runner's rebuild from its local cache alone, each of the app with one more change.
changed=0
alone() { # CACHE MORE...: app 0, changed again, built from CACHE; prints the seconds
    local cache=$1 s e
    shift
    changed=$((changed + 1))
    echo "print($changed)" >> "$out/app0/main.py"
    s=$(date +%s.%N)
    build "$cache" 0 "docker://$reg/fleet/app:alone" "$@" > /dev/null
    e=$(date +%s.%N)
    echo "$e - $s" | bc -l
}
best_alone() { # FRESH MORE...: the best of 3; with FRESH=1, each from an empty cache
    local fresh=$1 best=999 t c
    shift
    for i in 1 2 3; do
        c=$cache
        if [ "$fresh" = 1 ]; then c="$PWD/$out/alone-$i" && rm -rf "$c"; fi
        t=$(alone "$c" "$@")
        best=$(echo "$t $best" | awk '{print ($1 < $2) ? $1 : $2}')
    done
    echo "$best"
}
app 0
cold=$(best_alone 1 --cache-from "docker://$reg/fleet/cache:main" --cache-verify-key cache.pub)
warm=$(best_alone 0)
fetched=$(cat "$out"/shared-*.debs | awk '{s+=$1} END {print s+0}')
shared=$(field "$out/shared-1.json" 'r["images"][0]["shared_layers"]')
map=$(field "$out/publish.json" 'r["shared"]["published"]["push"]["uploaded_bytes"]')
awk -v c="$cold" -v w="$warm" -v f="$fetched" -v s="$shared" -v m="$map" 'BEGIN {
    printf "alone: cold runner with the cache %.0f ms   warm local rebuild %.0f ms   ratio %.2f (target <= 2)\n", c*1000, w*1000, c/w
    printf "package layers taken from the cache: %d   bytes of packages the cached runners fetched: %d (target 0)\n", s, f
    printf "what publishing uploaded (the map and the blobs the cache repository lacked): %.1f MB\n", m/1e6
}'
