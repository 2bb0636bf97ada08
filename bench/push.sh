#!/usr/bin/env bash
# Registry push figures, side by side with skopeo, against Debian's docker-registry on
# loopback (plain HTTP):
#   a layout of several catalogue images (static, base, cc, each amd64) pushed to a fresh
#   registry by bareboat copy and by skopeo copy, image by image, the same order;
#   and a repeated push of an unchanged image, which must take under 200 ms.
# With BASELINE=REV, both pushes are also made by that revision's build, to a registry of
# its own, side by side.
# Needs docker-registry and skopeo, and the host's apt mirror for the packages.
source "$(dirname "$0")/common.sh" push

images=(static base cc)
for image in "${images[@]}"; do
    $bb --cache "$cache" build "catalog:$image" -o "oci:$out/layout:$image" >/dev/null
done

seconds() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc -l; }

push_all_bareboat() { for i in "${images[@]}"; do $bb --cache "$cache" copy --insecure "oci:$out/layout:$i" "docker://127.0.0.1:$1/bench/app:$i"; done; }
push_all_skopeo() { for i in "${images[@]}"; do skopeo copy -q --dest-tls-verify=false "oci:$out/layout:$i" "docker://127.0.0.1:$1/bench/app:$i"; done; }

pid1=$(registry 5201 "$out/reg-bareboat")
pid2=$(registry 5202 "$out/reg-skopeo")
pid3=""
[ -z "$base" ] || pid3=$(registry 5203 "$out/reg-baseline")
trap 'kill $pid1 $pid2 $pid3 2>/dev/null' EXIT
ours=$(seconds push_all_bareboat 5201)
theirs=$(seconds push_all_skopeo 5202)
again=999
for _ in 1 2 3 4 5; do
    t=$(seconds $bb --cache "$cache" copy --insecure "oci:$out/layout:cc" "docker://127.0.0.1:5201/bench/app:cc")
    again=$(echo "$t $again" | awk '{print ($1 < $2) ? $1 : $2}')
done
skopeo_again=$(seconds skopeo copy -q --dest-tls-verify=false "oci:$out/layout:cc" "docker://127.0.0.1:5202/bench/app:cc")
bytes=$(du -sb "$out/layout/blobs" | cut -f1)
echo "== push of ${images[*]} ($((bytes / 1000000)) MB of blobs) to a fresh local registry"
awk -v o="$ours" -v t="$theirs" 'BEGIN {printf "bareboat copy: %6.0f ms   skopeo copy: %6.0f ms   ratio %.1fx\n", o*1000, t*1000, t/o}'
awk -v a="$again" -v s="$skopeo_again" 'BEGIN {printf "repeated push of cc, unchanged (best of 5): %.0f ms (skopeo: %.0f ms)\n", a*1000, s*1000}'
if [ -n "$base" ]; then
    push_all_baseline() { for i in "${images[@]}"; do $base --cache "$cache" copy --insecure "oci:$out/layout:$i" "docker://127.0.0.1:$1/bench/app:$i"; done; }
    baseline=$(seconds push_all_baseline 5203)
    awk -v o="$ours" -v t="$baseline" -v r="$rev" 'BEGIN {printf "push to a fresh registry: this %6.0f ms   %s: %6.0f ms   this/%s %.2f\n", o*1000, r, t*1000, r, o/t}'
    against "repeated push of cc, unchanged (best of 5)" 5 --cache "$cache" copy --insecure "oci:$out/layout:cc" "docker://127.0.0.1:5203/bench/app:cc"
fi
