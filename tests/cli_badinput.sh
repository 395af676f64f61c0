#!/bin/sh
# cli_badinput.sh -- every file of the bad-input corpus (testdata/bad) gives
# one clear line naming the file, exit status 1, and no output left behind.
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

finish
