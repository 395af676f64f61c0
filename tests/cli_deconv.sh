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
# The output links the groups of a caimg input, not those of a plain HDF5
# file (caimg-deconv(1)); both are named in the provenance.
h5ls "$T/spk.h5" | grep -q "^roi " || fail "the groups of a caimg input are not linked"
h5copy -i "$T/dff.h5" -o "$T/plain.h5" -s /dff/dff -d /g/x -p || fail "h5copy"
ok "plain HDF5" "$CAIMG" deconv -q --fs 30 --dataset /g/x "$T/plain.h5" -o "$T/pl.h5"
h5ls "$T/pl.h5" | grep -q "^g " && fail "a plain HDF5 input's group /g is linked"
h5dump -a /provenance/00_deconv/inputs "$T/pl.h5" | grep -q "plain.h5" || fail "the plain HDF5 input is not in the provenance"
[ "$(h5val "$T/pl.h5" /deconv/b 1)" = "$(h5val "$T/spk.h5" /deconv/b 1)" ] || fail "plain HDF5 and dF/F input differ"
# A table, one row per neuron: the same answer as from HDF5.
ok "export" "$CAIMG" export "$T/dff.h5" --dataset /dff/dff -o "$T/traces.tsv"
ok "table" "$CAIMG" deconv -q --fs 30 "$T/traces.tsv" -o "$T/tab.h5"
[ "$(h5val "$T/tab.h5" /deconv/b 1)" = "$(h5val "$T/spk.h5" /deconv/b 1)" ] ||
    fail "table and HDF5 input differ: b $(h5val "$T/tab.h5" /deconv/b 1) vs $(h5val "$T/spk.h5" /deconv/b 1)"
# Exactly as caimg-h5(5) says: the dataset deconvolved, or "table".
h5dump -a /deconv/input "$T/tab.h5" | grep -q '(0): "table"$' ||
    fail "input attribute for a table: $(h5dump -a /deconv/input "$T/tab.h5" | grep '(0)')"
h5dump -a /deconv/input "$T/spk.h5" | grep -q '(0): "/dff/dff"$' || fail "input attribute for /dff/dff"

# --- no neurons: the dF/F of a blank movie gives empty but valid outputs ------------------
"$top_builddir/tests/mkcells" -o "$T/blank.h5" -Y 32 -X 40 -T 200 --blank --mc || fail "mkcells blank"
"$CAIMG" roi -q "$T/blank.h5" -o "$T/rb.h5" || fail "roi on a blank movie"
"$CAIMG" dff -q "$T/rb.h5" -o "$T/db.h5" || fail "dff with no ROIs"
ok "no neurons" "$CAIMG" deconv "$T/db.h5" -o "$T/sb.h5"
for d in s c spikes; do
    h5dump -H -d "/deconv/$d" "$T/sb.h5" | grep -q "( 0, 200 )" || fail "no neurons: /deconv/$d is not [0][200]"
done
for d in b sn amplitude; do
    h5dump -H -d "/deconv/$d" "$T/sb.h5" | grep -q "( 0 )" || fail "no neurons: /deconv/$d is not [0]"
done
h5dump -H -d /deconv/g "$T/sb.h5" | grep -q "( 0, 2 )" || fail "no neurons: /deconv/g is not [0][2]"
bad 2 "unstable" "$T/x.h5" "no neurons, negative decay" "$CAIMG" deconv --tau -1 "$T/db.h5" -o "$T/x.h5"

# --- tables: streamed in blocks; byte order marks; binary files -----------------------------
# A table is read a block of rows at a time, like HDF5 input: peak memory
# for 50000 neurons is close to that for 5000 (held whole, the 50000 x 100
# samples alone took 40 MB more).  Only where GNU time can measure it.
if /usr/bin/time -f %M -o "$T/rss" true 2>/dev/null; then
    awk 'BEGIN { srand(7); for (i = 0; i < 50000; i++) { l = "";
                 for (t = 0; t < 100; t++) l = l (t ? "\t" : "") sprintf("%.3f", rand() * 0.1 + (t % 40 == 5));
                 print l } }' > "$T/big.tsv"
    head -n 5000 "$T/big.tsv" > "$T/small.tsv"
    ok "table 5000" /usr/bin/time -f %M -o "$T/rss5k" "$CAIMG" deconv -q --fs 30 --block 100 "$T/small.tsv" -o "$T/big.h5"
    ok "table 50000" /usr/bin/time -f %M -o "$T/rss50k" "$CAIMG" deconv -q --fs 30 --block 100 "$T/big.tsv" -o "$T/big.h5"
    h5ls "$T/big.h5/deconv/spikes" | grep -Eq "\{50000(/Inf)?, 100\}" || fail "50000-row table: /deconv/spikes shape"
    a=$(tail -1 "$T/rss5k") b=$(tail -1 "$T/rss50k")
    [ $((b - a)) -lt 12000 ] || fail "table input: peak RSS $a kB for 5000 rows, $b kB for 50000: not streamed"
    rm -f "$T/big.tsv" "$T/big.h5"
fi
# A UTF-8 byte order mark (spreadsheets write one) is skipped: the first
# row is data, not a header, and every neuron comes out.
printf '\357\273\2771\t0.5\t0.2\t0.1\t0\t1\t0.5\t0.2\n0\t1\t0.5\t0.2\t0.1\t0\t1\t0.5\n' > "$T/bom.tsv"
ok "byte order mark" "$CAIMG" deconv -q --fs 10 "$T/bom.tsv" -o "$T/bom.h5"
h5ls "$T/bom.h5/deconv/b" | grep -q "{2}" || fail "byte order mark: $(h5ls "$T/bom.h5/deconv/b")"
printf '\357\273\277a\tb\tc\n1\t2\t1\n0\t1\t0.5\n' > "$T/bomh.tsv"
ok "byte order mark, header" "$CAIMG" deconv -q --fs 10 "$T/bomh.tsv" -o "$T/bomh.h5"
h5ls "$T/bomh.h5/deconv/b" | grep -q "{2}" || fail "byte order mark and header: $(h5ls "$T/bomh.h5/deconv/b")"
# NUL bytes: a binary file, not a short line or a one-cell table.
printf '1\t2\t1\t0\n1\t2\0003\t4\n' > "$T/nul.tsv"
bad 1 "nul.tsv: line 2 holds a NUL byte: a binary file, not a text table" "$T/x.h5" "NUL in a line" \
    "$CAIMG" deconv --fs 30 "$T/nul.tsv" -o "$T/x.h5"
printf '\000\001binary' > "$T/bin.tsv"
bad 1 "bin.tsv: line 1 holds a NUL byte" "$T/x.h5" "binary file" "$CAIMG" deconv --fs 30 "$T/bin.tsv" -o "$T/x.h5"
printf '1 2 3\n4 5 x\n' > "$T/nan.tsv"
bad 1 "nan.tsv: line 2, field 3: 'x' is not a number" "$T/x.h5" "not a number" \
    "$CAIMG" deconv --fs 30 "$T/nan.tsv" -o "$T/x.h5"

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
# Bad kinetics read the same whichever check finds them: the option, the
# reason, the hint (a negative decay once read "caimg deconv: deconv: ..."
# without the hint, zero "caimg deconv: --tau: ..." with it).
hint() { grep -q "^Try 'caimg deconv -h'" "$T/err" || fail "$1: no 'Try' line"
         grep -q "deconv: deconv:" "$T/err" && fail "$1: doubled prefix: $(head -1 "$T/err")"; }
bad 2 "^caimg deconv: --tau: a decay time of -0.5 s is not a positive time: the calcium model would be unstable\$" \
    "$T/x.h5" "negative decay" "$CAIMG" deconv --tau -0.5 "$T/dff.h5" -o "$T/x.h5"
hint "negative decay"
bad 2 "^caimg deconv: --tau: a decay time of 0 s is not a positive time: the calcium model would be unstable\$" \
    "$T/x.h5" "zero decay" "$CAIMG" deconv --tau 0 "$T/dff.h5" -o "$T/x.h5"
hint "zero decay"
bad 2 "^caimg deconv: decay time 1e\+17 s is too long for 30 Hz: the calcium model would be unstable" \
    "$T/x.h5" "decay rounding g to 1" "$CAIMG" deconv --tau 1e17 "$T/dff.h5" -o "$T/x.h5"
hint "decay rounding g to 1"
bad 2 "^caimg deconv: --rise: a rise time of -0.1 s is not a non-negative time\$" "$T/x.h5" "negative rise" \
    "$CAIMG" deconv --tau 0.5 --rise -0.1 "$T/dff.h5" -o "$T/x.h5"
hint "negative rise"
# A preset's rise goes with its decay: --rise with --indicator was ignored.
bad 2 "--rise needs --tau, not --indicator" "$T/x.h5" "rise with indicator" \
    "$CAIMG" deconv --indicator GCaMP6s --rise 0.2 "$T/dff.h5" -o "$T/x.h5"
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
# A list of one number once exited 2 without a word.
bad 2 "--tau-range: need LO,HI" "$T/x.h5" "one-number tau range" "$CAIMG" deconv --tau-range 1 "$T/dff.h5" -o "$T/x.h5"
bad 2 "--tau-range: need LO,HI" "$T/x.h5" "tau range 1," "$CAIMG" deconv --tau-range 1, "$T/dff.h5" -o "$T/x.h5"
bad 2 "--noise-band: need LO,HI" "$T/x.h5" "one-number band" "$CAIMG" deconv --noise-band 0.3 "$T/dff.h5" -o "$T/x.h5"
bad 2 "--tau-range: 'x' is not a comma-separated list" "$T/x.h5" "tau range not numbers" \
    "$CAIMG" deconv --tau-range x "$T/dff.h5" -o "$T/x.h5"
printf '[deconv]\ntau-range = 1\n' > "$T/tr.cfg"
bad 2 "--tau-range: need LO,HI" "$T/x.h5" "one-number tau range in a config file" \
    "$CAIMG" deconv --config "$T/tr.cfg" "$T/dff.h5" -o "$T/x.h5"
bad 2 "no output file" "" "no -o" "$CAIMG" deconv "$T/dff.h5"
bad 2 "no input file" "$T/x.h5" "no input" "$CAIMG" deconv -o "$T/x.h5"
bad 2 "unrecognized|invalid" "$T/x.h5" "unknown option" "$CAIMG" deconv --bogus "$T/dff.h5" -o "$T/x.h5"

bad 2 "--lags: '13' is not an integer in \[0, 12\]" "$T/x.h5" "too many lags" "$CAIMG" deconv --lags 13 "$T/dff.h5" -o "$T/x.h5"

ok "help" "$CAIMG" deconv -h
grep -q "thresholded" "$T/out" || fail "-h does not list the methods"
grep -q -- "--lags N .*0-12" "$T/out" || fail "-h does not give the range of --lags"
sed 's/\\-/-/g; s/\\(en/-/g' "$top_srcdir/man/caimg-deconv.1" | grep -A1 -- "^.BI --lags" | grep -q "0-12" ||
    fail "caimg-deconv(1) does not give the range of --lags"
finish
