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
echo
echo "== roi: cells from activity and the mean image, neuropil masks, traces F and Fneu"
"$caimg" roi -v --diameter 14 "$out/mc.h5" -o "$out/roi.h5"
"$caimg" export "$out/roi.h5" -d /roi/labels -o "$out/labels.tif"
"$caimg" export "$out/roi.h5" -d /roi/mean -o "$out/mean.tif"
"$caimg" export "$out/roi.h5" -d /roi/F -o "$out/F.tsv"
"$caimg" export "$out/roi.h5" -d /roi/stats -o "$out/stats.tsv"
echo
echo "== roi with the ImageJ ROIs drawn by the SIMA authors (traces only)"
"$caimg" roi --masks "$top/testdata/real/sima/imageJ_ROIs.zip" "$out/mc.h5" -o "$out/roi_imagej.h5"
"$caimg" export "$out/roi_imagej.h5" -d /roi/F -o "$out/F_imagej.tsv"
echo
"$caimg" report "$out/roi.h5" -o "$out/report.html"
echo "Report: $out/report.html"
echo "Results are in $out/: labels.tif and mean.tif open in ImageJ, F.tsv and"
echo "stats.tsv in a spreadsheet; the HDF5 files with h5py, HDFView or 'caimg export'."
