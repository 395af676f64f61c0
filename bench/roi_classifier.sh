#!/bin/sh
# roi_classifier.sh -- refit the weights of caimg roi's cell classifier
# (src/roi_stats.c) on simulated recordings whose seeds no test uses.
#   sh bench/roi_classifier.sh [DIR]
# Run from the build directory after `make && make check` (needs
# tests/roieval and bench/roi_fitclass); `caimg simulate` is $SIMULATE or
# ./caimg.  For each of four kinds of field -- the typical and hard
# presets, a typical field whose somata are dim at rest but fire more
# (GCaMP cells often are), so that activity alone is seen to make a cell,
# and a hard field without cells (--density 0.0001), so that the neuropil's
# texture alone is seen to make none -- and seeds 901-908 (or $SEEDS), a
# 256x256 field of 2000 frames at 30 Hz is simulated without motion, ROIs are detected with the default thresholds, each ROI
# is labelled a cell when it matches a true soma with IoU > 0.5
# (tests/roieval), and logistic regression is fitted to all of them by IRLS
# (bench/roi_fitclass), with and without the np_excess features and the
# field's prior, each with its accuracy when one seed at a time is left out
# of the fit and scored.  The first fit gives the weights of the
# classifier's second pass (W0, W), with a ridge of 1e-3 per ROI: with the
# prior to tell the kinds of field apart, the 1e-2 that the one-pass model
# needed shrank the weights that matter in the hard fields (see
# src/roi_stats.c); the second gives W0_NOEXCESS, W_NOEXCESS.
# Paste the printed arrays into src/roi_stats.c.
# Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
set -e
b=$(pwd)
sim=${SIMULATE:-$b/caimg}
dir=${1:-$(mktemp -d /tmp/caimg-cls-XXXXXX)}
mkdir -p "$dir"
for kind in typical hard dimactive cellfree; do
    case $kind in
        dimactive) preset=typical; extra="--brightness 0.5 --rate 1.5" ;;
        cellfree) preset=hard; extra="--density 0.0001" ;;
        *) preset=$kind; extra="" ;;
    esac
    for seed in ${SEEDS:-901 902 903 904 905 906 907 908}; do
        m=$dir/${kind}_$seed
        # shellcheck disable=SC2086
        [ -f "$m.h5" ] || "$sim" simulate -q --preset $preset $extra --size 256x256 --frames 2000 \
            --seed $seed --motion-sd 0 --jitter 0 --jump-rate 0 -o "$m.h5" --truth "${m}_truth.h5"
        "$b/caimg" roi -q --anatomy-threshold 3 "$m.h5" -o "${m}_roi.h5"
        "$b/tests/roieval" --features "$m.tsv" "${m}_roi.h5" "${m}_truth.h5" | head -1
    done
done
"$b/bench/roi_fitclass" --ridge 1e-3 "$dir"/*.tsv
"$b/bench/roi_fitclass" --no-excess "$dir"/*.tsv
