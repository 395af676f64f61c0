#!/bin/sh
# cli_pipeline.sh -- the whole chain on a small simulated stimulus-driven
# recording: simulate -> import -> mc -> roi -> dff -> deconv -> fit ->
# attack -> report, through both ready pipelines, each stage checked against
# the ground truth with caimg eval (printed as one table).
# Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
. "${top_srcdir:-.}/tests/cli-lib.sh"

P=$top_srcdir/pipelines
bindir=$(dirname "$CAIMG")
export PATH="$bindir:$PATH"

# 96x96 pixels, 150 natural-like images shown twice at 15 Hz (about 4
# minutes of recording): small enough for a test, big enough that every
# stage has something to find.
mkdir -p "$T/data"
ok "simulate" "$CAIMG" simulate -q --size 96x96 --stim pink --stim-n 150 --repeats 2 \
    --stim-duration 0.5 --stim-isi 0.25 --frames 0 --fs 15 --seed 5 \
    -o "$T/data/rec.tif" --truth "$T/truth.h5" \
    --stim-out "$T/data/rec.stimuli.tif" --schedule "$T/data/rec.schedule.tsv"

# A config file for the whole experiment; attack kept small for a test.
cat > "$T/exp.conf" <<'CONF'
[attack]
eps = 0,0.02,0.05
images = 20
steps = 10
CONF

# --- the shell pipeline -----------------------------------------------------
ok "shell pipeline" sh "$P/caimg-pipeline.sh" -c "$T/exp.conf" -s "$T/data/rec.schedule.tsv" \
    -i "$T/data/rec.stimuli.tif" -o "$T/sh" "$T/data/rec.tif"
for f in raw mc roi dff spikes model robustness; do
    [ -s "$T/sh/$f.h5" ] || fail "shell pipeline: $f.h5 missing"
done
[ -s "$T/sh/report.html" ] || fail "shell pipeline: no report"
grep -q "<section id='robustness'>" "$T/sh/report.html" || fail "report lacks the robustness section"
grep -q "<section id='model'>" "$T/sh/report.html" || fail "report lacks the model section"
# Provenance records the config values each stage used.
"$CAIMG" info -v "$T/sh/robustness.h5" | grep -q "eps = 0,0.02,0.05" ||
    fail "config values not recorded in provenance"

# Every stage against the truth, one table.
ok "predict" "$CAIMG" predict -q "$T/sh/model.h5" "$T/data/rec.stimuli.tif" -o "$T/sh/pred.h5"
ok "eval" "$CAIMG" eval --truth "$T/truth.h5" --tsv \
    "$T/sh/mc.h5" "$T/sh/roi.h5" "$T/sh/spikes.h5" "$T/sh/pred.h5"
cp "$T/out" "$T/eval.tsv"
echo "== caimg eval of every stage against the ground truth"
column -t -s "$(printf '\t')" "$T/eval.tsv" 2>/dev/null || cat "$T/eval.tsv"
val() { awk -F'\t' -v s="$1" -v m="$2" '$1 == s && $2 == m {print $3}' "$T/eval.tsv"; }
atleast() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && a + 0 >= b + 0) }'; }
atmost() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && a + 0 <= b + 0) }'; }
# Floors for this small, short, noisy recording (the per-stage tests hold
# the stages to their own targets); each is far above what a broken stage
# gives (shift error of pixels, F1 near 0, correlation near 0).
atmost "$(val motion rms_error_px)" 0.15 || fail "motion RMS error $(val motion rms_error_px) px"
atleast "$(val roi f1)" 0.8 || fail "ROI F1 $(val roi f1)"
atleast "$(val spikes corr_mean)" 0.35 || fail "spike correlation $(val spikes corr_mean)"
atleast "$(val model corr_mean)" 0.2 || fail "model correlation $(val model corr_mean)"

# A rerun redoes nothing.
ok "shell pipeline rerun" sh "$P/caimg-pipeline.sh" -c "$T/exp.conf" -s "$T/data/rec.schedule.tsv" \
    -i "$T/data/rec.stimuli.tif" -o "$T/sh" "$T/data/rec.tif"
[ "$(grep -c 'is up to date' "$T/out")" -eq 7 ] || fail "rerun redid stages: $(cat "$T/out")"

# --- the Makefile pipeline, on the same data ------------------------------------
ok "make pipeline" make -s -f "$P/caimg.mk" DATA="$T/data" OUT="$T/mk" CONFIG="$T/exp.conf" \
    CAIMG="$CAIMG" -j2 all models
for f in raw mc roi dff spikes model robustness; do
    [ -s "$T/mk/rec/$f.h5" ] || fail "make pipeline: $f.h5 missing"
done
[ -s "$T/mk/rec/report.html" ] || fail "make pipeline: no report"
ok "make rerun" make -f "$P/caimg.mk" DATA="$T/data" OUT="$T/mk" CONFIG="$T/exp.conf" \
    CAIMG="$CAIMG" -q all models
# Changing the config makes every stage out of date.
touch "$T/exp.conf"
make -f "$P/caimg.mk" DATA="$T/data" OUT="$T/mk" CONFIG="$T/exp.conf" CAIMG="$CAIMG" -q all \
    && fail "make: a newer config did not make the results out of date"

# --- a failing stage stops the pipeline and keeps earlier results ---------------
awk 'NR == 1 {print; next} {print $1 "\t999\t" $3}' "$T/data/rec.schedule.tsv" > "$T/bad.tsv"
sh "$P/caimg-pipeline.sh" -s "$T/bad.tsv" -i "$T/data/rec.stimuli.tif" -o "$T/sh2" \
    "$T/data/rec.tif" >"$T/out" 2>"$T/err"
[ $? -ne 0 ] || fail "a failing stage did not stop the shell pipeline"
grep -q "^caimg fit: .*bad.tsv" "$T/err" || fail "the stage's error was not shown: $(tail -2 "$T/err")"
[ -s "$T/sh2/spikes.h5" ] || fail "earlier results were not kept"
[ -e "$T/sh2/model.h5" ] && fail "a failed fit left a model"
[ -e "$T/sh2/report.html" ] && fail "the pipeline went on after a failure"

finish
