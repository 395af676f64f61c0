#!/bin/sh
# mc.sh -- speed, memory and accuracy of `caimg mc` on 512x512 uint16 movies
# (HDF5 in, HDF5 out), rigid and piecewise-rigid, on 1 and 2 threads, beside
# the time FFTW alone needs for one forward and one inverse transform of the
# same frames (the practical limit of FFT registration), in the same run;
# then peak memory for 1000 vs 10000 frames.
#   sh bench/mc.sh [FRAMES [DIR]]      (default 2000 frames; DIR a scratch directory)
# Run from the build directory after `make`.  Frames/s are overall: the
# whole command, template, FFTW planning and I/O included.
# Every timing, the FFTW reference's too, is the best of MC_REPS runs
# (default 3): on a virtual machine the first write into memory the guest
# has not touched lately costs the host a fresh page (measured on our CI
# kind of VM: 3.2 s of system time per GB written into cold page cache,
# 0.25 s into recycled pages), which swings a single run by up to 40 %;
# the 'sys s' column shows it.
# Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
set -e
frames=${1:-2000}
reps=${MC_REPS:-3}
dir=${2:-$(mktemp -d /tmp/caimg-bench-XXXXXX)}
b=$(pwd)
mkdir -p "$dir"
trap 'rm -f "$dir"/m*.h5 "$dir"/t*.h5 "$dir"/out.h5 "$dir"/*.stat' EXIT
sim() {   # FRAMES OUT [ARGS...]
    n=$1 o=$2; shift 2
    "$b/caimg" simulate -q --size 512x512 --frames "$n" --seed 1 -o "$o" "$@"
    cat "$o" > /dev/null    # warm the page cache the same way for every run
}
mc() {    # NAME MOVIE FRAMES REPS ARGS...: the best of REPS runs, the largest RSS
    name=$1 mv=$2 n=$3 k=$4; shift 4
    best= bu= bs= mrss=0
    for r in $(seq "$k"); do
        rm -f "$dir/out.h5"
        "$b/bench/runstat" -o "$dir/run.stat" "$b/caimg" mc -q "$@" "$mv" -o "$dir/out.h5"
        read -r wall user sys rss st < "$dir/run.stat"
        [ "$st" = 0 ] || { echo "caimg mc failed ($name)"; exit 1; }
        if [ -z "$best" ] || [ "$(echo "$wall < $best" | bc)" = 1 ]; then
            best=$wall bu=$user bs=$sys
        fi
        [ "$(echo "$rss > $mrss" | bc)" = 1 ] && mrss=$rss
    done
    fps=$(echo "$n / $best" | bc -l)
    printf "%-30s %8.2f %7.1f %6.1f %10.0f %9.0f%% %11.0f\n" "$name" "$best" "$bu" "$bs" "$fps" \
        "$(echo "100 * $fps / $lim" | bc -l)" "$mrss"
}
header() {
    printf "%-30s %8s %7s %6s %10s %10s %11s\n" run seconds "user s" "sys s" frames/s "of FFTW" \
        "peak RSS MB"
}

echo "caimg mc, 512x512 uint16, $frames frames; $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); best of $reps runs"
sim "$frames" "$dir/m.h5" --truth "$dir/t.h5"
header
for th in 1 2; do
    : > "$dir/fftw.$th"
    for r in $(seq "$reps"); do "$b/bench/fftw_ref" "$dir/m.h5" "$th" >> "$dir/fftw.$th"; done
    sort -k2,2n "$dir/fftw.$th" | head -1 > "$dir/fftw.best"
    mv "$dir/fftw.best" "$dir/fftw.$th"
    read -r n secs lim < "$dir/fftw.$th"
    printf "%-30s %8.2f %7s %6s %10.0f %10s %11s\n" "FFTW r2c+c2r only, $th thr" "$secs" - - "$lim" 100% -
    mc "rigid, $th thread(s)" "$dir/m.h5" "$frames" "$reps" -@ "$th"
    mc "piecewise-rigid, $th thread(s)" "$dir/m.h5" "$frames" "$reps" -@ "$th" --piecewise
done
# FFTW's timed plans: faster, but not bit-reproducible (caimg-mc(1)).
mc "rigid, 2, --fftw-measure" "$dir/m.h5" "$frames" "$reps" -@ 2 --fftw-measure
mc "piecewise, 2, --fftw-measure" "$dir/m.h5" "$frames" "$reps" -@ 2 --piecewise --fftw-measure

echo
echo "accuracy (caimg eval against the simulation's truth)"
"$b/caimg" mc -q -@ 2 "$dir/m.h5" -o "$dir/out.h5"
"$b/caimg" eval --truth "$dir/t.h5" "$dir/out.h5" | grep -E "^motion +(rms|max)"
sim 500 "$dir/md.h5" --truth "$dir/td.h5" --deform-sd 1 --bidi 2
"$b/caimg" mc -q -@ 2 --piecewise "$dir/md.h5" -o "$dir/out.h5"
echo "500 frames, --deform-sd 1 --bidi 2, --piecewise:"
"$b/caimg" eval --truth "$dir/td.h5" "$dir/out.h5" | grep -E "^(motion|field|bidi) +(rms|max|error|estimated)"
sim 500 "$dir/mh.h5" --truth "$dir/th.h5" --preset hard
"$b/caimg" mc -q -@ 2 "$dir/mh.h5" -o "$dir/out.h5"
echo "500 frames, --preset hard (1.2 photons/px), rigid:"
"$b/caimg" eval --truth "$dir/th.h5" "$dir/out.h5" | grep -E "^motion +(rms|max)"
rm -f "$dir"/md.h5 "$dir"/td.h5 "$dir"/mh.h5 "$dir"/th.h5 "$dir"/t.h5

echo
echo "memory against length (rigid and piecewise-rigid, 2 threads)"
header
lim=$(cut -d' ' -f3 "$dir/fftw.2")
for n in 1000 10000; do
    rm -f "$dir/m.h5"
    sim "$n" "$dir/m.h5"
    mc "rigid, $n frames" "$dir/m.h5" "$n" 1 -@ 2
    mc "piecewise-rigid, $n frames" "$dir/m.h5" "$n" 1 -@ 2 --piecewise
done
