#!/bin/sh
# caimg-pipeline.sh -- the caimg pipeline as a plain shell script, for one
# recording.  Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
#
#   caimg-pipeline.sh [-c CONFIG] [-s SCHEDULE.tsv -i STIMULI.tif] -o OUTDIR INPUT.tif...
#
# Runs import, mc, roi, dff, deconv (and fit and attack when a stimulus
# schedule and images are given) and writes a report, into OUTDIR.  A stage
# whose output is newer than its input and the config is skipped, so a rerun
# redoes only what is missing.  The first stage that fails stops the
# pipeline with that stage's error; earlier results are kept.
set -eu

CAIMG=${CAIMG:-caimg}
config='' schedule='' stimuli='' out=''
usage() {
    echo "usage: $0 [-c CONFIG] [-s SCHEDULE.tsv -i STIMULI.tif] -o OUTDIR INPUT.tif..." >&2
    exit 2
}
while getopts c:s:i:o:h opt; do
    case $opt in
    c) config=$OPTARG ;;
    s) schedule=$OPTARG ;;
    i) stimuli=$OPTARG ;;
    o) out=$OPTARG ;;
    *) usage ;;
    esac
done
shift $((OPTIND - 1))
if [ -z "$out" ] || [ $# -eq 0 ]; then usage; fi
if { [ -n "$schedule" ] && [ -z "$stimuli" ]; } || { [ -z "$schedule" ] && [ -n "$stimuli" ]; }; then
    echo "$0: -s SCHEDULE and -i STIMULI go together" >&2
    exit 2
fi
mkdir -p "$out"
conf=${config:+--config "$config"}

# stale OUTPUT INPUT...: true when OUTPUT is missing or older than an input
# or the config file.
stale() {
    target=$1; shift
    [ -e "$target" ] || return 0
    for dep in "$@" ${config:+"$config"}; do
        # shellcheck disable=SC3013
        [ "$dep" -nt "$target" ] && return 0
    done
    return 1
}

# run STAGE OUTPUT INPUT [options]: one stage, skipped when up to date.
run() {
    stage=$1 target=$2 input=$3; shift 3
    if stale "$target" "$input"; then
        echo "== caimg $stage -> $target"
        # shellcheck disable=SC2086
        "$CAIMG" "$stage" $conf "$input" "$@" -o "$target"
    else
        echo "== caimg $stage: $target is up to date"
    fi
}

if stale "$out/raw.h5" "$@"; then
    echo "== caimg import -> $out/raw.h5"
    # shellcheck disable=SC2086
    "$CAIMG" import $conf "$@" -o "$out/raw.h5"
else
    echo "== caimg import: $out/raw.h5 is up to date"
fi
run mc "$out/mc.h5" "$out/raw.h5"
run roi "$out/roi.h5" "$out/mc.h5"
run dff "$out/dff.h5" "$out/roi.h5"
run deconv "$out/spikes.h5" "$out/dff.h5"
results="$out/spikes.h5"
if [ -n "$schedule" ]; then
    run fit "$out/model.h5" "$out/spikes.h5" --schedule "$schedule" --stimuli "$stimuli"
    run attack "$out/robustness.h5" "$out/model.h5"
    results="$results $out/robustness.h5"
fi
# shellcheck disable=SC2086
"$CAIMG" report $conf $results -o "$out/report.html"
echo "report: $out/report.html"
