#!/bin/sh
# cli_badinput.sh -- every file of the bad-input corpus (testdata/bad) gives
# one clear line naming the file, exit status 1, and no output left behind;
# so does every writer on a full disk, and on an output it must not write.
# Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
. "${top_srcdir:-.}/tests/cli-lib.sh"

B=$TESTDATA/bad
cp -r "$B" "$T/bad"
B=$T/bad
out=$T/out.h5

# HDF5 inputs.
bad 1 "not-caimg.h5: no dataset /movie" "$out" "foreign HDF5" "$CAIMG" import "$B/not-caimg.h5" -o "$out"
bad 1 "movie-rank2.h5: /movie has rank 2, expected 3" "$out" "rank 2 movie" "$CAIMG" import "$B/movie-rank2.h5" -o "$out"
bad 1 "no-movie.h5: no dataset /movie" "$out" "no movie" "$CAIMG" import "$B/no-movie.h5" -o "$out"
bad 1 "movie-complex.h5: /movie does not hold integer or float samples" "$out" "complex movie" "$CAIMG" import "$B/movie-complex.h5" -o "$out"
bad 1 "movie-empty.h5: /movie has no frames" "$out" "empty movie" "$CAIMG" import "$B/movie-empty.h5" -o "$out"
bad 1 "truncated.h5: cannot open HDF5 file" "$out" "truncated HDF5" "$CAIMG" import "$B/truncated.h5" -o "$out"
bad 1 "truncated.h5: cannot open HDF5 file" "" "info truncated HDF5" "$CAIMG" info "$B/truncated.h5"
bad 1 "no-movie.h5: no dataset /movie" "$T/o.tif" "export without movie" "$CAIMG" export "$B/no-movie.h5" -o "$T/o.tif"
# A foreign HDF5 movie is importable when its dataset is named...
ok "foreign HDF5 with --dataset" "$CAIMG" import --dataset /imaging "$B/not-caimg.h5" -o "$T/f.h5"
# ...and its axis order is checked only by shape, so say what was read.
[ "$(infoval "$T/f.h5" frames)" = 8 ] || fail "foreign HDF5: frames"

# TIFF inputs: expected message fragment per file (see testdata/bad/README).
# A third field "read" marks damage found only when the pixels are decoded
# (caimg info, which reads headers only, then succeeds).
while IFS='|' read -r file pat when; do
    case $file in ''|'#'*) continue ;; esac
    [ -f "$B/$file" ] || { fail "corpus file $file missing"; continue; }
    bad 1 "$file: .*($pat)" "$out" "import $file" "$CAIMG" import "$B/$file" -o "$out"
    [ "$when" = read ] || bad 1 "$file" "" "info $file" "$CAIMG" info "$B/$file"
done < "$TESTDATA/bad/expected.txt"

# -v adds detail to what a command reports, not internal names to its
# errors: the message is the same one line, with no "[function]" tag.
for cmd in import roi; do
    bad 1 "imagej-truncated.tif: .*it is truncated$" "$out" "$cmd -v: no function tag" \
        "$CAIMG" $cmd -v "$B/imagej-truncated.tif" -o "$out"
done

# ---- outputs a command must not write --------------------------------------------
# A small pipeline for the checks below: simulate, mc, roi, dff, and an
# experiment with stimuli (tests/mkstim) for fit and the model commands.
ok "simulate input" "$CAIMG" simulate -q --size 64x64 --frames 200 --seed 3 \
    -o "$T/s.h5" --truth "$T/truth.h5"
ok "mc input" "$CAIMG" mc -q "$T/s.h5" -o "$T/mc.h5"
ok "roi input" "$CAIMG" roi -q "$T/mc.h5" -o "$T/r.h5"
ok "dff input" "$CAIMG" dff -q "$T/r.h5" -o "$T/d.h5"
mkdir "$T/st" && ok "stimuli" "$top_builddir/tests/mkstim" "$T/st"
ST="$T/st/spikes.h5 --schedule $T/st/schedule.tsv --stimuli $T/st/stimuli.tif"
ok "model" "$CAIMG" fit -q $ST --epochs 2 --ensemble 1 -o "$T/model.h5"

# An output that is a directory is refused before any work, in one line
# naming it (it used to be found only when renaming the finished temporary).
D=$T/dir.h5
mkdir "$D"
isdir() { bad 1 "^caimg $1: $D: is a directory$" "" "$1 -o DIRECTORY" "$CAIMG" "$@"; }
isdir import "$TESTDATA/sim/small.h5" -o "$D"
isdir export "$T/mc.h5" --format tsv -d /mc/shifts -o "$D"
isdir mc "$T/s.h5" -o "$D"
isdir roi "$T/mc.h5" -o "$D"
isdir dff "$T/r.h5" -o "$D"
isdir deconv "$T/d.h5" -o "$D"
isdir report "$T/r.h5" -o "$D"
isdir simulate --size 32x32 --frames 10 -o "$D"
isdir simulate --size 32x32 --frames 10 -o "$T/x.h5" --truth "$D"
isdir eval --truth "$T/truth.h5" "$T/mc.h5" -o "$D"
isdir fit $ST --epochs 2 -o "$D"
isdir predict "$T/model.h5" "$T/st/stimuli.tif" -o "$D"
isdir attack "$T/model.h5" -o "$D"
isdir attack "$T/model.h5" -o "$T/x.h5" --tsv "$D"
isdir robustness "$T/model.h5" --stimuli "$T/st/stimuli.tif" -o "$D"
bad 1 "^caimg roi: $D/: is a directory$" "" "roi -o DIRECTORY/" "$CAIMG" roi "$T/mc.h5" -o "$D/"
bad 1 "^caimg roi: $T/nodir/x.h5: cannot create: No such file or directory$" "" \
    "roi -o MISSING/FILE" "$CAIMG" roi "$T/mc.h5" -o "$T/nodir/x.h5"
[ -e "$T/x.h5" ] && fail "an output was written beside a refused one"

# The --config file is not an output either, however it is named.
printf '[roi]\ndiameter = 8\n' > "$T/c.ini"
cp "$T/c.ini" "$T/c.orig"
bad 2 "^caimg roi: $T/c.ini: output would overwrite the config file$" "" "roi -o CONFIG" \
    "$CAIMG" roi --config "$T/c.ini" "$T/mc.h5" -o "$T/c.ini"
bad 2 "^caimg roi: $T/./c.ini: output would overwrite the config file$" "" \
    "roi --config=CONFIG -o DIR/./CONFIG" "$CAIMG" roi --config="$T/c.ini" "$T/mc.h5" -o "$T/./c.ini"
ln "$T/c.ini" "$T/c-hard.ini"
bad 2 "output would overwrite the config file$" "" "dff -o CONFIG (hard link)" \
    "$CAIMG" dff --config "$T/c.ini" "$T/r.h5" -o "$T/c-hard.ini"
cmp -s "$T/c.ini" "$T/c.orig" || fail "the config file was changed"

# Nor is a file that an input reaches through its HDF5 external links: a
# roi file's /movie is the mc file's, so writing over the mc file would
# destroy the movie the roi file shows.  Followed from file to file (a dF/F
# file links to the roi file, which links to the mc file).
cp "$T/mc.h5" "$T/a.h5"
ok "roi a.h5 -o r1.h5" "$CAIMG" roi -q "$T/a.h5" -o "$T/r1.h5"
ok "dff r1.h5 -o d1.h5" "$CAIMG" dff -q "$T/r1.h5" -o "$T/d1.h5"
ln -s a.h5 "$T/a-sym.h5"
links() { echo "^caimg $1: $2: output would overwrite an input \\($3 links to it\\)$"; }
bad 2 "$(links roi "$T/a.h5" "$T/r1.h5")" "" "roi -o the file its input links to" \
    "$CAIMG" roi -q "$T/r1.h5" -o "$T/a.h5"
bad 2 "$(links roi "$T/a-sym.h5" "$T/r1.h5")" "" "roi -o a symbolic link to that file" \
    "$CAIMG" roi -q "$T/r1.h5" -o "$T/a-sym.h5"
bad 2 "$(links mc "$T/a.h5" "$T/r1.h5")" "" "mc -o the file its input links to" \
    "$CAIMG" mc -q "$T/r1.h5" -o "$T/a.h5"
bad 2 "$(links deconv "$T/a.h5" "$T/r1.h5")" "" "deconv -o a file two links away" \
    "$CAIMG" deconv -q "$T/d1.h5" -o "$T/a.h5"
bad 2 "$(links deconv "$T/r1.h5" "$T/d1.h5")" "" "deconv -o the file its input links to" \
    "$CAIMG" deconv -q "$T/d1.h5" -o "$T/r1.h5"
bad 2 "$(links dff "$T/a.h5" "$T/r1.h5")" "" "dff -o the file its input links to" \
    "$CAIMG" dff -q "$T/r1.h5" -o "$T/a.h5"
bad 2 "$(links export "$T/a.h5" "$T/r1.h5")" "" "export -o the file its input links to" \
    "$CAIMG" export -q "$T/r1.h5" -d /roi/F --format tsv -o "$T/a.h5"
bad 2 "$(links report "$T/a.h5" "$T/r1.h5")" "" "report -o the file its input links to" \
    "$CAIMG" report -q "$T/r1.h5" -o "$T/a.h5"
bad 2 "$(links eval "$T/a.h5" "$T/r1.h5")" "" "eval -o the file its input links to" \
    "$CAIMG" eval --truth "$T/truth.h5" "$T/r1.h5" -o "$T/a.h5"
# A model links to the traces it was fitted to.
bad 2 "$(links attack "$T/st/spikes.h5" "$T/model.h5")" "" "attack -o the traces of its model" \
    "$CAIMG" attack -q "$T/model.h5" -o "$T/st/spikes.h5"
bad 2 "$(links robustness "$T/st/spikes.h5" "$T/model.h5")" "" "robustness -o the traces of its model" \
    "$CAIMG" robustness -q "$T/model.h5" --stimuli "$T/st/stimuli.tif" -o "$T/st/spikes.h5"
bad 2 "$(links predict "$T/st/spikes.h5" "$T/model.h5")" "" "predict -o the traces of its model" \
    "$CAIMG" predict -q "$T/model.h5" "$T/st/stimuli.tif" --format tsv -o "$T/st/spikes.h5"
cmp -s "$T/a.h5" "$T/mc.h5" || fail "the movie an input links to was changed"
"$CAIMG" info "$T/st/spikes.h5" >/dev/null 2>&1 || fail "the traces a model links to were destroyed"
# Unrelated existing files are still replaced.
cp "$T/r.h5" "$T/old.h5"
ok "roi over an unrelated file" "$CAIMG" roi -q "$T/r1.h5" -o "$T/old.h5"

# ---- interrupted runs ------------------------------------------------------------
# A run killed by a signal removes its temporary output and dies of that
# signal (it used to leave OUT.tmp.PID.N behind).  SIGINT cannot be tested
# here: a non-interactive shell starts background jobs with it ignored.
ok "long movie" "$CAIMG" simulate -q --size 128x128 --frames 1500 --seed 4 -o "$T/long.h5"
# killed SIGNAL OUTPUT DESCRIPTION CMD...: start CMD, send SIGNAL once its
# temporary exists, and check that nothing is left.
killed() {
    _sig=$1 _out=$2 _desc=$3; shift 3
    ntests=$((ntests + 1))
    "$@" 2>"$T/err" &
    _pid=$!
    _n=0
    until ls "$(dirname "$_out")" | grep -q "^$(basename "$_out")\.tmp\." || [ $_n -ge 200 ]; do
        sleep 0.05
        _n=$((_n + 1))
    done
    [ $_n -ge 200 ] && fail "$_desc: no temporary file appeared"
    kill -"$_sig" $_pid
    wait $_pid
    _st=$?
    [ $_st -gt 128 ] && [ "$(kill -l $_st)" = "$_sig" ] ||
        fail "$_desc: exit status $_st, expected death by SIG$_sig ($(head -c 300 "$T/err"))"
    [ -e "$_out" ] && fail "$_desc: output $_out was written"
    ls "$(dirname "$_out")" | grep -q '\.tmp\.' && fail "$_desc: a temporary file was left behind"
}
mkdir "$T/sig"
killed TERM "$T/sig/r.h5" "roi killed by SIGTERM" "$CAIMG" roi -q -@ 1 "$T/long.h5" -o "$T/sig/r.h5"
killed HUP "$T/sig/r.h5" "roi killed by SIGHUP" "$CAIMG" roi -q -@ 1 "$T/long.h5" -o "$T/sig/r.h5"
killed TERM "$T/sig/mc.h5" "mc killed by SIGTERM" "$CAIMG" mc -q -@ 1 "$T/long.h5" -o "$T/sig/mc.h5"
killed TERM "$T/sig/s.h5" "simulate killed by SIGTERM" \
    "$CAIMG" simulate -q --size 256x256 --frames 3000 -o "$T/sig/s.h5"
killed TERM "$T/sig/s.tif" "simulate (TIFF) killed by SIGTERM" \
    "$CAIMG" simulate -q --size 256x256 --frames 3000 -o "$T/sig/s.tif"

# ---- a full disk -----------------------------------------------------------------
# Every stage that runs out of disk space says so in one line naming its
# output, with the operating system's reason, exits 1 and leaves nothing.
# HDF5 1.10 crashed at exit after failing to close such a file, and its own
# wording ("unable to flush mounted file hierarchy") hid the cause.  A small
# tmpfs fills up at once; mounting one needs root, so elsewhere this part is
# skipped.
FULL=$T/full
mkdir "$FULL"
if [ "$(id -u)" -eq 0 ] && mount -t tmpfs -o size=128k tmpfs "$FULL" 2>/dev/null; then
    trap 'umount "$FULL" 2>/dev/null; rm -rf "$T"' EXIT
    nospace=": cannot (create|write).*: No space left on device$"
    x=$FULL/x.h5
    # The outputs of the movie stages are far larger than the disk.
    bad 1 "^caimg simulate: $x$nospace" "$x" "simulate on a full disk" \
        "$CAIMG" simulate -q --size 64x64 --frames 200 -o "$x"
    bad 1 "^caimg mc: $x$nospace" "$x" "mc on a full disk" "$CAIMG" mc -q "$T/s.h5" -o "$x"
    bad 1 "^caimg roi: $x$nospace" "$x" "roi on a full disk" "$CAIMG" roi -q "$T/mc.h5" -o "$x"
    bad 1 "^caimg import: $x$nospace" "$x" "import on a full disk" \
        "$CAIMG" import -q "$TESTDATA/bad/../sim/small.h5" -o "$x"
    bad 1 "^caimg export: $FULL/x.tif: cannot write page [0-9]+: No space left on device$" \
        "$FULL/x.tif" "export TIFF on a full disk" "$CAIMG" export -q "$T/mc.h5" -o "$FULL/x.tif"
    # Those of the trace stages are small (dff's 40 kB, deconv's 57 kB): with
    # a little room left, some fail in a dataset and some in the final flush.
    for free in 36 20 8; do
        head -c $((128 - free))k /dev/zero > "$FULL/fill" 2>/dev/null
        bad 1 "^caimg dff: $x$nospace" "$x" "dff on a full disk ($free kB free)" \
            "$CAIMG" dff -q "$T/r.h5" -o "$x"
        bad 1 "^caimg deconv: $x$nospace" "$x" "deconv on a full disk ($free kB free)" \
            "$CAIMG" deconv -q "$T/d.h5" -o "$x"
        rm -f "$FULL/fill" "$x"
    done
    head -c 120k /dev/zero > "$FULL/fill" 2>/dev/null
    bad 1 "^caimg fit: $x$nospace" "$x" "fit on a full disk" \
        "$CAIMG" fit -q "$T/st/spikes.h5" --schedule "$T/st/schedule.tsv" \
        --stimuli "$T/st/stimuli.tif" --epochs 2 --ensemble 1 -o "$x"
    bad 1 "^caimg export: $FULL/x.tsv: write failed: No space left on device$" "$FULL/x.tsv" \
        "export TSV on a full disk" "$CAIMG" export -q "$T/r.h5" -d /roi/F -o "$FULL/x.tsv"
    umount "$FULL" || fail "cannot unmount $FULL"
    trap 'rm -rf "$T"' EXIT
else
    echo "SKIP: the full-disk checks need root and permission to mount a tmpfs"
fi

finish
