#!/bin/sh
# cli_deconv.sh -- caimg deconv: outputs, spike correlation with simulated
# truth against a Suite2p-style run, every method and input kind, every
# bad-input path.
# Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
. "${top_srcdir:-.}/tests/cli-lib.sh"

MKTRACES=$top_builddir/tests/mktraces
value() { awk -F'\t' -v s="$1" -v m="$2" '$1 == s && $2 == m {print $3}' "$T/out"; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }
score() { "$CAIMG" eval --tsv --truth "$T/truth.h5" "$1" | awk -F'\t' '$1 == "spikes" && $2 == "corr_mean" {print $3}'; }

"$CAIMG" simulate -q --size 96x96 --frames 1500 --seed 2 --truth "$T/truth.h5" || fail "simulate"
"$MKTRACES" "$T/truth.h5" -o "$T/roi.h5" --snr 5 || fail "mktraces"
"$CAIMG" dff -q "$T/roi.h5" -o "$T/dff.h5" || fail "dff"
N=$(h5ls "$T/roi.h5/roi/F" | sed 's/.*{\([0-9]*\),.*/\1/')

# --- the default: layout, units, accuracy ------------------------------------------
ok "deconv" "$CAIMG" deconv "$T/dff.h5" -o "$T/spk.h5"
# The recorded parameters replay through --config to the same result
# ("estimate", which no option value spells, is a comment).
params_config "$T/spk.h5" deconv "$T/dcr.ini" || fail "no deconv record"
ok "deconv --config from the provenance" "$CAIMG" deconv -q --config "$T/dcr.ini" "$T/dff.h5" -o "$T/dcr.h5"
h5diff -q "$T/spk.h5" "$T/dcr.h5" /deconv /deconv || fail "deconv replayed from its provenance differs"
for d in s c spikes; do
    h5ls "$T/spk.h5/deconv/$d" | grep -Eq "\{$N(/Inf)?, 1500\}" || fail "/deconv/$d is not [$N][1500]"
    finite "$T/spk.h5" "/deconv/$d" || fail "/deconv/$d is not finite"
done
for d in b sn amplitude; do
    h5ls "$T/spk.h5/deconv/$d" | grep -q "{$N}" || fail "/deconv/$d is not [$N]"
done
h5ls "$T/spk.h5/deconv/g" | grep -q "{$N, 2}" || fail "/deconv/g is not [$N][2]"
for d in s c spikes b g sn amplitude; do
    h5dump -a "/deconv/$d/units" "$T/spk.h5" >/dev/null 2>&1 || fail "/deconv/$d has no units"
done
h5dump -a /deconv/s/units "$T/spk.h5" | grep -q "dF/F" || fail "units of /deconv/s"
h5dump -a /deconv/method "$T/spk.h5" | grep -q thresholded || fail "method attribute"
"$CAIMG" info "$T/spk.h5" | grep -q "02_deconv" || fail "no provenance record"
# Spike correlation at 40 ms bins with the truth (SNR 5), and against
# Suite2p's deconvolution given the decay of the preset: no penalty, AR(1).
mine=$(score "$T/spk.h5")
ge "$mine" 0.85 || fail "spike correlation $mine"
ok "suite2p-style" "$CAIMG" deconv -q --method penalized --lambda 0 --ar 1 --tau 0.19 \
    --baseline fixed --b 0 "$T/dff.h5" -o "$T/s2p.h5"
ref=$(score "$T/s2p.h5")
ge "$mine" "$(awk -v r="$ref" 'BEGIN {print r + 0.03}')" || fail "caimg $mine does not beat Suite2p-style $ref"
# Spikes count spikes: their total is within 30 % of the true count.
est=$(h5dump -d /deconv/spikes "$T/spk.h5" | sed -n 's/^ *([0-9,]*): //p' | tr ',' '\n' | awk 'NF {s += $1} END {print s}')
tru=$(h5dump -d /truth/spikes "$T/truth.h5" | sed -n 's/^ *([0-9,]*): //p' | tr ',' '\n' | awk 'NF {s += $1} END {print s}')
ge "$est" "$(awk -v t="$tru" 'BEGIN {print 0.7 * t}')" && ge "$(awk -v t="$tru" 'BEGIN {print 1.3 * t}')" "$est" ||
    fail "estimated spike count $est, true $tru"

# --- methods and options -------------------------------------------------------------------
for o in "--method constrained" "--method penalized" "--method penalized --lambda 0.5" \
         "--method auto" "--ar 1" "--tau 0.2 --rise 0.02" "--indicator jGCaMP8f" "--no-refine" \
         "--baseline mean" "--baseline nonneg --method constrained" "--baseline fixed --b 0" \
         "--sn 0.02" "--smin 0.05" "--smin-z 2 --lags 8 --fudge 0.98" \
         "--noise-method logmean --noise-band 0.3,0.5" "--tau-range 0.1,1 --fallback-tau 0.5" \
         "--block 3 --deflate 2 -@ 1 --max-iter 5"; do
    # shellcheck disable=SC2086
    ok "deconv $o" "$CAIMG" deconv -q $o "$T/dff.h5" -o "$T/o.h5"
    finite "$T/o.h5" /deconv/spikes || fail "$o: non-finite spikes"
    ge "$(score "$T/o.h5")" 0.6 || fail "$o: spike correlation $(score "$T/o.h5")"
done
# A dataset of any HDF5 file: the truth's noise-free calcium (fs from /truth).
ok "dataset" "$CAIMG" deconv -q --dataset /truth/calcium "$T/truth.h5" -o "$T/ca.h5"
ge "$(score "$T/ca.h5")" 0.95 || fail "noise-free calcium: $(score "$T/ca.h5")"
# A table, one row per neuron: the same answer as from HDF5.
ok "export" "$CAIMG" export "$T/dff.h5" --dataset /dff/dff -o "$T/traces.tsv"
ok "table" "$CAIMG" deconv -q --fs 30 "$T/traces.tsv" -o "$T/tab.h5"
[ "$(h5val "$T/tab.h5" /deconv/b 1)" = "$(h5val "$T/spk.h5" /deconv/b 1)" ] ||
    fail "table and HDF5 input differ: b $(h5val "$T/tab.h5" /deconv/b 1) vs $(h5val "$T/spk.h5" /deconv/b 1)"
h5dump -a /deconv/input "$T/tab.h5" | grep -q table || fail "input attribute for a table"

# --- damaged traces: warnings, finite output ---------------------------------------------
printf '0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n1 2 nan 1 0.5 0.2 3 1 0.4 0.1 0 0 2 1 0.5 0.2 0.1 0 0 0\n1 0.5 0.2 0.1 0 0 0 0 1 0.5 0.2 0.1 0 0 0 0 1 0.5 0.2 0.1\n' > "$T/odd.tsv"
ok "odd traces" "$CAIMG" deconv --fs 10 "$T/odd.tsv" -o "$T/odd.h5"
grep -q "ROI 0: the trace is constant" "$T/err" || fail "no constant-trace warning: $(cat "$T/err")"
grep -q "ROI 1: 1 of 20 frames are NaN" "$T/err" || fail "no NaN warning"
for d in s c spikes b g sn amplitude; do finite "$T/odd.h5" "/deconv/$d" || fail "odd: /deconv/$d"; done
printf '1 2 1\n0 1 0.5\n' > "$T/short.tsv"
ok "short traces" "$CAIMG" deconv --fs 10 "$T/short.tsv" -o "$T/short.h5"
grep -q "too few to estimate" "$T/err" || fail "no short-trace warning: $(cat "$T/err")"
finite "$T/short.h5" /deconv/s || fail "short: non-finite"

# --- bad input: one line, exit 1 (data) or 2 (usage), nothing left ----------------------
bad 1 "nothere.h5" "$T/x.h5" "missing input" "$CAIMG" deconv "$T/nothere.h5" -o "$T/x.h5"
printf '\001\002\003binary\n' > "$T/junk.bin"
bad 1 "junk.bin" "$T/x.h5" "neither HDF5 nor a table" "$CAIMG" deconv --fs 30 "$T/junk.bin" -o "$T/x.h5"
bad 1 "traces.tsv: the frame rate is unknown; give it with --fs" "$T/x.h5" "table without --fs" \
    "$CAIMG" deconv "$T/traces.tsv" -o "$T/x.h5"
printf '1 2 3\n4 5\n' > "$T/ragged.tsv"
bad 1 "ragged.tsv: line 2 has 2 fields, expected 3" "$T/x.h5" "ragged table" \
    "$CAIMG" deconv --fs 30 "$T/ragged.tsv" -o "$T/x.h5"
: > "$T/empty.tsv"
bad 1 "empty.tsv" "$T/x.h5" "empty table" "$CAIMG" deconv --fs 30 "$T/empty.tsv" -o "$T/x.h5"
bad 1 "roi.h5: no dataset /dff/dff" "$T/x.h5" "no dF/F" "$CAIMG" deconv "$T/roi.h5" -o "$T/x.h5"
bad 1 "dff.h5: /dff/r has rank 1, expected 2" "$T/x.h5" "rank-1 dataset" \
    "$CAIMG" deconv --dataset /dff/r "$T/dff.h5" -o "$T/x.h5"
"$MKTRACES" "$T/truth.h5" -o "$T/nofs.h5" --no-fs || fail "mktraces no-fs"
bad 1 "nofs.h5: the frame rate is unknown" "$T/x.h5" "no frame rate" \
    "$CAIMG" deconv --dataset /roi/F "$T/nofs.h5" -o "$T/x.h5"
bad 2 "unstable" "$T/x.h5" "negative decay" "$CAIMG" deconv --tau -0.5 "$T/dff.h5" -o "$T/x.h5"
bad 2 "unstable" "$T/x.h5" "zero decay" "$CAIMG" deconv --tau 0 "$T/dff.h5" -o "$T/x.h5"
bad 2 "unstable" "$T/x.h5" "decay rounding g to 1" "$CAIMG" deconv --tau 1e17 "$T/dff.h5" -o "$T/x.h5"
bad 2 "rise time" "$T/x.h5" "negative rise" "$CAIMG" deconv --tau 0.5 --rise -0.1 "$T/dff.h5" -o "$T/x.h5"
bad 2 "--rise needs --tau" "$T/x.h5" "rise alone" "$CAIMG" deconv --rise 0.1 "$T/dff.h5" -o "$T/x.h5"
bad 2 "--rise needs --ar 2" "$T/x.h5" "rise with AR(1)" "$CAIMG" deconv --ar 1 --tau 1 --rise 0.1 "$T/dff.h5" -o "$T/x.h5"
bad 2 "--ar" "$T/x.h5" "AR(3)" "$CAIMG" deconv --ar 3 "$T/dff.h5" -o "$T/x.h5"
bad 2 "--method: 'foopsi'" "$T/x.h5" "unknown method" "$CAIMG" deconv --method foopsi "$T/dff.h5" -o "$T/x.h5"
bad 2 "unknown indicator 'GFP'" "$T/x.h5" "unknown indicator" "$CAIMG" deconv --indicator GFP "$T/dff.h5" -o "$T/x.h5"
bad 2 "--tau or --indicator, not both" "$T/x.h5" "tau and indicator" "$CAIMG" deconv --tau 1 --indicator GCaMP6s "$T/dff.h5" -o "$T/x.h5"
bad 2 "--baseline: 'median'" "$T/x.h5" "unknown baseline" "$CAIMG" deconv --baseline median "$T/dff.h5" -o "$T/x.h5"
bad 2 "--lambda" "$T/x.h5" "negative lambda" "$CAIMG" deconv --lambda -1 "$T/dff.h5" -o "$T/x.h5"
bad 2 "--sn" "$T/x.h5" "zero noise" "$CAIMG" deconv --sn 0 "$T/dff.h5" -o "$T/x.h5"
bad 2 "--tau-range" "$T/x.h5" "bad tau range" "$CAIMG" deconv --tau-range 2,1 "$T/dff.h5" -o "$T/x.h5"
bad 2 "no output file" "" "no -o" "$CAIMG" deconv "$T/dff.h5"
bad 2 "no input file" "$T/x.h5" "no input" "$CAIMG" deconv -o "$T/x.h5"
bad 2 "unrecognized|invalid" "$T/x.h5" "unknown option" "$CAIMG" deconv --bogus "$T/dff.h5" -o "$T/x.h5"

ok "help" "$CAIMG" deconv -h
grep -q "thresholded" "$T/out" || fail "-h does not list the methods"
finish
