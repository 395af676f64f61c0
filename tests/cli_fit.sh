#!/bin/sh
# cli_fit.sh -- caimg fit and caimg predict on a simulated experiment with
# known receptive fields (tests/mkstim), and every bad input the fit issue
# names: schedules past the end of the recording, stimulus ids with no
# image, images of mixed sizes, neurons with zero variance, NaN and
# infinite responses.  Each bad input gives one clear line, exit 1 (data)
# or 2 (usage), and no output left behind.
# Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
. "${top_srcdir:-.}/tests/cli-lib.sh"

MKSTIM=$top_builddir/tests/mkstim
# L: 1000 stimuli shown twice, enough to learn the complex cells; D: the
# default 240 stimuli shown 4 times, for everything else.
L=$T/large
D=$T/sim
mkdir "$L" "$D" && "$MKSTIM" -n 1000,2 "$L" && "$MKSTIM" "$D" || { fail "mkstim"; finish; exit 1; }
# A small conv core: fast enough for make check, big enough to learn.
ARCH="conv 8 9x9 pad=same smooth=0.02; elu; noise name=h1; conv 8 3x3 pad=same; elu;
readout factorised l1=0.002 smooth=0.002; softplus"
FIT="$CAIMG fit -q"

# attr FILE OBJECT NAME: a scalar attribute.
attr() {
    h5dump -a "$2/$3" "$1" 2>/dev/null | sed -n 's/^ *(0): *\([-0-9.eE+na]*\).*/\1/p' | head -1
}
# dump FILE DATASET: the values of a dataset, one per line.
dump() {
    h5dump -y -w 0 -d "$2" -o "$T/dump" "$1" >/dev/null 2>&1 && tr ', ' '\n\n' < "$T/dump" | grep -v '^$'
}
# ge A B: A >= B numerically.
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }

# ---- fitting traces + schedule ------------------------------------------------
ok "fit spikes + schedule" $FIT "$L/spikes.h5" --schedule "$L/schedule.tsv" --stimuli "$L/stimuli.tif" \
    --arch "$ARCH" --noise h1=0.3 --lr 0.005 -o "$L/m.h5" -@ 2
r=$(attr "$L/m.h5" /fit/eval mean_corr_avg)
ge "$r" 0.7 || fail "held-out correlation with trial averages $r < 0.7"
fv=$(attr "$L/m.h5" /fit/eval mean_feve)
ge "$fv" 0.6 || fail "held-out FEVE $fv < 0.6"
[ "$(dump "$L/m.h5" /fit/neuron_index | wc -l)" = 8 ] || fail "neuron_index should list 8 neurons"
ok "per-neuron metrics export as a table" "$CAIMG" export -q "$L/m.h5" -d /fit/eval -o "$L/eval.tsv"
[ "$(wc -l < "$L/eval.tsv")" = 9 ] || fail "/fit/eval: expected a header and 8 rows"
h5ls "$L/m.h5/fit/test/images" | grep -q "{200, 16, 16}" || fail "/fit/test/images missing"
[ "$(dump "$L/m.h5" /fit/stimulus_split | grep -c '^2$')" = 200 ] || fail "20% of 1000 stimuli should be test"
[ "$(dump "$L/m.h5" /fit/stimulus_split | grep -c '^1$')" -ge 70 ] || fail "validation stimuli missing"
h5dump -a /model/arch "$L/m.h5" | grep -q "noise name=h1 noise_rel=0.3" || fail "noise not recorded in /model arch"
h5dump -a /provenance/01_fit/parameters "$L/m.h5" | grep -q "window = 0" || fail "window not in provenance"
[ -n "$(attr "$L/m.h5" /deconv fs)" ] || fail "fit output does not link the input's /deconv"

# ---- predict --------------------------------------------------------------------
ok "predict TSV" "$CAIMG" predict -q "$L/m.h5" "$L/stimuli.tif" -o "$L/p.tsv"
[ "$(wc -l < "$L/p.tsv")" = 1001 ] || fail "predict TSV: expected a header and 1000 rows"
[ "$(head -1 "$L/p.tsv" | awk -F'\t' '{print NF}')" = 9 ] || fail "predict TSV: expected 9 columns"
# Well-driven neurons on the held-out stimuli: correlation with the true
# expected rates >= 0.8, simple (0-3) and complex (4-7) cells alike.  Well
# driven as caimg-fit(1) defines it: the stimulus explains at least half
# of the single-trial variance (ev_frac >= 0.5, measured by fit from the
# repeats), so that the 2-trial average itself would correlate about 0.82
# with the true rate.  Here all 8 are (ev_frac 0.59-0.88), and at least 3
# of each type must be, so that the test cannot pass by excluding them.
dump "$L/m.h5" /fit/stimulus_split > "$T/split"
nsimple=0 ncomplex=0
for c in 0 1 2 3 4 5 6 7; do
    ev=$(awk -v c=$c 'NR == c + 2 { print $3 }' "$L/eval.tsv")
    r=$(awk -v c=$c 'FNR == 1 { f++ } f == 1 { s[FNR] = $1; next }
        f == 2 && FNR > 1 { t[FNR - 1] = $(c + 1); next }
        f == 3 && FNR > 1 { i = FNR - 1; if (s[i] != 2) next; x = $(c + 2); y = t[i];
            n++; sx += x; sy += y; sxx += x * x; syy += y * y; sxy += x * y }
        END { print (n * sxy - sx * sy) / sqrt((n * sxx - sx * sx) * (n * syy - sy * sy)) }' \
        "$T/split" "$L/truth.tsv" "$L/p.tsv")
    if [ $c -lt 4 ]; then type=simple; else type=complex; fi
    ge "$ev" 0.5 || continue
    if [ $c -lt 4 ]; then nsimple=$((nsimple + 1)); else ncomplex=$((ncomplex + 1)); fi
    ge "$r" 0.8 || fail "$type cell $c (ev_frac $ev): held-out correlation with the true rate $r < 0.8"
done
[ $nsimple -ge 3 ] && [ $ncomplex -ge 3 ] ||
    fail "only $nsimple simple and $ncomplex complex cells have ev_frac >= 0.5"
ok "predict HDF5 with noise samples" "$CAIMG" predict -q "$L/m.h5" "$D/stimuli.tif" --samples 8 -o "$D/p.h5"
h5ls "$D/p.h5/predict/responses" | grep -q "{240, 8}" || fail "predict HDF5: /predict/responses not 240x8"
[ "$(attr "$D/p.h5" /predict samples)" = 8 ] || fail "predict HDF5: samples attribute"
ok "predict again" "$CAIMG" predict -q "$L/m.h5" "$D/stimuli.tif" --samples 8 -o "$D/p2.h5"
h5diff -q "$D/p.h5" "$D/p2.h5" /predict/responses /predict/responses || fail "noisy predictions not reproducible"
ok "predict to stdout" sh -c "'$CAIMG' predict -q '$L/m.h5' '$D/stimuli.tif' -o - | head -1 | grep -q '^image'"

# ---- determinism: same seed, 1 and 2 threads; ensembles -------------------------------
ok "fit 1 thread" $FIT "$D/spikes.h5" --schedule "$D/schedule.tsv" --stimuli "$D/stimuli.tif" \
    --arch "$ARCH" --noise h1=0.3 --noise input=0.2 --epochs 4 --seed 7 --ensemble 2 -o "$D/d1.h5" -@ 1
ok "fit 2 threads" $FIT "$D/spikes.h5" --schedule "$D/schedule.tsv" --stimuli "$D/stimuli.tif" \
    --arch "$ARCH" --noise h1=0.3 --noise input=0.2 --epochs 4 --seed 7 --ensemble 2 -o "$D/d2.h5" -@ 2
for g in /model /model_member1 /fit/curve/train_loss; do
    h5diff -q "$D/d1.h5" "$D/d2.h5" $g $g || fail "same seed, different threads: $g differs"
done
ok "fit other seed" $FIT "$D/spikes.h5" --schedule "$D/schedule.tsv" --stimuli "$D/stimuli.tif" \
    --arch "$ARCH" --epochs 2 --seed 8 --ensemble 1 -o "$D/d3.h5"
h5diff -q "$D/d1.h5" "$D/d3.h5" /model/conv1/weight /model/conv1/weight && fail "different seeds, same weights"
# An ensemble's first network is the single network of its seed, the
# second that of the next seed, and it predicts neither's responses.
ok "fit one network" $FIT "$D/spikes.h5" --schedule "$D/schedule.tsv" --stimuli "$D/stimuli.tif" \
    --arch "$ARCH" --noise h1=0.3 --noise input=0.2 --epochs 4 --seed 7 --ensemble 1 -o "$D/e.h5" -@ 2
h5diff -q "$D/d2.h5" "$D/e.h5" /model/conv1/weight /model/conv1/weight ||
    fail "the ensemble's first network differs from the single network of its seed"
h5diff -q "$D/d2.h5" "$D/d2.h5" /model/conv1/weight /model_member1/conv1/weight &&
    fail "the ensemble's second network has the first one's weights"
[ "$(attr "$D/d2.h5" /model members)" = 2 ] || fail "/model members attribute"
[ -z "$(attr "$D/e.h5" /model members)" ] || fail "a single network has a members attribute"
[ "$(dump "$D/d2.h5" /fit/members/seed | tr '\n' ' ')" = "7 8 " ] || fail "/fit/members/seed"
ok "predict an ensemble" "$CAIMG" predict -q "$D/d2.h5" "$D/stimuli.tif" -o "$D/ep.h5"
ok "predict its first network" "$CAIMG" predict -q "$D/e.h5" "$D/stimuli.tif" -o "$D/dp.h5"
h5diff -q "$D/ep.h5" "$D/dp.h5" /predict/responses /predict/responses &&
    fail "the ensemble predicts what its first network does"
# The evaluation used the ensemble too: /fit/test/pred is what predict gives.
s=$(dump "$D/d2.h5" /fit/test/stimulus | head -1)
dump "$D/d2.h5" /fit/test/pred | head -8 > "$T/tp"
dump "$D/ep.h5" /predict/responses | sed -n "$((s * 8 + 1)),$((s * 8 + 8))p" > "$T/pp"
[ "$(wc -l < "$T/tp")" = 8 ] && paste "$T/tp" "$T/pp" |
    awk '{ d = $1 - $2; if (d < 0) d = -d; if (d > 1e-5 * (1 + ($1 < 0 ? -$1 : $1))) exit 1 }' ||
    fail "the ensemble's test predictions (/fit/test/pred) are not predict's"

# ---- a ready response matrix with a split column -------------------------------------
ok "fit --responses" $FIT --responses "$D/responses.tsv" --stimuli "$D/stimuli.tif" --arch ln \
    --epochs 5 -o "$D/r.h5"
[ "$(dump "$D/r.h5" /fit/stimulus_split | grep -c '^2$')" = 40 ] || fail "split column not used"
h5dump -a /fit/neuron_names "$D/r.h5" | grep -q "cell0" || fail "neuron names not kept"
ok "predict TSV names" "$CAIMG" predict -q "$D/r.h5" "$D/stimuli.tif" -o "$D/rp.tsv"
head -1 "$D/rp.tsv" | grep -q "cell7" || fail "predict TSV header lacks neuron names"
ok "--crop and --resize" $FIT --responses "$D/responses.tsv" --stimuli "$D/stimuli.tif" --arch ln \
    --epochs 2 --crop 2,2,12,12 --resize 6x6 -o "$D/c.h5"
[ "$(attr "$D/c.h5" /model input_height)" = 6 ] || fail "--resize not applied"
[ "$(attr "$D/c.h5" /model crop_h)" = 12 ] || fail "--crop not recorded"
ok "predict cropped model" "$CAIMG" predict -q "$D/c.h5" "$D/stimuli.tif" -o "$D/cp.tsv"

# ---- bad inputs ------------------------------------------------------------------------
out=$T/bad.h5
for v in past-end no-image zero-neuron all-zero nan inf no-fs; do
    mkdir "$T/$v" && "$MKSTIM" "$T/$v" $v || fail "mkstim $v"
done
S="--stimuli $D/stimuli.tif --arch ln --epochs 2 -o $out"
bad 1 "schedule.tsv: row 960: the response window .* ends past the end of the recording" "$out" \
    "schedule past the end" "$CAIMG" fit "$T/past-end/spikes.h5" --schedule "$T/past-end/schedule.tsv" $S
bad 1 "presentation 18 shows stimulus 240, which has no image: .*stimuli.tif has 240 pages" "$out" \
    "stimulus without image" "$CAIMG" fit "$T/no-image/spikes.h5" --schedule "$T/no-image/schedule.tsv" $S
bad 1 "mixed-size.tif: .*page" "$out" "images of mixed sizes" \
    "$CAIMG" fit --responses "$D/responses.tsv" --stimuli "$TESTDATA/bad/mixed-size.tif" -o "$out"
bad 1 "no neuron has responses that vary" "$out" "all neurons silent" \
    "$CAIMG" fit "$T/all-zero/spikes.h5" --schedule "$T/all-zero/schedule.tsv" $S
bad 1 "spikes.h5:/deconv/spikes: neuron 2 has an infinite value at frame 45, in the response window of .*schedule.tsv row 6" "$out" "infinite trace" \
    "$CAIMG" fit "$T/inf/spikes.h5" --schedule "$T/inf/schedule.tsv" $S
bad 1 "frame rate .* is unknown .*--fs" "$out" "no frame rate" \
    "$CAIMG" fit "$T/no-fs/spikes.h5" --schedule "$T/no-fs/schedule.tsv" $S
ok "no frame rate, --fs given" $FIT "$T/no-fs/spikes.h5" --schedule "$T/no-fs/schedule.tsv" --fs 10 $S
rm -f "$out"
# Documented exclusions: a silent neuron is dropped with a warning; NaN
# responses are missing values.
ok "zero-variance neuron" "$CAIMG" fit "$T/zero-neuron/spikes.h5" --schedule "$T/zero-neuron/schedule.tsv" $S
grep -q "warning: 1 neuron excluded: no variance across training stimuli (8)" "$T/err" ||
    fail "zero-variance neuron: no warning ($(cat "$T/err" | head -3))"
[ "$(dump "$out" /fit/excluded)" = 8 ] || fail "zero-variance neuron not listed in /fit/excluded"
[ "$(dump "$out" /fit/neuron_index | wc -l)" = 8 ] || fail "zero-variance neuron not excluded"
# Predictions still have one column per neuron of the data: NaN for the
# excluded one, so columns line up with the traces.
ok "predict with an excluded neuron" "$CAIMG" predict -q "$out" "$D/stimuli.tif" -o "$T/zp.tsv"
[ "$(head -1 "$T/zp.tsv" | awk -F'\t' '{print NF}')" = 10 ] || fail "predict: expected 9 neuron columns"
[ "$(sed -n 2p "$T/zp.tsv" | cut -f10)" = nan ] || fail "predict: excluded neuron should be NaN"
rm -f "$out"
ok "NaN responses" "$CAIMG" fit "$T/nan/spikes.h5" --schedule "$T/nan/schedule.tsv" $S
grep -q "warning: 20 of .* responses are NaN; they are treated as missing" "$T/err" ||
    fail "NaN responses: no warning ($(head -3 "$T/err"))"
rm -f "$out"
# Response matrices.
printf 'stimulus\tsplit\ta\tb\n0\ttrain\t1\t2\n1\tmaybe\t1\t2\n' > "$T/split.tsv"
bad 1 "split.tsv: line 3: split is 'maybe'" "$out" "bad split value" \
    "$CAIMG" fit --responses "$T/split.tsv" $S
printf 'stimulus\ta\tb\n0\t1\tinf\n1\t1\t2\n' > "$T/inf.tsv"
bad 1 "inf.tsv: line 2, column 3: infinite value" "$out" "infinite response" \
    "$CAIMG" fit --responses "$T/inf.tsv" $S
printf 'stimulus\ta\n0.5\t1\n1\t2\n' > "$T/frac.tsv"
bad 1 "frac.tsv: data row 1: stimulus 0.5 is not a stimulus id" "$out" "fractional stimulus" \
    "$CAIMG" fit --responses "$T/frac.tsv" $S
printf 'stimulus\tsplit\ta\n0\ttrain\t1\n0\ttest\t2\n1\ttrain\t3\n' > "$T/both.tsv"
bad 1 "both.tsv: stimulus 0 is in both the train and the test split" "$out" "stimulus in both splits" \
    "$CAIMG" fit --responses "$T/both.tsv" $S
printf 'neuron\ta\n0\t1\n' > "$T/nostim.tsv"
bad 1 "nostim.tsv: no column named stimulus" "$out" "no stimulus column" \
    "$CAIMG" fit --responses "$T/nostim.tsv" $S
awk 'NR <= 2 { print; next } { $3 = -$3; print }' OFS='\t' "$D/responses.tsv" > "$T/neg.tsv"
bad 1 "Poisson loss needs non-negative responses" "$out" "negative responses, Poisson" \
    "$CAIMG" fit --responses "$T/neg.tsv" --loss poisson $S
ok "negative responses, auto loss is MSE" "$CAIMG" fit -q --responses "$T/neg.tsv" $S
h5dump -a /fit/loss "$out" | grep -q mse || fail "auto loss did not choose mse for negative responses"
rm -f "$out"
bad 1 "nosuch.tsv: No such file" "$out" "missing responses" "$CAIMG" fit --responses "$T/nosuch.tsv" $S
# Usage errors.
bad 2 "--stimuli IMAGES.tif is required" "$out" "no stimuli" \
    "$CAIMG" fit --responses "$D/responses.tsv" -o "$out"
bad 2 "--schedule is required" "$out" "no schedule" \
    "$CAIMG" fit "$D/spikes.h5" --stimuli "$D/stimuli.tif" -o "$out"
bad 2 "architecture layer 1 \('conv 8 9y9'\): bad kernel size '9y9'" "$out" "bad architecture" \
    "$CAIMG" fit --responses "$D/responses.tsv" --stimuli "$D/stimuli.tif" --arch "conv 8 9y9; readout dense" -o "$out"
bad 2 "--noise: no layer named 'h9'" "$out" "noise on a missing layer" \
    "$CAIMG" fit --responses "$D/responses.tsv" --stimuli "$D/stimuli.tif" --noise h9=1 -o "$out"
bad 2 "--noise: 'h1=lots'" "$out" "bad noise value" \
    "$CAIMG" fit --responses "$D/responses.tsv" --stimuli "$D/stimuli.tif" --noise h1=lots -o "$out"
bad 2 "--crop 10,10,12,12 does not fit" "$out" "crop outside the image" \
    "$CAIMG" fit --responses "$D/responses.tsv" --stimuli "$D/stimuli.tif" --crop 10,10,12,12 -o "$out"
bad 2 "--ema: '1' is not a number in \\[0, " "$out" "weight-average decay of 1" \
    "$CAIMG" fit --responses "$D/responses.tsv" --stimuli "$D/stimuli.tif" --ema 1 -o "$out"
bad 2 "--lr-decay factor: '0' is not a number" "$out" "learning-rate decay factor 0" \
    "$CAIMG" fit --responses "$D/responses.tsv" --stimuli "$D/stimuli.tif" --lr-decay 2:0 -o "$out"
bad 2 "--ensemble: '0'" "$out" "an ensemble of 0 networks" \
    "$CAIMG" fit --responses "$D/responses.tsv" --stimuli "$D/stimuli.tif" --ensemble 0 -o "$out"
bad 2 "unrecognized option|unknown option" "$out" "unknown option" \
    "$CAIMG" fit --frobnicate --responses "$D/responses.tsv" --stimuli "$D/stimuli.tif" -o "$out"
# Predict on bad inputs.
"$MKTIFF" -o "$T/big.tif" -w 20 -h 20 -n 3 -t uint8 >/dev/null 2>&1 || fail "mktiff"
bad 1 "big.tif: images are 20x20, but the model was fitted on 16x16 images" "$T/p.tsv" "predict: wrong size" \
    "$CAIMG" predict "$L/m.h5" "$T/big.tif" -o "$T/p.tsv"
bad 1 "mixed-size.tif" "$T/p.tsv" "predict: mixed sizes" \
    "$CAIMG" predict "$L/m.h5" "$TESTDATA/bad/mixed-size.tif" -o "$T/p.tsv"
bad 1 "spikes.h5: no model" "$T/p.tsv" "predict: not a model" \
    "$CAIMG" predict "$D/spikes.h5" "$D/stimuli.tif" -o "$T/p.tsv"
bad 2 "expected MODEL.h5 and IMAGES.tif" "$T/p.tsv" "predict: one argument" \
    "$CAIMG" predict "$L/m.h5" -o "$T/p.tsv"
finish
