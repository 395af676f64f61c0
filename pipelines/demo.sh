#!/bin/sh
# demo.sh -- the whole caimg pipeline on bundled demo data; results in DIR
# [./demo].  Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
#
#  1. a simulated stimulus-driven recording of mouse V1 (with its ground
#     truth), through import, mc, roi, dff, deconv, fit and attack, scored
#     stage by stage against the truth, with a report;
#  2. a real two-photon recording (the SIMA example, hippocampal CA1)
#     through import, mc and roi, with a report.
set -e
top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-demo}
CAIMG=${CAIMG:-$top/caimg}
export CAIMG
mkdir -p "$out/data"

echo "== 1. simulate: 96x96 pixels of V1, 300 natural-like images shown twice (15 Hz, 8 min)"
"$CAIMG" simulate -q --size 96x96 --stim pink --stim-n 300 --repeats 2 \
    --stim-duration 0.5 --stim-isi 0.25 --frames 0 --fs 15 --seed 1 \
    -o "$out/data/v1.tif" --truth "$out/v1-truth.h5" \
    --stim-out "$out/data/v1.stimuli.tif" --schedule "$out/data/v1.schedule.tsv"
cat > "$out/demo.conf" <<'CONF'
# One file holds the parameters of every stage (see caimg(1), --config).
[fit]
# Gaussian noise after the first hidden layer (h1 of the conv2 preset),
# with a standard deviation equal to each unit's own, during training.
noise = h1=1
# One network instead of the default ensemble of five: the attacks below
# then run about five times faster (see caimg-fit(1), --ensemble).
ensemble = 1
[attack]
images = 12
steps = 10
feature-layer = h1
CONF
sh "$top/pipelines/caimg-pipeline.sh" -c "$out/demo.conf" \
    -s "$out/data/v1.schedule.tsv" -i "$out/data/v1.stimuli.tif" -o "$out/v1" "$out/data/v1.tif"
"$CAIMG" predict -q "$out/v1/model.h5" "$out/data/v1.stimuli.tif" -o "$out/v1/pred.h5"
echo
echo "== every stage against the ground truth (caimg eval)"
"$CAIMG" eval --truth "$out/v1-truth.h5" "$out/v1/mc.h5" "$out/v1/roi.h5" \
    "$out/v1/spikes.h5" "$out/v1/pred.h5" | tee "$out/v1/eval.txt"

echo
echo "== 2. a real recording: the SIMA example (20 frames of 128x256, hippocampal CA1)"
mkdir -p "$out/sima"
"$CAIMG" import -q "$top/testdata/real/sima/example.tif" -o "$out/sima/raw.h5"
"$CAIMG" mc -q "$out/sima/raw.h5" -o "$out/sima/mc.h5"
"$CAIMG" roi -q "$out/sima/mc.h5" -o "$out/sima/roi.h5"
"$CAIMG" report -q "$out/sima/roi.h5" -o "$out/sima/report.html"

echo
echo "Results are in $out/:"
echo "  $out/v1/report.html     the simulated V1 recording: images, motion, traces, model, robustness"
echo "  $out/v1/eval.txt        every stage scored against the ground truth"
echo "  $out/sima/report.html   the real SIMA recording"
echo "Open the .h5 files with h5py, HDFView or 'caimg export'; 'caimg info FILE' summarises one."
