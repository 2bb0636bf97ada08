#!/usr/bin/env bash
# Layer digests of every catalogue image and variant, built by this build and by
# BASELINE=REV side by side, from one package cache and one SOURCE_DATE_EPOCH: a change to
# the tree, the layer writer or the image model must leave each one as it was. Prints a
# line an image and fails when one differs. BAREBOAT_CACHE names a cache to share.
source "$(dirname "$0")/common.sh" digests
if [ -z "$base" ]; then
    echo "give BASELINE=REV: the revision whose digests this build must keep" >&2
    exit 2
fi
cache=${BAREBOAT_CACHE:-$cache}
export SOURCE_DATE_EPOCH=1700000000

images=$("$bb" --cache "$cache" --json catalog | python3 -c '
import json, sys
for image in json.load(sys.stdin):
    print("catalog:" + image["name"])
    for variant in image["variants"]:
        print("catalog:%s:%s" % (image["name"], variant))
')

# `layers BIN DIR IMAGE`: the layer digests of IMAGE built by BIN in DIR, one line.
layers() {
    mkdir -p "$2"
    (cd "$2" && "$1" --cache "$cache" --json build "$3" -o "oci:out:image") |
        python3 -c '
import json, sys
report = json.load(sys.stdin)
print(" ".join(l["digest"] for i in report["images"] for l in i["layers"]))
'
}

differ=0
for image in $images; do
    dir="$out/${image//:/_}"
    ours=$(layers "$bb" "$dir/this" "$image")
    theirs=$(layers "$base" "$dir/$rev" "$image")
    if [ "$ours" = "$theirs" ]; then
        printf "%-32s same   %s\n" "$image" "$(echo "$ours" | wc -w) layers"
    else
        printf "%-32s DIFFER\n  this: %s\n  %s: %s\n" "$image" "$ours" "$rev" "$theirs"
        differ=1
    fi
done
exit $differ
