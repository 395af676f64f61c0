#!/bin/sh
# cli_report.sh -- caimg report writes a page that headless Chromium renders
# without errors (skipped, with a message, when chromium is absent).
# Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
. "${top_srcdir:-.}/tests/cli-lib.sh"

ok "import" "$CAIMG" import -q "$TESTDATA/real/sima/example.tif" -o "$T/raw.h5"
ok "report" "$CAIMG" report --title "SIMA <example>" "$T/raw.h5" -o "$T/r.html"
grep -q "<title>caimg report: SIMA &lt;example&gt;</title>" "$T/r.html" || fail "title not escaped"
grep -q "data:image/png;base64," "$T/r.html" || fail "no mean image"
bad 1 "nothere.h5" "$T/x.html" "missing input" "$CAIMG" report "$T/nothere.h5" -o "$T/x.html"
bad 1 "not a caimg file" "$T/x.html" "foreign HDF5" "$CAIMG" report "$TESTDATA/bad/not-caimg.h5" -o "$T/x.html"
bad 2 "no output file" "" "no -o" "$CAIMG" report "$T/raw.h5"
bad 2 "--cells" "$T/x.html" "bad --cells" "$CAIMG" report --cells 100 "$T/raw.h5" -o "$T/x.html"

browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
    echo "SKIP: rendering check: chromium is not installed (apt-get install chromium)"
    finish
    exit $?
fi
# Flags as Debian's chromium needs them headless as root on a closed network.
render() {
    timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$T/profile" "$@" 2>"$T/chromium.err"
}
render --dump-dom "file://$T/r.html" > "$T/dom.html" || fail "chromium could not load the report"
# The parsed DOM keeps every section and figure of the source.
for id in summary images provenance; do
    grep -q "<section id=\"$id\">" "$T/dom.html" || fail "rendered page lacks section $id"
done
[ "$(grep -o '<svg' "$T/dom.html" | wc -l)" = "$(grep -o '<svg' "$T/r.html" | wc -l)" ] ||
    fail "chromium dropped some SVG figures"
grep -Ei "Uncaught|SyntaxError|error on line" "$T/dom.html" "$T/chromium.err" && fail "page errors"
render --window-size=1200,1600 --screenshot="$T/r.png" "file://$T/r.html" >/dev/null ||
    fail "chromium could not render the report"
[ -s "$T/r.png" ] || fail "no screenshot"
finish
