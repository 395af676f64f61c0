#!/bin/sh
# cli_eval.sh -- caimg eval: perfect scores for the truth, worse for damage,
# table and TSV output, every bad-input path.
# Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
. "${top_srcdir:-.}/tests/cli-lib.sh"

MKSTAGE=$top_builddir/tests/mkstage
SMALL=$TESTDATA/sim/small.h5

# value SECTION METRIC (from the TSV in $T/out)
value() { awk -F'\t' -v s="$1" -v m="$2" '$1 == s && $2 == m {print $3}' "$T/out"; }
# ge A B: A >= B numerically
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }

# --- the truth itself scores perfectly ---------------------------------------------
"$MKSTAGE" "$SMALL" -o "$T/perfect.h5" --offset 2,-1 || fail "mkstage"
ok "eval perfect" "$CAIMG" eval --tsv --truth "$SMALL" "$T/perfect.h5"
[ "$(head -1 "$T/out")" = "$(printf 'section\tmetric\tvalue')" ] || fail "TSV header"
[ "$(value motion rms_error_px)" = 0.0000 ] || fail "perfect shifts: rms $(value motion rms_error_px)"
ge "$(value motion offset_dy_px)" 1.9999 && ge 2.0001 "$(value motion offset_dy_px)" ||
    fail "template offset not reported: $(value motion offset_dy_px)"
[ "$(value roi f1)" = 1 ] || fail "perfect ROIs: F1 $(value roi f1)"
[ "$(value roi trace_corr_mean)" = 1 ] || fail "perfect traces: $(value roi trace_corr_mean)"
# The true masks' somatic signal is their neuron's own, up to the few pixels
# that neighbouring somata share with them.
ge "$(value roi signal_corr_mean)" 0.99 || fail "perfect masks: signal fidelity $(value roi signal_corr_mean)"
[ "$(value spikes corr_mean)" = 1 ] || fail "perfect spikes: $(value spikes corr_mean)"
n=$(value roi truth_neurons)
[ "$(value roi matched)" = "$n" ] || fail "perfect ROIs: matched $(value roi matched) of $n"

# --- damage lowers the scores -------------------------------------------------------
"$MKSTAGE" "$SMALL" -o "$T/damaged.h5" --shift-noise 0.3 --drop 0.3 --spike-noise 0.3 || fail "mkstage damaged"
ok "eval damaged" "$CAIMG" eval --tsv --truth "$SMALL" "$T/damaged.h5"
ge "$(value motion rms_error_px)" 0.1 || fail "shift noise not seen: $(value motion rms_error_px)"
ge 0.99 "$(value roi recall)" || fail "dropped ROIs not seen: recall $(value roi recall)"
[ "$(value roi precision)" = 1 ] || fail "no false ROIs, precision $(value roi precision)"
ge 0.95 "$(value spikes corr_mean)" || fail "spike noise not seen: $(value spikes corr_mean)"

# ROIs that take a quarter of their pixels from a neighbour still match, but
# their somatic signal is no longer their neuron's alone.
"$MKSTAGE" "$SMALL" -o "$T/mixed.h5" --mix 0.25 --groups roi || fail "mkstage mixed"
ok "eval mixed" "$CAIMG" eval --tsv --truth "$SMALL" "$T/mixed.h5"
ge "$(value roi recall)" 0.99 || fail "mixed ROIs should still match: recall $(value roi recall)"
ge 0.97 "$(value roi signal_corr_mean)" || fail "mixed signal not seen: $(value roi signal_corr_mean)"

# --- the table, per-neuron output, options ---------------------------------------------
ok "table" "$CAIMG" eval --truth "$SMALL" "$T/perfect.h5" --per-neuron "$T/pn.tsv"
grep -q "^roi  *f1  *1$" "$T/out" || fail "table layout: $(grep f1 "$T/out")"
[ "$(head -1 "$T/pn.tsv" | cut -f1-3)" = "$(printf 'neuron\tcounted\troi')" ] || fail "per-neuron header"
[ "$(tail -n +2 "$T/pn.tsv" | wc -l)" -eq "$n" ] || fail "per-neuron rows"
ok "output file" "$CAIMG" eval --tsv --truth "$SMALL" "$T/perfect.h5" -o "$T/table.tsv"
grep -q "^roi	f1	1$" "$T/table.tsv" || fail "-o table"
ok "keep offset" "$CAIMG" eval --tsv --keep-offset --truth "$SMALL" "$T/perfect.h5"
ge "$(value motion rms_error_px)" 2.2 || fail "--keep-offset: rms $(value motion rms_error_px)"
ok "strict iou" "$CAIMG" eval --tsv --iou 0.99 --truth "$SMALL" "$T/damaged.h5"
ok "min spikes" "$CAIMG" eval --tsv --min-spikes 1000000 --truth "$SMALL" "$T/damaged.h5"
[ "$(value roi counted_neurons)" = 0 ] || fail "--min-spikes"
# Spikes alone map one to one onto the truth neurons.
"$MKSTAGE" "$SMALL" -o "$T/spk.h5" --groups deconv || fail "mkstage spikes"
ok "spikes only" "$CAIMG" eval --tsv --truth "$SMALL" "$T/spk.h5"
[ "$(value spikes corr_mean)" = 1 ] || fail "spikes only"
# A model on a stimulus-driven simulation.
"$CAIMG" simulate -q --size 64x64 --frames 0 --stim pink --stim-n 8 --stim-size 12x12 --repeats 2 --truth "$T/st.h5" || fail "simulate stim"
"$MKSTAGE" "$T/st.h5" -o "$T/model.h5" --groups predict || fail "mkstage model"
ok "model" "$CAIMG" eval --tsv --truth "$T/st.h5" "$T/model.h5"
[ "$(value model corr_mean)" = 1 ] || fail "model: $(value model corr_mean)"

# --- bad input: one line, exit 1 (data) or 2 (usage), nothing left ---------------------
bad 2 "no truth file" "" "no --truth" "$CAIMG" eval "$T/perfect.h5"
bad 2 "no stage output" "" "no input" "$CAIMG" eval --truth "$SMALL"
bad 2 "--iou" "" "bad iou" "$CAIMG" eval --iou 2 --truth "$SMALL" "$T/perfect.h5"
bad 1 "nothere.h5" "" "missing input" "$CAIMG" eval --truth "$SMALL" "$T/nothere.h5"
bad 1 "nothere.h5" "" "missing truth" "$CAIMG" eval --truth "$T/nothere.h5" "$T/perfect.h5"
bad 1 "perfect.h5: no /truth group" "" "not a truth file" "$CAIMG" eval --truth "$T/perfect.h5" "$T/perfect.h5"
"$CAIMG" simulate -q --size 64x64 --frames 20 -o "$T/movie.h5" || fail "simulate movie"
bad 1 "nothing to evaluate" "$T/x.tsv" "nothing to evaluate" "$CAIMG" eval --truth "$SMALL" "$T/movie.h5" -o "$T/x.tsv"
"$MKSTAGE" "$T/st.h5" -o "$T/short.h5" --groups mc || fail "mkstage short"
bad 1 "short.h5: /mc/shifts is \[[0-9]*\]\[2\], expected \[300\]\[2\]" "$T/y.tsv" "shifts of another recording" \
    "$CAIMG" eval --truth "$SMALL" "$T/short.h5" --per-neuron "$T/y.tsv"
bad 1 "the truth has no stimuli" "" "model without stimuli" "$CAIMG" eval --truth "$SMALL" "$T/model.h5"

ok "help" "$CAIMG" eval -h
finish
