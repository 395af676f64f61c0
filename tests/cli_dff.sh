#!/bin/sh
# cli_dff.sh -- caimg dff: outputs and their accuracy on simulated ROI
# traces, every baseline method, the F0 policy, every bad-input path.
# Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
. "${top_srcdir:-.}/tests/cli-lib.sh"

MKTRACES=$top_builddir/tests/mktraces
# value SECTION METRIC (from the TSV in $T/out)
value() { awk -F'\t' -v s="$1" -v m="$2" '$1 == s && $2 == m {print $3}' "$T/out"; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }

"$CAIMG" simulate -q --size 96x96 --frames 1500 --seed 2 --truth "$T/truth.h5" || fail "simulate"
"$MKTRACES" "$T/truth.h5" -o "$T/roi.h5" --snr 5 || fail "mktraces"
N=$(h5ls "$T/roi.h5/roi/F" | sed 's/.*{\([0-9]*\),.*/\1/')

# --- the default: layout, units, provenance, accuracy ---------------------------
ok "dff" "$CAIMG" dff "$T/roi.h5" -o "$T/dff.h5"
# The recorded parameters replay through --config to the same result.
params_config "$T/dff.h5" dff "$T/dffr.ini" || fail "no dff record"
ok "dff --config from the provenance" "$CAIMG" dff -q --config "$T/dffr.ini" "$T/roi.h5" -o "$T/dffr.h5"
h5diff -q "$T/dff.h5" "$T/dffr.h5" /dff /dff || fail "dff replayed from its provenance differs"
for d in dff baseline; do
    h5ls "$T/dff.h5/dff/$d" | grep -Eq "\{$N(/Inf)?, 1500\}" || fail "/dff/$d is not [$N][1500]"
done
for d in r noise_psd noise_cascade; do
    h5ls "$T/dff.h5/dff/$d" | grep -q "{$N}" || fail "/dff/$d is not [$N]"
    h5dump -a "/dff/$d/units" "$T/dff.h5" >/dev/null 2>&1 || fail "/dff/$d has no units"
done
h5dump -a /dff/dff/units "$T/dff.h5" | grep -q "fraction" || fail "units of /dff/dff"
[ "$(h5dump -a /dff/fs "$T/dff.h5" | sed -n 's/^ *(0): //p')" = 30 ] || fail "fs attribute"
[ "$(h5val "$T/dff.h5" /dff/r 0)" = 0.7 ] || fail "r is not 0.7: $(h5val "$T/dff.h5" /dff/r 0)"
finite "$T/dff.h5" /dff/dff || fail "non-finite dF/F"
"$CAIMG" info "$T/dff.h5" | grep -q "01_dff" || fail "no provenance record"
"$CAIMG" info "$T/dff.h5" | grep -q "/roi/F" || fail "/roi not linked"
# dF/F against the true noise-free dF/F (SNR 5 per spike).
ok "eval dff" "$CAIMG" eval --tsv --truth "$T/truth.h5" "$T/dff.h5"
ge "$(value roi dff_corr_mean)" 0.6 || fail "dF/F correlation with the truth $(value roi dff_corr_mean)"

# --- every baseline method and option --------------------------------------------
for b in "--baseline percentile" "--baseline percentile --percentile auto" \
         "--baseline percentile --window 20" "--baseline lowpass" "--baseline lowpass --window 30" \
         "--baseline constant --percentile 20" "--baseline maximin --sigma 0 --window-frames 600" \
         "--noise-method logmean --noise-band 0.3,0.5" "--noise-method median" \
         "--f0-floor 0.5 --block 2 --deflate 4 -@ 1"; do
    # shellcheck disable=SC2086
    ok "dff $b" "$CAIMG" dff -q $b "$T/roi.h5" -o "$T/b.h5"
    finite "$T/b.h5" /dff/dff || fail "$b: non-finite dF/F"
    ok "eval $b" "$CAIMG" eval --tsv --truth "$T/truth.h5" "$T/b.h5"
    ge "$(value roi dff_corr_mean)" 0.5 || fail "$b: dF/F correlation $(value roi dff_corr_mean)"
done
# A window in frames is the same as in seconds (150 frames = 5 s at 30 Hz)
# for every method that takes one; lowpass once ignored --window-frames.
for b in lowpass percentile maximin; do
    ok "$b --window 5" "$CAIMG" dff -q --baseline $b --window 5 "$T/roi.h5" -o "$T/ws.h5"
    ok "$b --window-frames 150" "$CAIMG" dff -q --baseline $b --window-frames 150 "$T/roi.h5" -o "$T/wf-$b.h5"
    h5diff -q "$T/ws.h5" "$T/wf-$b.h5" /dff/baseline /dff/baseline ||
        fail "$b: --window-frames 150 and --window 5 give different baselines"
    "$CAIMG" info -v "$T/wf-$b.h5" | grep -q "window-frames = 150" || fail "$b: window-frames not in provenance"
    "$CAIMG" info -v "$T/ws.h5" | grep -q "window-frames" && fail "$b --window 5: provenance records a window in frames too"
done
ok "lowpass without window" "$CAIMG" dff -q --baseline lowpass "$T/roi.h5" -o "$T/w0.h5"
h5diff -q "$T/w0.h5" "$T/wf-lowpass.h5" /dff/baseline /dff/baseline >/dev/null &&
    fail "lowpass: --window-frames 150 gives the constant baseline"
# Estimated neuropil coefficient: the traces were made with r = 0.7.
ok "estimate r" "$CAIMG" dff -q --neuropil estimate "$T/roi.h5" -o "$T/r.h5"
m=$(h5dump -d /dff/r "$T/r.h5" | sed -n 's/^ *([0-9]*): //p' | tr ',' '\n' |
    awk 'NF {s += $1; n++} END {print s / n}')
ge "$m" 0.6 && ge 0.8 "$m" || fail "estimated r averages $m, truth 0.7"
ok "no neuropil" "$CAIMG" dff -q --neuropil-traces none "$T/roi.h5" -o "$T/nn.h5"
[ "$(h5val "$T/nn.h5" /dff/r 0)" = 0 ] || fail "--neuropil-traces none: r $(h5val "$T/nn.h5" /dff/r 0)"
ok "config" sh -c "printf '[dff]\nbaseline = constant\n' > '$T/c.cfg' && '$CAIMG' dff -q --config '$T/c.cfg' '$T/roi.h5' -o '$T/cfg.h5'"
h5dump -a /dff/baseline_method "$T/cfg.h5" | grep -q constant || fail "--config baseline"

# --- no ROIs: a blank movie's roi output is valid (caimg-h5(5)), so is its dF/F ---------
"$top_builddir/tests/mkcells" -o "$T/blank.h5" -Y 32 -X 40 -T 200 --blank --mc || fail "mkcells blank"
"$CAIMG" roi -q "$T/blank.h5" -o "$T/rb.h5" || fail "roi on a blank movie"
ok "no ROIs" "$CAIMG" dff "$T/rb.h5" -o "$T/db.h5"
[ ! -s "$T/err" ] || fail "no ROIs: stderr $(head -1 "$T/err")"
for d in dff baseline; do
    h5dump -H -d "/dff/$d" "$T/db.h5" | grep -q "( 0, 200 )" || fail "no ROIs: /dff/$d is not [0][200]"
done
for d in r noise_psd noise_cascade; do
    h5dump -H -d "/dff/$d" "$T/db.h5" | grep -q "( 0 )" || fail "no ROIs: /dff/$d is not [0]"
done
[ "$(h5dump -a /dff/fs "$T/db.h5" | sed -n 's/^ *(0): //p')" = 30 ] || fail "no ROIs: fs attribute"

# --- the F0 policy and damaged traces: warnings, never NaN ----------------------------
"$MKTRACES" "$T/truth.h5" -o "$T/dmg.h5" --snr 5 --nan 1 --zero 2 || fail "mktraces damaged"
ok "damaged" "$CAIMG" dff "$T/dmg.h5" -o "$T/dmg-dff.h5"
grep -q "ROI 1: .*NaN" "$T/err" || fail "no NaN warning for ROI 1: $(cat "$T/err")"
grep -q "ROI 2: the trace is zero" "$T/err" || fail "no zero-trace warning for ROI 2"
finite "$T/dmg-dff.h5" /dff/dff || fail "damaged: non-finite dF/F"
# r = 3 drives Fc far below zero: floored denominators, one warning per ROI.
ok "negative baseline" "$CAIMG" dff --neuropil 3 "$T/roi.h5" -o "$T/neg.h5"
[ "$(grep -c 'dF/F denominators floored' "$T/err")" -eq "$N" ] || fail "F0 floor warnings: $(head -2 "$T/err")"
finite "$T/neg.h5" /dff/dff || fail "negative baseline: non-finite dF/F"
ok "quiet" "$CAIMG" dff -q --neuropil 3 "$T/roi.h5" -o "$T/neg2.h5"
[ ! -s "$T/err" ] || fail "-q printed: $(head -1 "$T/err")"

# --- the frame rate ----------------------------------------------------------------------
"$MKTRACES" "$T/truth.h5" -o "$T/nofs.h5" --no-fs || fail "mktraces no-fs"
bad 1 "nofs.h5: the frame rate is unknown.*--fs" "$T/x.h5" "no frame rate" \
    "$CAIMG" dff "$T/nofs.h5" -o "$T/x.h5"
ok "--fs" "$CAIMG" dff -q --fs 15 "$T/nofs.h5" -o "$T/fs.h5"
[ "$(h5dump -a /dff/fs "$T/fs.h5" | sed -n 's/^ *(0): //p')" = 15 ] || fail "--fs not recorded"

# --- bad input: one line, exit 1 (data) or 2 (usage), nothing left ----------------------
bad 1 "nothere.h5" "$T/x.h5" "missing input" "$CAIMG" dff "$T/nothere.h5" -o "$T/x.h5"
printf 'not hdf5\n' > "$T/text.h5"
bad 1 "text.h5: not an HDF5 file" "$T/x.h5" "not HDF5" "$CAIMG" dff "$T/text.h5" -o "$T/x.h5"
bad 1 "roi.h5: no dataset /roi/G" "$T/x.h5" "missing traces" \
    "$CAIMG" dff --traces /roi/G "$T/roi.h5" -o "$T/x.h5"
bad 1 "dff.h5: /dff/r has rank 1, expected 2" "$T/x.h5" "rank-1 traces" \
    "$CAIMG" dff --traces /dff/r --neuropil-traces none "$T/dff.h5" -o "$T/x.h5"
"$MKTRACES" "$T/truth.h5" -o "$T/mis.h5" --neu-rows 3 || fail "mktraces mismatch"
bad 1 "mis.h5: /roi/Fneu is not \[$N\]\[1500\] like /roi/F" "$T/x.h5" "Fneu of another shape" \
    "$CAIMG" dff "$T/mis.h5" -o "$T/x.h5"
"$MKTRACES" "$T/truth.h5" -o "$T/noneu.h5" --no-neu || fail "mktraces no-neu"
bad 1 "noneu.h5: no dataset /roi/Fneu" "$T/x.h5" "no neuropil traces" \
    "$CAIMG" dff "$T/noneu.h5" -o "$T/x.h5"
bad 2 "output would overwrite an input" "" "output = input" "$CAIMG" dff "$T/roi.h5" -o "$T/roi.h5"
[ -s "$T/roi.h5" ] || fail "input damaged by output = input"
bad 2 "--baseline: 'median'" "$T/x.h5" "unknown baseline" "$CAIMG" dff --baseline median "$T/roi.h5" -o "$T/x.h5"
bad 2 "--percentile" "$T/x.h5" "percentile out of range" "$CAIMG" dff --baseline percentile --percentile 120 "$T/roi.h5" -o "$T/x.h5"
# An option the chosen baseline does not use is a usage error naming the
# methods that do; from a config file it is ignored with a warning.
bad 2 "--percentile: the maximin baseline does not use it \(only percentile, lowpass and constant do\)" \
    "$T/x.h5" "auto with maximin" "$CAIMG" dff --percentile auto "$T/roi.h5" -o "$T/x.h5"
bad 2 "--percentile: the maximin baseline does not use it" "$T/x.h5" "percentile with maximin" \
    "$CAIMG" dff --baseline maximin --percentile 20 "$T/roi.h5" -o "$T/x.h5"
bad 2 "--window: the constant baseline does not use it \(only maximin, percentile and lowpass do\)" \
    "$T/x.h5" "window with constant" "$CAIMG" dff --baseline constant --window 5 "$T/roi.h5" -o "$T/x.h5"
bad 2 "--window-frames: the constant baseline" "$T/x.h5" "window-frames with constant" \
    "$CAIMG" dff --baseline constant --window-frames 50 "$T/roi.h5" -o "$T/x.h5"
bad 2 "--sigma: the percentile baseline does not use it \(only maximin does\)" "$T/x.h5" \
    "sigma with percentile" "$CAIMG" dff --baseline percentile --sigma 3 "$T/roi.h5" -o "$T/x.h5"
bad 2 "--lowpass: the percentile baseline" "$T/x.h5" "lowpass with percentile" \
    "$CAIMG" dff --baseline percentile --lowpass 2 "$T/roi.h5" -o "$T/x.h5"
bad 2 "--taps: the maximin baseline" "$T/x.h5" "taps with maximin" "$CAIMG" dff --taps 9 "$T/roi.h5" -o "$T/x.h5"
bad 2 "give --window or --window-frames, not both" "$T/x.h5" "two windows" \
    "$CAIMG" dff --window 5 --window-frames 150 "$T/roi.h5" -o "$T/x.h5"
printf '[dff]\npercentile = 20\nwindow = 30\n' > "$T/np.cfg"
ok "config option unused by maximin" "$CAIMG" dff --config "$T/np.cfg" "$T/roi.h5" -o "$T/np.h5"
grep -q "warning: .*np.cfg: percentile is not used by the maximin baseline; ignored" "$T/err" ||
    fail "no warning for a config option the baseline does not use: $(cat "$T/err")"
"$CAIMG" info -v "$T/np.h5" | grep -q "percentile = " && fail "an unused percentile is in the provenance"
"$CAIMG" info -v "$T/np.h5" | grep -q "window = 30" || fail "config window not used"
ok "command line window over config" "$CAIMG" dff -q --config "$T/np.cfg" --baseline percentile \
    --window-frames 100 "$T/roi.h5" -o "$T/np2.h5"
"$CAIMG" info -v "$T/np2.h5" | grep -q "window-frames = 100" || fail "--window-frames did not override the config window"
"$CAIMG" info -v "$T/np2.h5" | grep -q "window = 30" && fail "config window recorded beside --window-frames"
bad 2 "--neuropil" "$T/x.h5" "negative r" "$CAIMG" dff --neuropil -1 "$T/roi.h5" -o "$T/x.h5"
bad 2 "--neuropil-range" "$T/x.h5" "bad range" "$CAIMG" dff --neuropil-range 1,0 "$T/roi.h5" -o "$T/x.h5"
bad 2 "--noise-band" "$T/x.h5" "bad band" "$CAIMG" dff --noise-band 0.3,0.7 "$T/roi.h5" -o "$T/x.h5"
bad 2 "--noise-band: need LO,HI" "$T/x.h5" "one-number band" "$CAIMG" dff --noise-band 0.3 "$T/roi.h5" -o "$T/x.h5"
bad 2 "--noise-band: 'abc' is not a comma-separated list" "$T/x.h5" "band not numbers (one line)" \
    "$CAIMG" dff --noise-band abc "$T/roi.h5" -o "$T/x.h5"
bad 2 "--neuropil-range: '1,2,3' is not" "$T/x.h5" "three-number range (one line)" \
    "$CAIMG" dff --neuropil-range 1,2,3 "$T/roi.h5" -o "$T/x.h5"
bad 2 "--noise-method" "$T/x.h5" "bad noise method" "$CAIMG" dff --noise-method max "$T/roi.h5" -o "$T/x.h5"
bad 2 "--fs" "$T/x.h5" "bad fs" "$CAIMG" dff --fs -3 "$T/roi.h5" -o "$T/x.h5"
bad 2 "no output file" "" "no -o" "$CAIMG" dff "$T/roi.h5"
bad 2 "no input file" "$T/x.h5" "no input" "$CAIMG" dff -o "$T/x.h5"
bad 2 "one input file expected" "$T/x.h5" "two inputs" "$CAIMG" dff "$T/roi.h5" "$T/roi.h5" -o "$T/x.h5"
bad 2 "unrecognized|invalid" "$T/x.h5" "unknown option" "$CAIMG" dff --bogus "$T/roi.h5" -o "$T/x.h5"

ok "help" "$CAIMG" dff -h
grep -q "maximin" "$T/out" || fail "-h does not list the baselines"
finish
