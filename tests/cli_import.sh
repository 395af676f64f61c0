#!/bin/sh
# cli_import.sh -- caimg import / info / export from the command line.
# Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
. "${top_srcdir:-.}/tests/cli-lib.sh"

# --- every sample type, layout and compression round-trips exactly -----------
for ty in uint8 int8 uint16 int16 uint32 int32 float32; do
    for lay in "" "--tile 16" "--bigtiff 1" "--bigendian 1"; do
        for c in none lzw deflate packbits; do
            # shellcheck disable=SC2086
            "$MKTIFF" -o "$T/a.tif" -w 40 -h 24 -n 5 -t $ty -c $c $lay || fail "mktiff $ty $lay $c"
            ok "import $ty $lay $c" "$CAIMG" import -q "$T/a.tif" -o "$T/a.h5" || continue
            [ "$(infoval "$T/a.h5" dtype)" = "$ty" ] || fail "$ty $lay $c: stored as $(infoval "$T/a.h5" dtype)"
            [ "$(infoval "$T/a.h5" frames)" = 5 ] || fail "$ty $lay $c: frame count"
            ok "export $ty" "$CAIMG" export -q "$T/a.h5" -o "$T/b.tif" || continue
            [ "$("$MKTIFF" --sum "$T/a.tif")" = "$("$MKTIFF" --sum "$T/b.tif")" ] ||
                fail "round trip $ty $lay $c: samples differ"
        done
    done
done

# --- pixel positions: page p, row y, column x lands at /movie[p][y][x] --------
"$MKTIFF" -o "$T/p.tif" -w 20 -h 10 -n 3 -t uint16
ok "import" "$CAIMG" import "$T/p.tif" -o "$T/p.h5"
[ "$(h5val "$T/p.h5" /movie 2,3,4)" = "$((2000 + 3 * 20 + 4))" ] || fail "pixel (2,3,4) misplaced"

# --- several files are concatenated in order ---------------------------------
ok "import 2 files" "$CAIMG" import "$T/p.tif" "$T/p.tif" -o "$T/pp.h5"
[ "$(infoval "$T/pp.h5" frames)" = 6 ] || fail "two files: frames"
[ "$(h5val "$T/pp.h5" /movie 3,0,0)" = 0 ] || fail "two files: order"

# --- interleaved channels and planes (pages: channel fastest, then plane) ----
"$MKTIFF" -o "$T/i.tif" -w 8 -h 4 -n 12 -t uint16
ok "interleaved" "$CAIMG" import -q --channels 2 --planes 3 --channel 2 --plane 3 "$T/i.tif" -o "$T/i.h5"
[ "$(infoval "$T/i.h5" frames)" = 2 ] || fail "interleaved: frames"
# frame 1, channel 2, plane 3 = page (1*3 + 2)*2 + 1 = 11
[ "$(h5val "$T/i.h5" /movie 1,0,0)" = 11000 ] || fail "interleaved: wrong page $(h5val "$T/i.h5" /movie 1,0,0)"
# an interleaving split across two files at an odd page still lines up
"$MKTIFF" -o "$T/i1.tif" -w 8 -h 4 -n 12 -t uint16
ok "interleaved 2 files" "$CAIMG" import -q --channels 2 --channel 2 "$T/i.tif" "$T/i1.tif" -o "$T/i2.h5"
[ "$(infoval "$T/i2.h5" frames)" = 12 ] || fail "interleaved 2 files: frames"
# incomplete last volume: warned, ignored
"$MKTIFF" -o "$T/odd.tif" -w 8 -h 4 -n 7 -t uint16
ok "incomplete volume" "$CAIMG" import --channels 2 "$T/odd.tif" -o "$T/odd.h5"
grep -q "incomplete" "$T/err" || fail "incomplete volume: no warning"
[ "$(infoval "$T/odd.h5" frames)" = 3 ] || fail "incomplete volume: frames"

# --- ImageJ hyperstack metadata ---------------------------------------------
"$MKTIFF" -o "$T/ij.tif" -w 8 -h 4 -n 12 -t uint16 \
    --description "$(printf 'ImageJ=1.53t\nimages=12\nchannels=2\nslices=2\nframes=3\nhyperstack=true\nfinterval=0.05\n')"
ok "imagej" "$CAIMG" import --channel 2 --plane 2 "$T/ij.tif" -o "$T/ij.h5"
[ "$(infoval "$T/ij.h5" frames)" = 3 ] || fail "imagej: frames"
infoval "$T/ij.h5" fs | grep -q '^20 Hz' || fail "imagej: fs from finterval: $(infoval "$T/ij.h5" fs)"
[ "$(h5val "$T/ij.h5" /movie 2,0,0)" = 11000 ] || fail "imagej: page choice"

# --- frames, dtype, fs, deflate options -------------------------------------
ok "frames" "$CAIMG" import --frames 2-3 --dtype float32 --fs 30 --deflate 5 "$T/p.tif" -o "$T/f.h5"
[ "$(infoval "$T/f.h5" frames)" = 2 ] || fail "--frames"
[ "$(infoval "$T/f.h5" dtype)" = float32 ] || fail "--dtype"
[ "$(h5val "$T/f.h5" /movie 0,0,0)" = 1000 ] || fail "--frames offset"
infoval "$T/f.h5" fs | grep -q '^30 Hz' || fail "--fs"
"$CAIMG" info -v "$T/f.h5" | grep -q "deflate = 5" || fail "parameters not in provenance"

# --- config file; command line wins ------------------------------------------
printf '[import]\nfs = 12\ndtype = float32\n[mc]\nmax-shift = 3\n' > "$T/c.conf"
ok "config" "$CAIMG" import --config "$T/c.conf" --fs 15 "$T/p.tif" -o "$T/c.h5"
infoval "$T/c.h5" fs | grep -q '^15 Hz' || fail "config: command line must win"
[ "$(infoval "$T/c.h5" dtype)" = float32 ] || fail "config: dtype from file"
printf '[import]\nfsx = 12\n' > "$T/bad.conf"
bad 2 "bad.conf:2: unknown option 'fsx'" "$T/x.h5" "config typo" "$CAIMG" import --config "$T/bad.conf" "$T/p.tif" -o "$T/x.h5"

# --- the real SIMA hyperstack -------------------------------------------------
ok "sima" "$CAIMG" import "$TESTDATA/real/sima/example.tif" -o "$T/sima.h5"
[ "$(infoval "$T/sima.h5" frames)" = 20 ] || fail "sima frames"
[ "$(infoval "$T/sima.h5" size)" = "128 x 256 (height x width)" ] || fail "sima size: $(infoval "$T/sima.h5" size)"
ok "fissa 3 trials" "$CAIMG" import "$TESTDATA"/real/fissa/images/AVG_A0*.tif -o "$T/fissa.h5"
[ "$(infoval "$T/fissa.h5" frames)" = 87 ] || fail "fissa frames: $(infoval "$T/fissa.h5" frames)"

# --- info on TIFF and on HDF5 ------------------------------------------------
ok "info tiff" "$CAIMG" info "$T/ij.tif"
grep -q "channels=2" "$T/out" || fail "info tiff: imagej metadata"
ok "info h5" "$CAIMG" info "$T/f.h5"
grep -q "00_import" "$T/out" || fail "info: provenance"

# --- export ------------------------------------------------------------------
ok "export tsv" "$CAIMG" export "$T/p.h5" -d /movie --format tiff --frames 2-2 -o "$T/one.tif"
ok "reimport" "$CAIMG" import "$T/one.tif" -o "$T/one.h5"
[ "$(h5val "$T/one.h5" /movie 0,0,1)" = 1001 ] || fail "export --frames"
ok "export uint8" "$CAIMG" export --dtype uint8 "$T/p.h5" -o "$T/u8.tif"
[ "$(infoval "$T/u8.tif" dtype)" = uint8 ] || fail "export --dtype uint8"
ok "export range" "$CAIMG" export --dtype uint8 --range 0:2000 "$T/p.h5" -o "$T/u8r.tif"
ok "export lzw" "$CAIMG" export --compression lzw "$T/p.h5" -o "$T/lzw.tif"
[ "$("$MKTIFF" --sum "$T/p.tif")" = "$("$MKTIFF" --sum "$T/lzw.tif")" ] || fail "export lzw round trip"
ok "export bigtiff" "$CAIMG" export --bigtiff "$T/p.h5" -o "$T/big.tif"
[ "$(infoval "$T/big.tif" format)" = BigTIFF ] || fail "export --bigtiff"
bad 1 "group /provenance holds no vectors" "$T/prov.tsv" "export group without vectors" "$CAIMG" export "$T/p.h5" -d /provenance -o "$T/prov.tsv"

# --- usage errors: exit 2 -------------------------------------------------------
bad 2 "unrecognized option|unknown option" "" "unknown option" "$CAIMG" import --bogus "$T/p.tif" -o "$T/x.h5"
bad 2 "no output file" "" "no -o" "$CAIMG" import "$T/p.tif"
bad 2 "no input files" "" "no input" "$CAIMG" import -o "$T/x.h5"
bad 2 "--channel: '0' is not an integer" "$T/x.h5" "channel 0" "$CAIMG" import --channel 0 "$T/p.tif" -o "$T/x.h5"
bad 2 "--frames" "$T/x.h5" "bad range" "$CAIMG" import --frames 5-2 "$T/p.tif" -o "$T/x.h5"
bad 2 "--dtype" "$T/x.h5" "bad dtype" "$CAIMG" import --dtype complex "$T/p.tif" -o "$T/x.h5"
bad 2 "no such command" "" "unknown command" "$CAIMG" frobnicate
bad 2 "cannot tell the format" "" "export ext" "$CAIMG" export "$T/p.h5" -o "$T/x.dat"

# --- requests the data cannot satisfy: exit 2, like any bad option value -----
# A well-formed --frames, --channel or --plane that does not fit the movie
# is corrected on the command line, not in the data: every stage calls it a
# usage error (as export --frames and mc --max-shift always did), with one
# line naming the file.
bad 2 "^caimg import: .*p.tif: --frames out of range: the movie has 3 frames$" "$T/x.h5" \
    "range past end" "$CAIMG" import --frames 2-9 "$T/p.tif" -o "$T/x.h5"
bad 2 "^caimg import: .*p.tif: --frames out of range: the movie has 3 frames$" "$T/x.h5" \
    "range starting past the end" "$CAIMG" import --frames 4- "$T/p.tif" -o "$T/x.h5"
bad 2 "^caimg import: .*i.tif: channel 3 requested, the data has 2$" "$T/x.h5" \
    "channel past the last" "$CAIMG" import --channels 2 --channel 3 "$T/i.tif" -o "$T/x.h5"
bad 2 "^caimg import: .*ij.tif: plane 3 requested, the data has 2$" "$T/x.h5" \
    "plane past the last (ImageJ metadata)" "$CAIMG" import --plane 3 "$T/ij.tif" -o "$T/x.h5"
bad 2 "^caimg import: .*p.tif: plane 3 requested, the data has 1$" "$T/x.h5" \
    "plane out of range" "$CAIMG" import --plane 3 "$T/p.tif" -o "$T/x.h5"
bad 2 "^caimg mc: .*i.tif: channel 3 requested, the data has 2$" "$T/x.h5" \
    "mc channel past the last" "$CAIMG" mc -q --channels 2 --channel 3 "$T/i.tif" -o "$T/x.h5"
bad 2 "^caimg export: .*p.h5: --frames out of range: /movie has 3 frames$" "$T/x.tif" \
    "export frames past the end" "$CAIMG" export --frames 3-4 "$T/p.h5" -o "$T/x.tif"

# --- data errors: exit 1, one line naming the file, nothing left behind ------
bad 1 "nothere.tif" "$T/x.h5" "missing input" "$CAIMG" import "$T/nothere.tif" -o "$T/x.h5"
"$MKTIFF" -o "$T/small.tif" -w 10 -h 10 -n 2 -t uint16
bad 1 "small.tif: pages are 10x10|10x10" "$T/x.h5" "files of different size" "$CAIMG" import "$T/p.tif" "$T/small.tif" -o "$T/x.h5"
"$MKTIFF" -o "$T/f32.tif" -w 20 -h 10 -n 2 -t float32
bad 1 "float32" "$T/x.h5" "files of different type" "$CAIMG" import "$T/p.tif" "$T/f32.tif" -o "$T/x.h5"
bad 2 "output would overwrite an input" "" "overwrite input" "$CAIMG" import --dataset /movie "$T/p.h5" -o "$T/p.h5"
[ -s "$T/p.h5" ] && "$CAIMG" info "$T/p.h5" >/dev/null || fail "input damaged by refused overwrite"
bad 1 "no dataset /nope" "$T/x.tif" "export missing dataset" "$CAIMG" export -d /nope "$T/p.h5" -o "$T/x.tif"
bad 1 "no dataset or group /nope" "$T/x.tsv" "export missing dataset tsv" "$CAIMG" export -d /nope "$T/p.h5" -o "$T/x.tsv"
bad 1 "not an HDF5 file|neither" "$T/x.tif" "export from tiff" "$CAIMG" export "$T/p.tif" -o "$T/x.tif"
bad 1 "nothere.h5" "" "info missing" "$CAIMG" info "$T/nothere.h5"
mkdir "$T/ro" && chmod 500 "$T/ro"
if [ "$(id -u)" -ne 0 ]; then
    bad 1 "cannot create" "$T/ro/x.h5" "unwritable output dir" "$CAIMG" import "$T/p.tif" -o "$T/ro/x.h5"
fi

# --- help and version -----------------------------------------------------------
ok "help" "$CAIMG" --help
for cmd in import info export; do
    ok "help $cmd" "$CAIMG" help $cmd
    grep -q "Usage: caimg $cmd" "$T/out" || fail "caimg help $cmd"
    ok "$cmd -h" "$CAIMG" $cmd -h
done
# A description copied from a larger stack (tiffcp of some pages, a cropped
# export) claims more images than the file has pages.  The pages are what
# there is: reading "the rest of the stack" after the first page's data
# gave other pages' headers as pixels, and a single page described as one
# of 3500 slices was refused as truncated.
"$MKTIFF" -o "$T/stale.tif" -w 7 -h 6 -n 18 -t uint16 --description "$(printf \
    'ImageJ=1.48v\nimages=30\nchannels=2\nslices=3\nframes=5\nhyperstack=true\n')" ||
    fail "mktiff stale"
ok "import, stale ImageJ description" "$CAIMG" import -q --channel 2 --plane 3 "$T/stale.tif" \
    -o "$T/stale.h5"
# Channel 2, plane 3 of volume t is page 1 + 2 (2 + 3 t): 5, 11, 17.
v=$(h5dump -d /movie -s 0,0,0 -c 3,1,1 -y -w 0 "$T/stale.h5" |
    awk '/DATA \{/ {n++; next} n == 1 && /}/ {exit} n == 1 {printf "%s,", $1}')
[ "$v" = "5000,11000,17000," ] || fail "stale description: frames $v, expected pages 5, 11, 17"
"$CAIMG" info -v "$T/stale.h5" | grep -q "# channels = 2 (from the metadata)" ||
    fail "the channels read from the metadata are not in the provenance"
"$MKTIFF" -o "$T/one.tif" -w 9 -h 8 -n 1 -t uint16 --description "$(printf \
    'ImageJ=1.48v\nimages=3500\nslices=3500\n')" || fail "mktiff one"
ok "import, a page described as one of 3500" "$CAIMG" import -q "$T/one.tif" "$T/one.tif" \
    -o "$T/one.h5"
h5dump -H -d /movie "$T/one.h5" | grep -q "( 2, 8, 9 )" || fail "one page of 3500: not 2 frames"
# Channels and planes are chosen in TIFF stacks only; on an HDF5 movie the
# options were ignored but recorded as applied.
bad 2 "stale.h5: channels and planes can only be chosen in TIFF stacks" "$T/ch.h5" \
    "import --channel of an HDF5 movie" "$CAIMG" import --channels 2 --channel 2 "$T/stale.h5" \
    -o "$T/ch.h5"
ok "version" "$CAIMG" --version
grep -q "^caimg [0-9]" "$T/out" || fail "--version"

finish
