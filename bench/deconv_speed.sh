#!/bin/sh
# deconv_speed.sh -- deconvolution throughput, 1000 traces x 10000 frames
# on 2 threads: caimg against Suite2p's own deconvolution (numba OASIS,
# bench/deconv_speed_numba.py) and against the same algorithm written in C,
# all in this run on the same traces.
#   sh bench/deconv_speed.sh [DIR]
# Run from the build directory (builds bench/deconv_speed).  The numba
# reference needs python3-numba (apt-get install python3-numba); without it
# the C reference alone is shown.  N, T, THREADS and REPEATS in the
# environment override 1000, 10000, 2 and 3.
# Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
set -e
src=$(cd "$(dirname "$0")" && pwd)
dir=${1:-/tmp/caimg-bench-deconv}
N=${N:-1000} T=${T:-10000} threads=${THREADS:-2} reps=${REPEATS:-3}
mkdir -p "$dir"
make -s bench/deconv_speed
bench/deconv_speed -n "$N" -T "$T" -w "$dir/traces.f32"
ref=
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
if "$py" -c 'import numba' 2> /dev/null; then
    # shellcheck disable=SC2046
    set -- $("$py" "$src/deconv_speed_numba.py" "$dir/traces.f32" "$N" "$T" "$threads" "$reps")
    ref="-R $1:$2"
else
    echo "deconv_speed.sh: python3-numba is not installed; no numba reference" >&2
fi
# shellcheck disable=SC2086
bench/deconv_speed -n "$N" -T "$T" -@ "$threads" -r "$reps" $ref
