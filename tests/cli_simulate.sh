#!/bin/sh
# cli_simulate.sh -- caimg simulate: outputs, determinism, stimuli, bad input.
# Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
. "${top_srcdir:-.}/tests/cli-lib.sh"

S="$CAIMG simulate -q --size 48x56 --frames 40"

# --- outputs: HDF5 movie + truth, TIFF movie ------------------------------------
ok "simulate h5+tif" $S -o "$T/m.h5" -o "$T/m.tif" --truth "$T/t.h5"
[ "$(infoval "$T/m.h5" frames)" = 40 ] || fail "h5 frames: $(infoval "$T/m.h5" frames)"
[ "$(infoval "$T/m.h5" size)" = "48 x 56 (height x width)" ] || fail "h5 size: $(infoval "$T/m.h5" size)"
[ "$(infoval "$T/m.h5" dtype)" = uint16 ] || fail "h5 dtype"
[ "$(infoval "$T/m.tif" pages)" = 40 ] || fail "tif pages: $(infoval "$T/m.tif" pages)"
infoval "$T/m.h5" fs | grep -q '^30 Hz' || fail "fs attribute: $(infoval "$T/m.h5" fs)"
# The TIFF and the HDF5 movie hold the same samples.
ok "export h5" "$CAIMG" export -q "$T/m.h5" -o "$T/m2.tif"
[ "$("$MKTIFF" --sum "$T/m.tif")" = "$("$MKTIFF" --sum "$T/m2.tif")" ] || fail "TIFF and HDF5 movies differ"
# The truth file: shapes and the parameters in the provenance.
"$CAIMG" info -v "$T/t.h5" > "$T/info" 2>&1 || fail "info truth"
grep -q "/truth/shifts \[40\]\[2\]" "$T/info" || fail "truth shifts shape"
grep -q "/truth/calcium \[[0-9]*\]\[40\]" "$T/info" || fail "truth calcium shape"
grep -q "/truth/pix_start" "$T/info" || fail "truth footprints"
grep -q "overlap = 0.1" "$T/info" || fail "parameters not in provenance"
# The recorded parameters replay through --config to the same bytes
# (numbers in full: a preset's time constants are not six-digit numbers).
params_config "$T/t.h5" simulate "$T/sim.ini" || fail "no simulate record"
ok "simulate --config from the provenance" "$CAIMG" simulate -q --config "$T/sim.ini" --truth "$T/tr.h5"
h5diff -q "$T/t.h5" "$T/tr.h5" /truth /truth || fail "simulate replayed from its provenance differs"
[ "$(h5val "$T/t.h5" /truth/shifts 0,0)" != "" ] || fail "truth shifts unreadable"
# Movie and truth in one file.
ok "one file" $S -o "$T/both.h5" --truth "$T/both.h5"
"$CAIMG" info "$T/both.h5" | grep -q "/truth/spikes" || fail "truth not in the movie file"
"$CAIMG" info "$T/both.h5" | grep -q "/movie" || fail "movie not in the truth file"

# --- determinism: same seed, any thread count, same bytes -------------------------
ok "seed 5, 1 thread" $S --seed 5 -@ 1 -o "$T/a.tif"
ok "seed 5, 2 threads" $S --seed 5 -@ 2 -o "$T/b.tif"
ok "seed 6" $S --seed 6 -o "$T/c.tif"
cmp -s "$T/a.tif" "$T/b.tif" || fail "same seed, different thread count: movies differ"
cmp -s "$T/a.tif" "$T/c.tif" && fail "different seeds give the same movie"
ok "seed 5, float32" $S --seed 5 --dtype float32 -o "$T/f.h5"
[ "$(infoval "$T/f.h5" dtype)" = float32 ] || fail "--dtype float32"

# --- presets, indicators and given shifts ------------------------------------------
ok "preset hard" $S --preset hard --truth "$T/h.h5"
"$CAIMG" info -v "$T/h.h5" | grep -q "preset = hard" || fail "preset not recorded"
ok "indicator" $S --indicator gcamp6s --ar 1 --truth "$T/i.h5"
"$CAIMG" info -v "$T/i.h5" | grep -q "indicator = gcamp6s" || fail "indicator not recorded"
awk 'BEGIN { print "dy\tdx"; for (t = 0; t < 40; t++) printf "%d\t%.2f\n", t % 3, -0.5 }' > "$T/shifts.tsv"
ok "given shifts" $S --shifts "$T/shifts.tsv" --truth "$T/g.h5"
[ "$(h5val "$T/g.h5" /truth/shifts 2,0)" = 2 ] || fail "given shifts: dy of frame 2 is $(h5val "$T/g.h5" /truth/shifts 2,0)"
[ "$(h5val "$T/g.h5" /truth/shifts 2,1)" = -0.5 ] || fail "given shifts: dx"
printf '[simulate]\nneurons = 3\n' > "$T/c.conf"
ok "config" $S --config "$T/c.conf" --truth "$T/cf.h5"
"$CAIMG" info "$T/cf.h5" | grep -q "/truth/spikes \[3\]\[40\]" || fail "config: neurons = 3"

# --- stimulus mode: images, schedule TSV -------------------------------------------
ok "stimuli" "$CAIMG" simulate -q --size 48x48 --frames 0 --stim gratings --grating-ori 4 \
    --grating-sf 2 --grating-phase 2 --repeats 3 --stim-size 16x16 \
    -o "$T/s.h5" --truth "$T/st.h5" --stim-out "$T/stim.tif" --schedule "$T/sched.tsv"
[ "$(infoval "$T/stim.tif" pages)" = 8 ] || fail "stimulus pages: $(infoval "$T/stim.tif" pages)"
[ "$(head -1 "$T/sched.tsv")" = "$(printf 'onset_frame\tstimulus\tduration_frames')" ] || fail "schedule header"
[ "$(tail -n +2 "$T/sched.tsv" | wc -l)" -eq 24 ] || fail "schedule rows"
[ "$(tail -n +2 "$T/sched.tsv" | cut -f2 | sort -n | uniq -c | awk '{print $1}' | sort -u)" = 3 ] ||
    fail "every stimulus shown 3 times"
[ "$(infoval "$T/s.h5" frames)" = $((30 + 24 * 30 + 2)) ] || fail "frames fitted to the schedule: $(infoval "$T/s.h5" frames)"
"$CAIMG" info "$T/st.h5" | grep -q "/truth/stim/response \[8\]" || fail "expected responses"
# User images from a TIFF (16-bit, scaled to grey levels).
"$MKTIFF" -o "$T/user.tif" -w 12 -h 10 -n 4 -t uint16
ok "user stimuli" "$CAIMG" simulate -q --size 48x48 --frames 0 --stim "$T/user.tif" --repeats 2 --truth "$T/u.h5"
"$CAIMG" info "$T/u.h5" | grep -q "/truth/stim/images \[4\]\[10\]\[12\]" || fail "user stimuli shape"

# --- usage errors: exit 2, one line, nothing written ---------------------------------
bad 2 "nothing to write" "" "no outputs" $S
bad 2 "unrecognized option|unknown option" "" "unknown option" $S --bogus -o "$T/x.h5"
bad 2 "--size" "$T/x.h5" "bad size" "$CAIMG" simulate --size 0x5 -o "$T/x.h5"
bad 2 "--overlap" "$T/x.h5" "overlap out of range" $S --overlap 2 -o "$T/x.h5"
bad 2 "must be .h5/.hdf5 or .tif" "" "bad extension" $S -o "$T/x.dat"
bad 2 "--preset: unknown simulation preset 'easy'" "$T/x.h5" "bad preset" $S --preset easy -o "$T/x.h5"
bad 2 "unknown indicator 'gcamp99'" "$T/x.h5" "bad indicator" $S --indicator gcamp99 -o "$T/x.h5"
bad 2 "too crowded" "$T/x.h5" "crowded" $S --neurons 500 --overlap 0 -o "$T/x.h5" --truth "$T/xt.h5"
[ -e "$T/xt.h5" ] && fail "crowded: truth left behind"
bad 2 "need stimuli" "$T/x.h5" "schedule without stimuli" $S --schedule "$T/x.tsv" -o "$T/x.h5"
bad 2 "needs 212 frames" "$T/x.h5" "schedule too long" "$CAIMG" simulate --size 48x48 --frames 100 --stim gratings \
    --grating-ori 2 --grating-sf 2 --grating-phase 1 --repeats 3 -o "$T/x.h5"

# --- data errors: exit 1, one line naming the file, nothing written ------------------
bad 1 "shifts.tsv: 40 rows of shifts for 30 frames" "$T/x.h5" "shifts of wrong length" \
    "$CAIMG" simulate --size 48x56 --frames 30 --shifts "$T/shifts.tsv" -o "$T/x.h5"
bad 1 "nothere.tif" "$T/x.h5" "missing stimulus file" $S --stim "$T/nothere.tif" -o "$T/x.h5"
"$MKTIFF" -o "$T/f32.tif" -w 8 -h 8 -n 2 -t float32
bad 1 "f32.tif: page 1, pixel .* floating-point stimulus images must hold grey levels" "$T/x.h5" \
    "float stimuli out of range" $S --stim "$T/f32.tif" --frames 0 -o "$T/x.h5"
bad 1 "cannot create|No such file" "$T/t2.h5" "output in a missing directory" \
    $S -o "$T/nodir/m.h5" --truth "$T/t2.h5"

# --- help --------------------------------------------------------------------------
ok "help" "$CAIMG" simulate -h
grep -q -- "--overlap F" "$T/out" || fail "-h lists the model parameters"
grep -q "\[0.1\]" "$T/out" || fail "-h shows defaults"
ok "help hard" "$CAIMG" simulate --preset hard -h
grep -q -- "--density D .*\[25\]" "$T/out" || fail "-h shows the preset's defaults"

finish
