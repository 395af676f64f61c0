#!/bin/sh
# robustness.sh -- the noise-placement experiment as reported: simulated
# stimulus-driven data and, when present, the Allen natural-scene sample.
# Results go to DIR [./robustness]; takes about an hour on 2 cores.
# Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
#
# The simulated responses are the true spike counts of the simulation
# (/truth/spikes) read through the stimulus schedule, on purpose: the
# question is how the model's noise placement changes its robustness, and
# fitting the truth keeps errors of motion correction, ROI extraction and
# deconvolution out of that comparison.  The whole chain, with a noisy fit
# of deconvolved spikes and its attack, is what pipelines/demo.sh runs.
set -e
top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-robustness}
caimg=${CAIMG:-$top/caimg}
threads=${THREADS:-2}
mkdir -p "$out"

echo "== simulated: 1500 pink-noise images (24x24), 2 repeats, 60 neurons"
"$caimg" simulate -q --frames 0 --size 128x128 --neurons 60 --fs 10 --stim pink --stim-n 1500 \
    --stim-size 24x24 --stim-contrast 0.5 --peak-rate 20 --repeats 2 --stim-duration 0.5 \
    --stim-isi 0.3 --seed 3 --stim-out "$out/sim-stim.tif" --schedule "$out/sim-sched.tsv" \
    --truth "$out/sim-truth.h5" -o "$out/sim-movie.h5" -@ "$threads"
rm -f "$out/sim-movie.h5"     # the experiment needs only the truth and the stimuli
# The template model only defines the experiment (architecture, data,
# split), which trains single networks of its own: one network is enough.
"$caimg" fit "$out/sim-truth.h5" --signal /truth/spikes --schedule "$out/sim-sched.tsv" \
    --stimuli "$out/sim-stim.tif" --ensemble 1 -o "$out/sim-base.h5" -@ "$threads"
"$caimg" robustness "$out/sim-base.h5" --stimuli "$out/sim-stim.tif" --images 50 --seeds 3 \
    -o "$out/sim-rob.h5" --tsv "$out/sim-rob.tsv" --plot "$out/sim-rob.svg" -@ "$threads" |
    tee "$out/sim-rob.txt"

A=$top/../shared/realdata/allen-natural-scenes
if [ -f "$A/responses.tsv" ]; then
    echo "== Allen Brain Observatory natural scenes: 118 scenes (31x31), 212 cells"
    "$caimg" fit --responses "$A/responses.tsv" --stimuli "$A/scenes_31x31.tif" --val-fraction 0.2 \
        --ensemble 1 -o "$out/allen-base.h5" -@ "$threads"
    "$caimg" robustness "$out/allen-base.h5" --stimuli "$A/scenes_31x31.tif" --seeds 5 \
        -o "$out/allen-rob.h5" --tsv "$out/allen-rob.tsv" --plot "$out/allen-rob.svg" -@ "$threads" |
        tee "$out/allen-rob.txt"
else
    echo "== $A not found: skipping the Allen sample"
fi
