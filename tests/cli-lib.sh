# cli-lib.sh -- helpers for the command-line tests; sourced by tests/cli_*.sh.
# Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
#
# Environment (set by make check): CAIMG, top_srcdir, top_builddir.

set -u
: "${CAIMG:=$(pwd)/caimg}"
: "${top_srcdir:=$(pwd)}"
: "${top_builddir:=$(pwd)}"
TESTDATA=$top_srcdir/testdata
MKTIFF=$top_builddir/tests/mktiff
T=$(mktemp -d /tmp/caimg-cli-XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
ntests=0

fail() {
    echo "FAIL: $*" >&2
    fails=$((fails + 1))
}

# finite FILE DATASET: no NaN or Inf anywhere in the dataset.  Only the
# values are searched: the header names the file, whose random temporary
# directory may itself spell "nan" or "inf".
finite() { ! h5dump -d "$2" "$1" | sed -n '/^ *DATA {/,$p' | grep -Eqi 'nan|inf'; }

# ok DESCRIPTION CMD...: the command must succeed.
ok() {
    desc=$1; shift
    ntests=$((ntests + 1))
    "$@" >"$T/out" 2>"$T/err"
    _st=$?
    if [ "$_st" -ne 0 ]; then
        fail "$desc: '$*' exited $_st ($(head -c 300 "$T/err"))"
        return 1
    fi
    return 0
}

# bad STATUS PATTERN OUTPUT DESCRIPTION CMD...: the command must exit with
# STATUS, print exactly one line on stderr matching PATTERN (grep -E), and
# leave neither OUTPUT nor any temporary file next to it.
bad() {
    _want=$1 _pat=$2 _out=$3 _desc=$4; shift 4
    ntests=$((ntests + 1))
    "$@" >"$T/out" 2>"$T/err"
    _st=$?
    if [ "$_st" -ne "$_want" ]; then
        fail "$_desc: exit status $_st, expected $_want ($(head -c 300 "$T/err"))"
        return 1
    fi
    _lines=$(grep -vc '^Try ' "$T/err")
    if [ "$_lines" -ne 1 ]; then
        fail "$_desc: expected one error line, got $_lines: $(head -c 500 "$T/err")"
    fi
    if ! grep -Eq -- "$_pat" "$T/err"; then
        fail "$_desc: message '$(head -1 "$T/err")' does not match '$_pat'"
    fi
    if grep -Eqi 'AddressSanitizer|runtime error|Segmentation|Aborted|HDF5-DIAG' "$T/err"; then
        fail "$_desc: crashed or a library printed: $(head -c 300 "$T/err")"
    fi
    if [ -n "$_out" ]; then
        [ -e "$_out" ] && fail "$_desc: output $_out was left behind"
        ls "$(dirname "$_out")" | grep -q '\.tmp\.' && fail "$_desc: a temporary file was left behind"
    fi
    return 0
}

# h5val FILE DATASET INDEX: one value of a dataset, INDEX as "t,y,x".
h5val() {
    cnt=$(echo "$3" | sed 's/[0-9][0-9]*/1/g')
    h5dump -d "$2" -s "$3" -c "$cnt" "$1" 2>/dev/null |
        sed -n 's/^ *([0-9,]*): *\([-0-9.eE+na]*\).*/\1/p' | head -1
}

# infoval FILE KEY: a value from caimg info --tsv.
infoval() {
    "$CAIMG" info --tsv "$1" | awk -F'\t' -v k="$2" '$2 == k {print $3; exit}'
}

# params_config FILE STAGE CONFIG: the parameters of the last STAGE record
# in FILE's provenance, written as section [STAGE] of a --config file.
params_config() {
    _rec=$("$CAIMG" info --tsv "$1" | awk -F'\t' -v s="$2" \
        '$2 == "provenance" { split($3, a, " "); if (a[1] ~ ("^[0-9]+_" s "$")) r = a[1] } END { print r }')
    [ -n "$_rec" ] || return 1
    { echo "[$2]"
      "$CAIMG" info -v --tsv "$1" | awk -F'\t' -v r="$_rec  " \
          '$2 == "parameter" && substr($3, 1, length(r)) == r { print substr($3, length(r) + 1) }'
    } > "$3"
}

finish() {
    echo "$ntests checks, $fails failures"
    [ "$fails" -eq 0 ]
}
