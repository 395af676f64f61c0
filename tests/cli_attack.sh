#!/bin/sh
# cli_attack.sh -- caimg attack and caimg robustness on a small simulated
# experiment (tests/mkstim): outputs, sanity checks, determinism, and every
# bad input (missing model, a file that is not a caimg model, stimuli of
# the wrong size, bad budgets): one clear line, exit 1 (data) or 2
# (usage), nothing left behind.
# Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
. "${top_srcdir:-.}/tests/cli-lib.sh"

MKSTIM=$top_builddir/tests/mkstim
D=$T/sim
mkdir "$D" && "$MKSTIM" "$D" || { fail "mkstim"; finish; exit 1; }
ARCH="conv 4 9x9 pad=same smooth=0.02; elu; noise name=h1; conv 4 3x3 pad=same; elu;
readout factorised l1=0.002 smooth=0.002; softplus"
ok "fit a noisy model" "$CAIMG" fit -q "$D/spikes.h5" --schedule "$D/schedule.tsv" --stimuli "$D/stimuli.tif" \
    --arch "$ARCH" --noise h1=0.5 --epochs 15 -o "$D/m.h5" -@ 2
ok "fit a deterministic model" "$CAIMG" fit -q "$D/spikes.h5" --schedule "$D/schedule.tsv" \
    --stimuli "$D/stimuli.tif" --arch "$ARCH" --epochs 15 -o "$D/d.h5" -@ 2

# attr FILE OBJECT NAME: a scalar attribute.
attr() {
    h5dump -a "$2/$3" "$1" 2>/dev/null | sed -n 's/^ *(0): *\([-0-9.eE+na"]*\).*/\1/p' | head -1
}
# col TSV NAME: the values of a named column.
col() { awk -F'\t' -v c="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == c) k = i; next } { print $k }' "$1"; }
# rows TSV NAME COL: the COL values of the rows of attack NAME.
rows() { awk -F'\t' -v n="$2" -v c="$3" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == c) k = i; next } $1 == n { print $k }' "$1"; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }

# ---- attacks on the held-out images of a noisy model --------------------------------
A="--steps 5 --eot 3 --eval-samples 8 --images 16 -@ 2"
ok "attack" "$CAIMG" attack "$D/m.h5" --feature-layer h1 $A -o "$D/a.h5" --tsv "$D/a.tsv" \
    --plot "$D/a.svg"
cp "$T/out" "$D/a.out"
# The recorded parameters of fit and attack replay through --config to the
# same model and curves (the architecture typed over two lines included);
# only the timings differ.
params_config "$D/m.h5" fit "$T/fit.ini" || fail "no fit record"
ok "fit --config from the provenance" "$CAIMG" fit -q --config "$T/fit.ini" "$D/spikes.h5" \
    --schedule "$D/schedule.tsv" --stimuli "$D/stimuli.tif" -o "$T/mr.h5" -@ 2
h5diff -q "$D/m.h5" "$T/mr.h5" /model /model || fail "fit replayed from its provenance differs"
params_config "$D/a.h5" attack "$T/attack.ini" || fail "no attack record"
ok "attack --config from the provenance" "$CAIMG" attack --config "$T/attack.ini" "$D/m.h5" -o "$T/ar.h5" -@ 2
h5diff -r "$D/a.h5" "$T/ar.h5" /attack /attack |
    awk '/^(dataset|attribute):/ { what = $0 } /^[1-9][0-9]* differences? found/ { print what }' |
    grep -v '/seconds>' > "$T/ardiff"
[ -s "$T/ardiff" ] && fail "attack replayed from its provenance differs: $(head -3 "$T/ardiff")"
grep -q "^sanity checks:" "$D/a.out" || fail "attack: no sanity checks printed"
grep -q "FAIL" "$D/a.out" && fail "attack: a sanity check failed: $(grep FAIL "$D/a.out")"
for k in "budget 0 = clean" "grows with budget" "PGD >= FGSM" "PGD >= random" "EOT >= single sample" \
         "EOT converged"; do
    grep -q "pass  $k" "$D/a.out" || fail "attack: check '$k' not reported"
done
for c in random-linf-response fgsm-linf-response-eot3 pgd-linf-response-eot3 pgd-linf-response-eot1 \
         pgd-linf-response-eot6 random-feature-response pgd-feature-response-eot3; do
    h5ls "$D/a.h5/attack/curves/$c" 2>/dev/null | grep -q rel_change || fail "attack: curve $c missing"
done
[ "$(head -1 "$D/a.tsv" | cut -f1-6)" = "$(printf 'name\tmethod\tbudget_type\tobjective\teot\tbudget')" ] ||
    fail "attack TSV header: $(head -1 "$D/a.tsv")"
[ "$(wc -l < "$D/a.tsv")" = 29 ] || fail "attack TSV: expected 28 rows, got $(($(wc -l < "$D/a.tsv") - 1))"
# Budget 0 is the clean model; effects grow; PGD beats random by far.
[ "$(rows "$D/a.tsv" pgd-linf-response-eot3 rel_change | head -1)" = 0 ] || fail "budget 0 changed the responses"
[ "$(rows "$D/a.tsv" pgd-linf-response-eot3 corr | head -1)" = 1 ] || fail "budget 0: correlation not 1"
p=$(rows "$D/a.tsv" pgd-linf-response-eot3 rel_change | tail -1)
r=$(rows "$D/a.tsv" random-linf-response rel_change | tail -1)
ge "$p" "$(awk -v r="$r" 'BEGIN { print 3 * r }')" || fail "PGD ($p) not far above random ($r) at eps 0.05"
# Perturbations respect the budget and the feature attack its layer budget.
# (columns: 6 budget, 13 linf, 15 feature)
awk -F'\t' '$1 == "pgd-linf-response-eot3" && $13 > $6 + 1e-6 { bad = 1 } END { exit bad }' "$D/a.tsv" ||
    fail "L-inf perturbation beyond its budget"
awk -F'\t' '$1 == "pgd-feature-response-eot3" && $15 > $6 * 1.0001 + 1e-6 { bad = 1 } END { exit bad }' "$D/a.tsv" ||
    fail "feature attack beyond its budget"
head -c 5 "$D/a.svg" | grep -q "<?xml" || fail "plot is not an SVG document"
grep -q "robust decoding accuracy" "$D/a.svg" || fail "plot lacks the decoding panel"
[ "$(attr "$D/a.h5" /attack noisy)" = 1 ] || fail "/attack noisy attribute"
h5ls "$D/a.h5/attack/checks/passed" >/dev/null 2>&1 || fail "checks not stored"
h5ls "$D/a.h5/model" >/dev/null 2>&1 || fail "the model is not linked into the output"

# ---- determinism ------------------------------------------------------------------------
ok "attack again, 1 thread" "$CAIMG" attack -q "$D/m.h5" --feature-layer h1 $A -@ 1 -o "$D/a2.h5" \
    --tsv "$D/a2.tsv"
# Every column but the wall time.
cut -f1-17 "$D/a.tsv" > "$T/t1"
cut -f1-17 "$D/a2.tsv" > "$T/t2"
cmp -s "$T/t1" "$T/t2" || fail "same seed, 1 and 2 threads: different results"
ok "attack, other seed" "$CAIMG" attack -q "$D/m.h5" --method pgd --eot-sweep none $A --seed 5 -o "$D/a3.h5"
h5diff -q "$D/a.h5" "$D/a3.h5" /attack/curves/pgd-linf-response-eot3/rel_change \
    /attack/curves/pgd-linf-response-eot3/rel_change && fail "another seed gave identical results"

# ---- other objectives, L2, a deterministic model, given stimuli -------------------------------
ok "decoder and neuron objectives, L2" "$CAIMG" attack -q "$D/d.h5" --objective decoder,neuron \
    --neuron 2:down --norm linf,l2 --method fgsm,pgd --decoder corr --eps 0,0.02,0.1 --steps 5 \
    --images 16 --stimuli "$D/stimuli.tif" -o "$D/o.h5" --tsv "$D/o.tsv"
grep -q "pgd-l2-neuron-n2down" "$D/o.tsv" || fail "neuron curve missing"
grep -q "pgd-linf-decoder-eot" "$D/o.tsv" && fail "deterministic model named with EOT"
acc=$(rows "$D/o.tsv" pgd-linf-decoder decode_acc | tail -1)
awk -v a="$acc" 'BEGIN { exit !(a < 1) }' || fail "decoder attack at eps 0.1 left accuracy at $acc"
nc=$(rows "$D/o.tsv" pgd-l2-neuron-n2down neuron_change | tail -1)
awk -v a="$nc" 'BEGIN { exit !(a < 0) }' || fail "neuron 2 was not driven down ($nc)"
# PGD is never weaker than FGSM, even with few steps (its last iterate used
# to lose decoder flips that FGSM's one full step found, at budget 0.05).
ok "decoder attack, PGD of 5 steps against FGSM" "$CAIMG" attack "$D/d.h5" --objective decoder \
    --method fgsm,pgd --steps 5 -o "$D/f.h5"
grep -q "pass  PGD >= FGSM" "$T/out" || fail "PGD of 5 steps weaker than FGSM: $(grep 'PGD >= FGSM' "$T/out")"
ok "TSV to standard output" sh -c "'$CAIMG' attack -q '$D/d.h5' --method random --images 4 -o '$D/s.h5' --tsv - | head -1 | grep -q '^name'"

# ---- bad inputs ---------------------------------------------------------------------------------
out=$T/bad.h5
bad 1 "nosuch.h5" "$out" "missing model" "$CAIMG" attack "$T/nosuch.h5" -o "$out"
bad 1 "stimuli.tif.*(not|HDF5)" "$out" "model file not HDF5" "$CAIMG" attack "$D/stimuli.tif" -o "$out"
bad 1 "not-caimg.h5" "$out" "HDF5 file not a caimg file" "$CAIMG" attack "$TESTDATA/bad/not-caimg.h5" -o "$out"
bad 1 "spikes.h5: no model" "$out" "caimg file without a model" "$CAIMG" attack "$D/spikes.h5" -o "$out"
"$MKTIFF" -o "$T/big.tif" -w 20 -h 20 -n 3 -t uint8 >/dev/null 2>&1 || fail "mktiff"
bad 1 "big.tif: images are 20x20, but the model was fitted on 16x16 images" "$out" "stimuli of the wrong size" \
    "$CAIMG" attack "$D/m.h5" --stimuli "$T/big.tif" -o "$out"
"$MKTIFF" -o "$T/one.tif" -w 16 -h 16 -n 1 -t uint8 >/dev/null 2>&1 || fail "mktiff"
bad 1 "one.tif: 1 image to attack; at least 2" "$out" "a single image" \
    "$CAIMG" attack "$D/m.h5" --stimuli "$T/one.tif" -o "$out"
bad 2 "--eps: budget -0.1 is negative" "$out" "negative budget" "$CAIMG" attack "$D/m.h5" --eps 0,-0.1 -o "$out"
bad 2 "--eps: 'abc' is not a comma-separated list" "$out" "budget not a number" \
    "$CAIMG" attack "$D/m.h5" --eps abc -o "$out"
bad 2 "--feature-eps: 'nan'" "$out" "NaN feature budget" "$CAIMG" attack "$D/m.h5" --feature-eps nan -o "$out"
bad 2 "--norm: 'l3'" "$out" "unknown norm" "$CAIMG" attack "$D/m.h5" --norm l3 -o "$out"
bad 2 "--method: 'cw'" "$out" "unknown method" "$CAIMG" attack "$D/m.h5" --method cw -o "$out"
bad 2 "m.h5: --neuron 99: the model has 8 neurons" "$out" "neuron out of range" \
    "$CAIMG" attack "$D/m.h5" --objective neuron --neuron 99 -o "$out"
bad 2 "m.h5: --feature-layer: the model has no hidden layer 'h7'" "$out" "unknown feature layer" "$CAIMG" attack "$D/m.h5" --feature-layer h7 -o "$out"
bad 2 "--range: '1,0'" "$out" "inverted range" "$CAIMG" attack "$D/m.h5" --range 1,0 -o "$out"
bad 2 "the images span .* outside --range" "$out" "images outside the given range" \
    "$CAIMG" attack "$D/m.h5" --range 0,1 -o "$out"
bad 2 "no output" "$out" "no output" "$CAIMG" attack "$D/m.h5"

# ---- the robustness experiment, small ------------------------------------------------------------
R="--epochs 4 --steps 3 --eot 2 --eval-samples 4 --images 8 --eps 0,0.02 --feature-eps 0,0.2 -@ 2"
ok "robustness, fixed levels" "$CAIMG" robustness "$D/m.h5" --stimuli "$D/stimuli.tif" \
    --placements none,hidden,both --l2 1e-4 --sigma-hidden 0.3 --sigma-input 0.2 --both-factor 0.5 \
    --seeds 2 $R -o "$D/r.h5" --tsv "$D/r.tsv" --plot "$D/r.svg"
grep -q "^hidden" "$T/out" || fail "robustness: no row for hidden"
grep -q "^input" "$T/out" && fail "robustness: input row although not asked for"
grep -q "PGD, feature-space budget" "$T/out" || fail "robustness: no feature-space block"
h5ls "$D/r.h5/robustness/hidden/seed2/attack/curves" | grep -q pgd-feature-response ||
    fail "robustness: per-seed attack results missing"
[ "$(attr "$D/r.h5" /robustness/both sigma_hidden)" = 0.15 ] || fail "both: hidden level not 0.5 x 0.3"
h5ls "$D/r.h5/robustness/hidden/seed1/model/h1" | grep -q noise_sd || fail "robustness: noisy model not saved"
[ "$(col "$D/r.tsv" placement | sort -u | tr '\n' ' ')" = "both hidden none " ] || fail "robustness TSV placements"
ok "robustness, searched levels" "$CAIMG" robustness -q "$D/m.h5" --stimuli "$D/stimuli.tif" \
    --placements none,input --l2-grid 1e-4,1e-3 --sigma-grid 0.2,3 --search-steps 1 --seeds 1 --no-decoder \
    $R -o "$D/r2.h5"
h5ls "$D/r2.h5/robustness/input/search/level" >/dev/null 2>&1 || fail "robustness: search trace missing"
h5ls "$D/r2.h5/robustness/l2_search/val_corr" >/dev/null 2>&1 || fail "robustness: l2 search missing"
bad 2 "--stimuli IMAGES.tif is required" "$out" "robustness: no stimuli" \
    "$CAIMG" robustness "$D/m.h5" -o "$out"
bad 1 "spikes.h5: no model" "$out" "robustness: not a model" \
    "$CAIMG" robustness "$D/spikes.h5" --stimuli "$D/stimuli.tif" -o "$out"
bad 1 "big.tif: images are 20x20" "$out" "robustness: stimuli of the wrong size" \
    "$CAIMG" robustness "$D/m.h5" --stimuli "$T/big.tif" -o "$out"
bad 2 "--hidden: .* has no hidden layer 'h9'" "$out" "robustness: unknown hidden layer" \
    "$CAIMG" robustness "$D/m.h5" --stimuli "$D/stimuli.tif" --hidden h9 -o "$out"
bad 2 "--placements: 'inside'" "$out" "robustness: unknown placement" \
    "$CAIMG" robustness "$D/m.h5" --stimuli "$D/stimuli.tif" --placements none,inside -o "$out"
finish
