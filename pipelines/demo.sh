#!/bin/sh
# demo.sh -- run caimg on the bundled demo data; results go to DIR [./demo].
# Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
set -e
top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-demo}
caimg=${CAIMG:-$top/caimg}
mkdir -p "$out"
echo "== import: a real hippocampal two-photon recording (SIMA example, 20 frames)"
"$caimg" import "$top/testdata/real/sima/example.tif" -o "$out/raw.h5"
"$caimg" info "$out/raw.h5"
echo
echo "== mc: motion correction"
"$caimg" mc -v "$out/raw.h5" -o "$out/mc.h5"
"$caimg" info "$out/mc.h5"
"$caimg" report "$out/mc.h5" -o "$out/report.html"
echo
echo "Report: $out/report.html"
echo "Results are in $out/ (open raw.h5 and mc.h5 with h5py, HDFView or 'caimg export')."
