#!/bin/sh
# roi.sh -- time and peak memory of `caimg roi` on 512x512 movies of 1000
# and 10000 frames at 30 Hz on 2 threads: the summary pass, detection and
# trace extraction separately (from -v), and peak RSS (bench/runstat),
# which must not grow with the number of frames.
#   sh bench/roi.sh [DIR]
# Run from the build directory after `make && make check` (needs
# tests/mkcells).  Movies (uint16, about 10 cells per 100 x 100 pixels,
# 3 photons per pixel and frame, as caimg simulate's typical preset) are
# made once in DIR and reused.  The page cache is warmed before each run,
# so the times are of caimg, not of the disk.
# Memory is bounded, not constant: the binned movie kept for detection
# grows with T until it reaches its cap (--max-bins, 512 bins of 512 x 512
# by default, reached at about 3000 frames at 30 Hz), and then the bins get
# longer instead.  The second pair of runs fixes the cap at 150 bins, which
# both lengths reach, to show that nothing else depends on T.
# Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
set -e
b=$(pwd)
dir=${1:-/tmp/caimg-bench-roi}
threads=${THREADS:-2}
mkdir -p "$dir"
printf "%-8s %10s %10s %10s %10s %12s\n" frames summary_s detect_s traces_s total_s "peak RSS MB"
for run in "1000" "10000" "1000 --max-bins 150" "10000 --max-bins 150"; do
    # shellcheck disable=SC2086
    set -- $run
    T=$1
    shift
    extra="$*"
    tag=$T${extra:+_capped}
    m=$dir/movie_$T.h5
    if [ ! -f "$m" ]; then
        echo "making $m ..." >&2
        "$b/tests/mkcells" -o "$m" -Y 512 -X 512 -T "$T" --photons 3 --seed 7 --mc
    fi
    cat "$m" > /dev/null
    # shellcheck disable=SC2086
    "$b/bench/runstat" -o "$dir/roi_$tag.stat" "$b/caimg" roi -v -@ "$threads" $extra "$m" \
        -o "$dir/roi_$tag.h5" 2> "$dir/roi_$tag.log"
    read -r wall user sys rss st < "$dir/roi_$tag.stat"
    times=$(sed -n 's/.*times: summary pass \([0-9.]*\) s, detection \([0-9.]*\) s, traces \([0-9.]*\) s.*/\1 \2 \3/p' "$dir/roi_$tag.log")
    # shellcheck disable=SC2086
    set -- $times
    printf "%-8s %10s %10s %10s %10.1f %12.1f  %s\n" "$T" "$1" "$2" "$3" "$wall" "$rss" "$extra"
    grep "ROIs" "$dir/roi_$tag.log" >&2 || true
done
echo "threads: $threads; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
