#!/bin/sh
# deconv_simcurve.sh -- spike correlation against SNR on `caimg simulate`
# data, through the whole trace pipeline (dff, deconv, eval), side by side
# with Suite2p's deconvolution run in the same script.
# Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
#
# Usage: sh bench/deconv_simcurve.sh [FRAMES] [SIZE]   (from the build tree,
# after `make tests/mktraces`; defaults 6000 frames of 256x256, GCaMP6f)
#
# The truth of one simulated field (frame-aligned spikes through the AR(2)
# calcium model of the GCaMP6f preset, 30 Hz) is turned into ROI traces by
# tests/mktraces with the noise set so that one spike's first-frame rise is
# SNR noise sds (caimg simulate's definition of per-spike SNR).  Suite2p's
# deconvolution: its default maximin baseline (caimg dff's default too),
# then OASIS AR(1) without penalty, given the preset's mean decay 0.19 s
# (the truth is the preset with a 10 % spread across neurons).  caimg: the
# defaults, estimating kinetics, noise and baseline per neuron.
set -eu
CAIMG=${CAIMG:-./caimg}
MKTRACES=${MKTRACES:-./tests/mktraces}
FRAMES=${1:-6000}
SIZE=${2:-256x256}
D=$(mktemp -d /tmp/caimg-simcurve-XXXXXX)
trap 'rm -rf "$D"' EXIT
score() { "$CAIMG" eval --tsv --truth "$D/truth.h5" "$1" | awk -F'\t' '$1 == "spikes" && $2 == "corr_mean" {print $3}'; }
"$CAIMG" simulate -q --size "$SIZE" --frames "$FRAMES" --seed 3 --truth "$D/truth.h5"
n=$(h5ls "$D/truth.h5/truth/spikes" | sed 's/.*{\([0-9]*\),.*/\1/')
echo "caimg simulate: $n neurons, $FRAMES frames at 30 Hz, GCaMP6f; spike correlation at 40 ms bins"
printf '%-6s %12s %12s %12s\n' SNR suite2p caimg caimg-auto
for snr in 2 3 5 7 10; do
    "$MKTRACES" "$D/truth.h5" -o "$D/roi.h5" --snr "$snr"
    "$CAIMG" dff -q "$D/roi.h5" -o "$D/dff.h5"
    "$CAIMG" deconv -q --method penalized --lambda 0 --ar 1 --tau 0.19 --baseline fixed --b 0 \
        "$D/dff.h5" -o "$D/s2p.h5"
    "$CAIMG" deconv -q "$D/dff.h5" -o "$D/caimg.h5"
    "$CAIMG" deconv -q --method auto "$D/dff.h5" -o "$D/auto.h5"
    printf '%-6s %12s %12s %12s\n' "$snr" "$(score "$D/s2p.h5")" "$(score "$D/caimg.h5")" \
        "$(score "$D/auto.h5")"
    rm -f "$D/roi.h5" "$D/dff.h5" "$D/s2p.h5" "$D/caimg.h5" "$D/auto.h5"
done
