#!/bin/sh
# cli_roi.sh -- caimg roi from the command line: outputs a user can open,
# user masks, and every bad-input path (one line naming the file, exit
# status 1 for data and 2 for usage, nothing left behind).
# Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
. "${top_srcdir:-.}/tests/cli-lib.sh"
MKCELLS=$top_builddir/tests/mkcells
nrois() { h5dump -a /roi/n_rois "$1" 2>/dev/null | sed -n 's/^ *(0): *\([0-9]*\).*/\1/p'; }

# --- a small field with cells, motion-corrected (has /mc) ---------------------
"$MKCELLS" -o "$T/m.h5" -Y 96 -X 96 -T 900 --photons 6 --seed 3 --mc --labels "$T/truth.tif" ||
    fail "mkcells"
ok "roi" "$CAIMG" roi -v "$T/m.h5" -o "$T/r.h5"
grep -q "not motion corrected" "$T/err" && fail "a movie with /mc was called uncorrected"
n=$(nrois "$T/r.h5")
[ -n "$n" ] && [ "$n" -gt 3 ] || fail "roi: expected several ROIs, got '$n'"
for ds in /roi/F /roi/Fneu /roi/iscell /roi/labels /roi/pix_index /roi/pix_weight \
          /roi/pix_start /roi/pix_overlap /roi/np_index /roi/np_start /roi/mean /roi/max \
          /roi/std /roi/corr /roi/enhanced /roi/stats/npix /roi/stats/prob /movie /mc/valid; do
    h5dump -H -d "$ds" "$T/r.h5" >/dev/null 2>&1 || fail "roi output lacks $ds"
done
# The documented exports work: label image, traces, statistics.
ok "export labels" "$CAIMG" export "$T/r.h5" -d /roi/labels -o "$T/labels.tif"
[ "$(infoval "$T/labels.tif" dtype)" = int32 ] || fail "labels.tif: $(infoval "$T/labels.tif" dtype)"
ok "export F" "$CAIMG" export "$T/r.h5" -d /roi/F -o "$T/F.tsv"
[ "$(wc -l < "$T/F.tsv")" -eq "$n" ] || fail "F.tsv: $(wc -l < "$T/F.tsv") lines for $n ROIs"
[ "$(head -1 "$T/F.tsv" | awk -F'\t' '{print NF}')" -eq 900 ] || fail "F.tsv: not 900 frames per line"
# --frames selects the frames of traces, columns or (--transpose) lines,
# with the range check movies have; it is refused where there are no frames.
ok "export F --frames" "$CAIMG" export "$T/r.h5" -d /roi/F --frames 11-20 -o "$T/F10.tsv"
[ "$(wc -l < "$T/F10.tsv")" -eq "$n" ] || fail "F10.tsv: $(wc -l < "$T/F10.tsv") lines for $n ROIs"
[ "$(awk -F'\t' '{print NF}' "$T/F10.tsv" | sort -u)" = 10 ] || fail "F10.tsv: not 10 frames per line"
[ "$(cut -f 11-20 "$T/F.tsv")" = "$(cat "$T/F10.tsv")" ] || fail "F10.tsv: not frames 11-20 of F.tsv"
ok "export F --frames --transpose" "$CAIMG" export "$T/r.h5" -d roi/F --frames 899- --transpose -o "$T/Ft.tsv"
[ "$(wc -l < "$T/Ft.tsv")" -eq 2 ] || fail "Ft.tsv: $(wc -l < "$T/Ft.tsv") lines for frames 899-900"
[ "$(head -1 "$T/Ft.tsv" | cut -f 1)" = "$(head -1 "$T/F.tsv" | cut -f 899)" ] || fail "Ft.tsv: not frame 899"
bad 2 "r.h5: --frames out of range: /roi/F has 900 frames" "$T/x.tsv" "export F frames past the end" \
    "$CAIMG" export "$T/r.h5" -d /roi/F --frames 5000-6000 -o "$T/x.tsv"
bad 2 "r.h5: --frames out of range: /roi/F has 900 frames" "$T/x.tsv" "export F frames past the end, transposed" \
    "$CAIMG" export "$T/r.h5" -d /roi/F --frames 900-901 --transpose -o "$T/x.tsv"
bad 2 "r.h5: --frames selects frames of movies and of \[N\]\[T\] traces .*; /roi/stats is neither" \
    "$T/x.tsv" "export stats --frames" "$CAIMG" export "$T/r.h5" -d /roi/stats --frames 1-2 -o "$T/x.tsv"
bad 2 "/roi/np_index is neither" "$T/x.tsv" "export np_index --frames" \
    "$CAIMG" export "$T/r.h5" -d /roi/np_index --frames 1-2 -o "$T/x.tsv"
# A dataset TIFF cannot hold is unsuitable (exit 1), like a group.
bad 1 "r.h5: /roi/stats/npix has rank 1; TIFF export needs" "$T/x.tif" "export vector to TIFF" \
    "$CAIMG" export "$T/r.h5" -d /roi/stats/npix -o "$T/x.tif"
bad 1 "r.h5: /movie has rank 3; TSV export takes vectors and matrices" "$T/x.tsv" "export movie to TSV" \
    "$CAIMG" export "$T/r.h5" -d /movie -o "$T/x.tsv"
ok "export stats" "$CAIMG" export "$T/r.h5" -d /roi/stats -o "$T/stats.tsv"
head -1 "$T/stats.tsv" | grep -q "npix" || fail "stats.tsv header: $(head -1 "$T/stats.tsv")"
[ "$(wc -l < "$T/stats.tsv")" -eq $((n + 1)) ] || fail "stats.tsv rows"
# Every statistic of caimg-h5(5) is there, and the nucleus depth of the
# soma fit keeps to its documented range (NaN only where no fit was made).
for col in npix cy cx radius compactness aspect skew snr score contrast fit overlap np_npix \
           source prob np_slope np_excess nucleus; do
    head -1 "$T/stats.tsv" | tr '\t' '\n' | grep -qx "$col" || fail "stats.tsv: no column $col"
done
awk -F'\t' 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "nucleus") c = i; next }
    tolower($c) != "nan" && !($c + 0 >= 0 && $c + 0 <= 1.5) { bad++ }
    END { exit !(c && !bad) }' "$T/stats.tsv" || fail "stats.tsv: nucleus outside [0, 1.5]"
ok "export mean image" "$CAIMG" export "$T/r.h5" -d /roi/mean -o "$T/mean.tif"
"$CAIMG" info -v "$T/r.h5" | grep -q "diameter = auto" || fail "parameters not in provenance"
"$CAIMG" info -v "$T/r.h5" | grep -q "# diameter-used = [0-9.]* (" ||
    fail "the diameter used is not in the provenance"
# The recorded parameters replay: fed back through --config they are all
# options the parser takes, and give the same /roi (derived values such as
# the number of time bins are comments).
params_config "$T/r.h5" roi "$T/roi.ini" || fail "no roi record in the provenance"
ok "roi --config from the provenance" "$CAIMG" roi -q --config "$T/roi.ini" "$T/m.h5" -o "$T/rreplay.h5"
h5diff -q "$T/r.h5" "$T/rreplay.h5" /roi /roi || fail "roi replayed from its provenance differs"
grep -q "^# bins = [0-9]" "$T/roi.ini" || fail "the number of time bins is not recorded"
h5dump -a /roi/offset "$T/r.h5" >/dev/null 2>&1 || fail "roi output lacks the /roi offset attribute"
# The same ROIs, traces and statistics whatever the number of threads.
ok "roi 1 thread" "$CAIMG" roi -q -@ 1 "$T/m.h5" -o "$T/r1.h5"
ok "roi 2 threads" "$CAIMG" roi -q -@ 2 "$T/m.h5" -o "$T/r2.h5"
for ds in /roi/pix_index /roi/pix_weight /roi/F /roi/Fneu /roi/stats /roi/iscell; do
    h5diff "$T/r1.h5" "$T/r2.h5" "$ds" >/dev/null 2>&1 || fail "roi: $ds differs between 1 and 2 threads"
done

# --- no cells at all: zero ROIs and a valid file -------------------------------
"$MKCELLS" -o "$T/blank.h5" -Y 64 -X 80 -T 600 --blank --mc || fail "mkcells blank"
ok "blank movie" "$CAIMG" roi "$T/blank.h5" -o "$T/rb.h5"
# No soma to measure: said, recorded, and the usual 12 pixels used.
grep -q "no soma size to measure" "$T/err" || fail "blank movie: no warning about the diameter"
"$CAIMG" info -v "$T/rb.h5" | grep -q "# diameter-used = 12 (not measurable" ||
    fail "blank movie: the unmeasured diameter is not recorded"
[ "$(nrois "$T/rb.h5")" = 0 ] || fail "blank movie: $(nrois "$T/rb.h5") ROIs found"
h5dump -H -d /roi/F "$T/rb.h5" | grep -q "( 0, 600 )" || fail "blank movie: /roi/F is not 0 x 600"
ok "blank export" "$CAIMG" export "$T/rb.h5" -d /roi/labels -o "$T/rbl.tif"
# A movie with nothing in it (every pixel the same), and white noise alone:
# the mean image's "somata" are chance there (they were found: 17 ROIs in
# the constant movie, cells in the noise), so the mean-image search must
# see that the image varies no more than its own noise.
"$MKCELLS" -o "$T/const.h5" -Y 64 -X 64 -T 100 --constant 500 || fail "mkcells constant"
ok "constant movie" "$CAIMG" roi -q "$T/const.h5" -o "$T/rc.h5"
[ "$(nrois "$T/rc.h5")" = 0 ] || fail "constant movie: $(nrois "$T/rc.h5") ROIs found"
for seed in 1 3; do
    "$MKCELLS" -o "$T/white.h5" -Y 128 -X 128 -T 300 --white 100 --seed $seed || fail "mkcells white"
    ok "white noise" "$CAIMG" roi -q "$T/white.h5" -o "$T/rw.h5"
    cells=$(h5dump -d /roi/iscell "$T/rw.h5" | awk -F'[:,]' '/\([0-9]+\):/ {for (i = 2; i <= NF; i++) n += $i} END {print n + 0}')
    [ "$cells" = 0 ] || fail "white noise (seed $seed): $cells cells found"
done

# --- a movie without motion correction: a warning, not an error ----------------
"$MKCELLS" -o "$T/nomc.h5" -Y 64 -X 64 -T 300 --seed 4 || fail "mkcells nomc"
ok "no /mc" "$CAIMG" roi "$T/nomc.h5" -o "$T/rn.h5"
grep -q "nomc.h5: movie is not motion corrected" "$T/err" || fail "no /mc: no warning ($(cat "$T/err"))"
# /mc/valid restricts detection and neuropil to the valid box.
"$MKCELLS" -o "$T/v.h5" -Y 96 -X 96 -T 900 --photons 6 --seed 3 --valid 10,80,20,90 || fail "mkcells valid"
ok "valid box" "$CAIMG" roi "$T/v.h5" -o "$T/rv.h5"
"$CAIMG" export -q "$T/rv.h5" -d /roi/np_index -o "$T/np.tsv"
awk '$1 < 10 || $1 >= 80 || $2 < 20 || $2 >= 90 {bad=1} END {exit bad}' "$T/np.tsv" ||
    fail "neuropil pixels outside /mc/valid"

# --- user masks: label TIFF and ImageJ ROIs -------------------------------------
ok "seeded labels" "$CAIMG" roi --masks "$T/truth.tif" "$T/m.h5" -o "$T/rs.h5"
tn=$(nrois "$T/rs.h5")
[ "${tn:-0}" -gt 3 ] || fail "seeded: $tn ROIs"
h5dump -a /roi/method "$T/rs.h5" | grep -q '"seeded"' || fail "seeded: method attribute"
# With user masks the diameter is their median size, not measured in the
# mean image (mkcells draws somata 12 pixels across).
grep -q "soma size" "$T/err" && fail "seeded: warned about the mean image's soma size"
du=$("$CAIMG" info -v "$T/rs.h5" | awk '$4 == "diameter-used" && /median of the masks/ {print $6}')
awk -v d="${du:-0}" 'BEGIN {exit !(d >= 10 && d <= 14)}' || fail "seeded: diameter '$du' used"
# NaN only where caimg-roi(1) and caimg-h5(5) say: score is NaN for user
# masks, and the statistics documented as always numbers never are.
nan_columns() {
    "$CAIMG" export "$1" -d /roi/stats -o - | awk -F'\t' 'NR == 1 { for (i = 1; i <= NF; i++) h[i] = $i; next }
        { for (i = 1; i <= NF; i++) if (tolower($i) == "nan") c[h[i]] = 1 }
        END { for (k in c) print k }' | sort | tr '\n' ' '
}
always="npix cy cx radius compactness aspect overlap np_npix source prob"
for f in r rs; do
    for k in $(nan_columns "$T/$f.h5"); do
        case " $always " in *" $k "*) fail "$f.h5: /roi/stats/$k has NaN, documented as a number" ;; esac
    done
done
case " $(nan_columns "$T/rs.h5")" in *" score "*) ;; *) fail "seeded: score not NaN as documented" ;; esac
"$CAIMG" export "$T/rs.h5" -d /roi/stats/score -o - | grep -qvi '^nan$' && fail "seeded: a score is not NaN"
"$MKCELLS" -Y 96 -X 96 -T 10 --overlap-labels "$T/two.tif" || fail "mkcells overlap labels"
ok "overlapping labels" "$CAIMG" roi --masks "$T/two.tif" "$T/m.h5" -o "$T/ro.h5"
grep -q "two.tif: .* pixels are in more than one ROI" "$T/err" || fail "overlap: no warning ($(cat "$T/err"))"
"$CAIMG" export -q "$T/ro.h5" -d /roi/pix_overlap -o "$T/ov.tsv"
[ "$(grep -c '^1$' "$T/ov.tsv")" -gt 0 ] || fail "overlap: no pixel flagged"
ok "sima import" "$CAIMG" import -q "$TESTDATA/real/sima/example.tif" -o "$T/sima.h5"
ok "sima seeded" "$CAIMG" roi --masks "$TESTDATA/real/sima/imageJ_ROIs.zip" "$T/sima.h5" -o "$T/rsima.h5"
[ "$(nrois "$T/rsima.h5")" = 2 ] || fail "sima: $(nrois "$T/rsima.h5") ROIs, expected 2"
ok "sima activity" "$CAIMG" roi "$T/sima.h5" -o "$T/rsima2.h5"
ok "tiff input" "$CAIMG" roi "$TESTDATA/real/sima/example.tif" -o "$T/rtif.h5"
grep -q "not motion corrected" "$T/err" || fail "tiff input: no warning"

# --- the soma diameter, measured ---------------------------------------------------
# By default (--diameter auto) the diameter is measured in the mean image,
# so somata far from the usual 12 pixels are found without setting it.
# Fields of somata 7 and 20 pixels across (29.4 and 5 per 100 x 100 pixels:
# as crowded as the usual 10 of 12 pixels, and half that), 192 x 192, 1500 frames, seed 41: the diameter used lies within
# 10 % of the true one (measured 7.4 and 19.1), F1 is at least 0.85
# (measured 0.90 and 0.94), and the fixed --diameter 12 is worse by at
# least 0.05 (0.80 and 0.41 measured), which shows that these fields need
# the measured size.
for dd in 7:29.4 20:5; do
    d=${dd%:*} dens=${dd#*:}
    ok "simulate somata of $d px" "$CAIMG" simulate -q --preset typical --size 192x192 \
        --frames 1500 --seed 41 --motion-sd 0 --jitter 0 --jump-rate 0 --diameter $d \
        --density "$dens" -o "$T/d$d.h5" --truth "$T/td$d.h5" || continue
    ok "roi, somata of $d px" "$CAIMG" roi -q "$T/d$d.h5" -o "$T/rd$d.h5" || continue
    ok "roi --diameter 12, somata of $d px" "$CAIMG" roi -q --diameter 12 "$T/d$d.h5" -o "$T/rd${d}f.h5" || continue
    du=$("$CAIMG" info -v "$T/rd$d.h5" | awk '$4 == "diameter-used" {print $6}')
    awk -v u="${du:-0}" -v d=$d 'BEGIN {exit !(u >= 0.9 * d && u <= 1.1 * d)}' ||
        fail "somata of $d px: diameter '$du' used"
    fa=$("$CAIMG" eval --tsv --truth "$T/td$d.h5" "$T/rd$d.h5" | awk -F'\t' '$2 == "f1" {print $3}')
    ff=$("$CAIMG" eval --tsv --truth "$T/td$d.h5" "$T/rd${d}f.h5" | awk -F'\t' '$2 == "f1" {print $3}')
    echo "somata of $d px: diameter $du used, F1 $fa (--diameter 12: $ff)"
    awk -v a="$fa" -v f="$ff" 'BEGIN {exit !(a >= 0.85 && a >= f + 0.05)}' ||
        fail "somata of $d px: F1 $fa, with --diameter 12 $ff"
done

# --- against caimg simulate's ground truth, scored by caimg eval --------------------
# Fields of 192 x 192 pixels, 1500 frames at 30 Hz, seed 41 (used by no
# tuning), still (no motion, so no caimg mc needed).  The floors guard
# against regressions at the accuracy measured when this was written
# (typical F1 0.958, hard 0.752 as of this writing -- 0.676 before the
# np_slope feature, 0.752-0.800 on seeds 41-43 -- and 0.930 and 0.662 without
# the refinement of method activity; 0.958 and 0.782 before, 0.972 and
# 0.830 after the np_excess features and the cap on the mean-image soma
# fit; 0.972 and 0.857 after the nucleus feature and the soma fit over
# each candidate's own pixels; 0.972 and 0.861 with the soma fit capped at
# the field's measured soma size; 0.959 and 0.868 with the measured
# diameter and the classifier refitted to it; 0.972 and 0.906 with the
# own-light map; 0.972 and 0.936 with it in every round (seeds 42 and 43:
# 0.986 and 0.914, 0.986 and 0.881); 0.986 and 0.956 with the classifier's
# field prior (seeds 42 and 43: 0.986 and 0.906, 0.986 and 0.898); 1 and
# 0.941 with the soma fits held near their peaks (seeds 42 and 43: 0.986
# and 0.923, 1 and 0.956); see caimg-roi(1) for the full-size fields).  The
# floors, raised from 0.92 and 0.80 to the typical target (0.95) and 0.86,
# then to 0.90 for the hard field, are below that spread over seeds.
sim() {
    "$CAIMG" simulate -q --preset "$1" --size 192x192 --frames 1500 --seed 41 --motion-sd 0 \
        --jitter 0 --jump-rate 0 -o "$T/sim_$1.h5" --truth "$T/truth_$1.h5"
}
evalv() { "$CAIMG" eval --tsv --truth "$1" "$2" | awk -F'\t' -v k="$3" '$2 == k {print $3}'; }
for preset in typical hard; do
    ok "simulate $preset" sim $preset || continue
    ok "roi $preset" "$CAIMG" roi "$T/sim_$preset.h5" -o "$T/rsim_$preset.h5" || continue
    f1=$(evalv "$T/truth_$preset.h5" "$T/rsim_$preset.h5" f1)
    # The somata's size, measured in the mean image, is recorded: the
    # simulated somata are 12.1 pixels across (median of 2 sqrt(ra rb)).
    sd=$("$CAIMG" info -v "$T/rsim_$preset.h5" | awk '$4 == "soma-diameter" {print $6}')
    awk -v d="${sd:-0}" 'BEGIN {exit !(d >= 11 && d <= 13.5)}' ||
        fail "$preset: soma-diameter '$sd' recorded, expected about 12"
    floor=0.95
    [ $preset = hard ] && floor=0.90
    awk -v f="$f1" -v m="$floor" 'BEGIN {exit !(f >= m)}' || fail "$preset: F1 $f1 < $floor"
    # Traces.  The issue asks for traces correlating >= 0.98 with the truth.
    # The noisy trace F - 0.7 Fneu cannot: photon noise bounds its
    # correlation with the true calcium (about 0.45 in the typical field and
    # 0.2 in the hard one even for the true masks), so the ROIs are held to
    # the somatic signal fidelity of caimg-eval(1) -- the noise-free
    # fluorescence their weights collect against the neuron's own -- at the
    # issue's 0.98 on average in both fields, and at least 90 % (typical)
    # or 85 % (hard, with its overlapping somata) of the matched neurons at
    # or above 0.98 on their own.
    sc=$(evalv "$T/truth_$preset.h5" "$T/rsim_$preset.h5" signal_corr_mean)
    sh=$(evalv "$T/truth_$preset.h5" "$T/rsim_$preset.h5" signal_corr_ge_0.98)
    share=0.90
    [ $preset = hard ] && share=0.85
    awk -v a="$sc" -v b="$sh" -v s="$share" 'BEGIN {exit !(a >= 0.98 && b >= s)}' ||
        fail "$preset: somatic signal fidelity $sc, share >= 0.98: $sh"
    # And the noisy traces are nearly as good as the true masks' on the same
    # neurons (the noise sets the ceiling); in the crowded hard field shared
    # pixels are left out of our traces and neighbours leak in, measured 91 %
    # of the true masks' there, 97 % in the typical one.
    "$CAIMG" export -q "$T/truth_$preset.h5" -d /truth/labels --dtype int32 -o "$T/tl_$preset.tif"
    ok "roi on the true masks" "$CAIMG" roi -q --masks "$T/tl_$preset.tif" "$T/sim_$preset.h5" -o "$T/rtrue_$preset.h5"
    "$CAIMG" eval -q --truth "$T/truth_$preset.h5" "$T/rsim_$preset.h5" --per-neuron "$T/pn_mine.tsv" >/dev/null
    "$CAIMG" eval -q --truth "$T/truth_$preset.h5" "$T/rtrue_$preset.h5" --per-neuron "$T/pn_true.tsv" >/dev/null
    # Column 5 of each table is trace_corr (8 columns each).
    r=$(paste "$T/pn_mine.tsv" "$T/pn_true.tsv" | awk -F'\t' 'NR > 1 && $5 != "nan" && $13 != "nan" {
        a += $5; b += $13; n++ } END {if (n) printf "%.4f %.4f %d", a / n, b / n, n}')
    # shellcheck disable=SC2086
    set -- $r
    [ "${3:-0}" -gt 10 ] || fail "$preset: too few matched neurons to compare traces ($r)"
    tol=0.95
    [ $preset = hard ] && tol=0.88
    awk -v a="$1" -v b="$2" -v t="$tol" 'BEGIN {exit !(a >= t * b)}' ||
        fail "$preset: trace correlation $1, true masks $2"
    echo "$preset: F1 $f1, signal fidelity $sc ($sh at >= 0.98), trace correlation $1 (true masks $2, $3 neurons)" >&2
done

# --anatomy-threshold 0: no search of the mean image (nor its own-light map):
# every ROI is a cell found from its activity (source 1), and there are some.
if [ -f "$T/sim_hard.h5" ]; then
    ok "roi --anatomy-threshold 0" "$CAIMG" roi -q --anatomy-threshold 0 "$T/sim_hard.h5" -o "$T/ra0.h5"
    "$CAIMG" export -q "$T/ra0.h5" -d /roi/stats -o "$T/ra0.tsv"
    src=$(awk -F'\t' 'NR == 1 {for (i = 1; i <= NF; i++) if ($i == "source") c = i; next}
        {n++; if ($c != 1) o++} END {printf "%d %d", n, o}' "$T/ra0.tsv")
    # shellcheck disable=SC2086
    set -- $src
    [ "${1:-0}" -gt 0 ] && [ "${2:-1}" -eq 0 ] ||
        fail "--anatomy-threshold 0: $1 ROIs, $2 not from activity"
fi

# --- bad inputs: exit 1, one line naming the file, nothing left --------------------
bad 1 "nothere.h5" "$T/x.h5" "missing input" "$CAIMG" roi "$T/nothere.h5" -o "$T/x.h5"
"$MKCELLS" -Y 50 -X 60 -T 10 --labels "$T/small.tif" || fail "mkcells small labels"
bad 1 "small.tif: label image is 50x60, the movie is 96x96" "$T/x.h5" "mask of the wrong size" \
    "$CAIMG" roi --masks "$T/small.tif" "$T/m.h5" -o "$T/x.h5"
bad 1 "nomask.tif: cannot open" "$T/x.h5" "missing mask" \
    "$CAIMG" roi --masks "$T/nomask.tif" "$T/m.h5" -o "$T/x.h5"
"$MKCELLS" -o "$T/tiny.h5" -Y 10 -X 10 -T 20 --blank || fail "mkcells tiny"
bad 1 "rois.zip: ROI '03' spans rows .* outside the 10x10 movie" "$T/x.h5" "imagej ROI outside the movie" \
    "$CAIMG" roi --masks "$TESTDATA/real/fissa/rois.zip" "$T/tiny.h5" -o "$T/x.h5"
head -c 300 "$TESTDATA/real/sima/imageJ_ROIs.zip" > "$T/cut.zip"
bad 1 "cut.zip: not a zip archive or truncated" "$T/x.h5" "truncated zip" \
    "$CAIMG" roi --masks "$T/cut.zip" "$T/m.h5" -o "$T/x.h5"
printf 'not a mask' > "$T/junk.txt"
bad 1 "junk.txt: neither a label TIFF nor an ImageJ" "$T/x.h5" "junk mask" \
    "$CAIMG" roi --masks "$T/junk.txt" "$T/m.h5" -o "$T/x.h5"
"$MKTIFF" -o "$T/flt.tif" -w 96 -h 96 -n 1 -t float32 || fail "mktiff"
bad 1 "flt.tif: page 1, pixel .* has label 0.5" "$T/x.h5" "fractional labels" \
    "$CAIMG" roi --masks "$T/flt.tif" "$T/m.h5" -o "$T/x.h5"
# A label is a whole number from 1 to 4294967295 whatever the sample type:
# an infinity or a float beyond that range is no label (+Inf was once taken,
# as ROI "0", numbered before label 1).
for v in inf -inf nan 1e30 4294967296 -1; do
    "$MKTIFF" -o "$T/lab_$v.tif" -w 96 -h 96 -n 1 -t float32 --fill 1 --first "$v" || fail "mktiff $v"
    bad 1 "lab_$v.tif: page 1, pixel \(y 0, x 0\) has label [-a-z0-9.e+]*; labels must be whole numbers from 0 to 4294967295" \
        "$T/x.h5" "label $v" "$CAIMG" roi --masks "$T/lab_$v.tif" "$T/m.h5" -o "$T/x.h5"
done
"$MKTIFF" -o "$T/lab_f64.tif" -w 96 -h 96 -n 1 -t float64 --fill 1e300 --first 1 || fail "mktiff f64"
bad 1 "lab_f64.tif: page 1, pixel \(y 0, x 1\) has label 1e\+300" "$T/x.h5" "label 1e300 (float64)" \
    "$CAIMG" roi --masks "$T/lab_f64.tif" "$T/m.h5" -o "$T/x.h5"
# Whole float labels are labels, read exactly: 2^24 and 2^24 + 1 are the
# same float32 but two labels of a float64 image.
"$MKTIFF" -o "$T/lab_big.tif" -w 96 -h 96 -n 1 -t float64 --fill 16777216 --first 16777217 ||
    fail "mktiff big labels"
ok "float64 labels" "$CAIMG" roi -q --masks "$T/lab_big.tif" "$T/m.h5" -o "$T/rbig.h5"
[ "$(nrois "$T/rbig.h5")" = 2 ] || fail "float64 labels: $(nrois "$T/rbig.h5") ROIs, expected 2"
bad 1 "junk.txt" "$T/x.h5" "not a movie" "$CAIMG" roi "$T/junk.txt" -o "$T/x.h5"

# --- usage errors: exit 2 ------------------------------------------------------
bad 2 "--method: 'cnmf' is not activity, activity-classic or seeded" "$T/x.h5" "unknown method" \
    "$CAIMG" roi --method cnmf "$T/m.h5" -o "$T/x.h5"
bad 2 "--method seeded needs --masks" "$T/x.h5" "seeded without masks" \
    "$CAIMG" roi --method seeded "$T/m.h5" -o "$T/x.h5"
bad 2 "--masks is only used by --method seeded" "$T/x.h5" "masks with activity" \
    "$CAIMG" roi --method activity --masks "$T/truth.tif" "$T/m.h5" -o "$T/x.h5"
bad 2 "--diameter" "$T/x.h5" "bad diameter" "$CAIMG" roi --diameter 0.5 "$T/m.h5" -o "$T/x.h5"
bad 2 "no output file" "" "no -o" "$CAIMG" roi "$T/m.h5"
bad 2 "no input file" "" "no input" "$CAIMG" roi -o "$T/x.h5"
bad 2 "output would overwrite an input" "" "overwrite input" "$CAIMG" roi "$T/m.h5" -o "$T/m.h5"
[ -s "$T/m.h5" ] && "$CAIMG" info "$T/m.h5" >/dev/null || fail "input damaged by refused overwrite"
finish
