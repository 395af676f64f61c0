#!/bin/sh
# roi_fields.sh -- the accuracy table of caimg-roi(1): F1 of `caimg roi`
# (default settings, or the options given) on 13 still typical and 13
# still hard fields of `caimg simulate`, scored by `caimg eval`.
#   sh bench/roi_fields.sh [-d DIR] [ROI OPTIONS...]
# Run from the build directory.  Each field is 256 x 256 pixels, 2000
# frames at 30 Hz, without motion (so without caimg mc), of seeds 301-303
# and 501-504 (the rows "typical" and "hard" of the table) and 601-606
# ("typ. 6xx", "hard 6xx").  The movies and their truth are made once in
# DIR [/tmp/caimg-bench-fields] and reused; the ROIs are written there
# too.  Prints each field's F1 and the mean of each row, and the mean of
# each preset over its 13 fields, e.g. to compare a change or an option:
#   sh bench/roi_fields.sh --anatomy-threshold 2.75
# Takes about 2 minutes on 2 cores once the movies exist (4 to make them).
# Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
set -e
b=$(pwd)
dir=/tmp/caimg-bench-fields
if [ "$1" = "-d" ]; then
    dir=$2
    shift 2
fi
mkdir -p "$dir"
threads=${THREADS:-2}
all=$dir/f1.tsv
: > "$all"
for preset in typical hard; do
    for seeds in "301 302 303 501 502 503 504" "601 602 603 604 605 606"; do
        row=""
        for s in $seeds; do
            m=$dir/${preset}_$s
            [ -f "$m.h5" ] || "$b/caimg" simulate -q -@ "$threads" --preset "$preset" \
                --size 256x256 --frames 2000 --seed "$s" --motion-sd 0 --jitter 0 \
                --jump-rate 0 -o "$m.h5" --truth "${m}_truth.h5"
            "$b/caimg" roi -q -@ "$threads" "$@" "$m.h5" -o "${m}_roi.h5"
            f1=$("$b/caimg" eval --tsv --truth "${m}_truth.h5" "${m}_roi.h5" |
                awk -F'\t' '$1 == "roi" && $2 == "f1" {printf "%.3f", $3}')
            row="$row $f1"
            printf "%s\t%s\t%s\n" "$preset" "$s" "$f1" >> "$all"
        done
        name=$preset
        case $preset$seeds in
            typical6*) name="typ. 6xx" ;;
            hard6*) name="hard 6xx" ;;
        esac
        # shellcheck disable=SC2086
        echo "$row" | awk -v n="$name" '{s = 0; for (i = 1; i <= NF; i++) s += $i
            printf "%-9s%s  %.3f\n", n, $0, s / NF}'
    done
done
awk -F'\t' '{s[$1] += $3; n[$1]++} END {for (p in s) printf "%s: mean F1 %.4f over %d fields\n", p, s[p] / n[p], n[p]}' "$all" | sort
