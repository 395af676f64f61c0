#!/bin/sh
# cli_manpages.sh -- every subcommand has a manual page with the required
# sections, documenting every option its -h lists; caimg(1) and caimg-h5(5)
# exist and name every command.
# Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
. "${top_srcdir:-.}/tests/cli-lib.sh"

man=$top_srcdir/man
cmds=$("$CAIMG" --help | sed -n 's/^  \([a-z][a-z0-9-]*\)  .*/\1/p')
[ -n "$cmds" ] || fail "caimg --help lists no commands"
[ -f "$man/caimg.1" ] || fail "man/caimg.1 missing"
[ -f "$man/caimg-h5.5" ] || fail "man/caimg-h5.5 missing"
for cmd in $cmds; do
    page=$man/caimg-$cmd.1
    ntests=$((ntests + 1))
    if [ ! -f "$page" ]; then
        fail "caimg $cmd has no manual page ($page)"
        continue
    fi
    for sec in NAME SYNOPSIS DESCRIPTION OPTIONS EXAMPLES "EXIT STATUS" "SEE ALSO"; do
        grep -q "^\.SH \"*$sec\"*\$" "$page" || fail "caimg-$cmd.1 lacks section $sec"
    done
    grep -q "caimg-$cmd" "$man/caimg.1" || fail "caimg.1 does not mention caimg-$cmd"
    # Every long option printed by -h must be documented (roff writes \-).
    sed 's/\\-/-/g' "$page" > "$T/page"
    for opt in $("$CAIMG" "$cmd" -h | grep -o -- '--[a-z][a-z0-9-]*' | sort -u); do
        grep -q -- "$opt\\b" "$T/page" || fail "caimg-$cmd.1 does not document $opt"
    done
    # And the page must render without warnings.
    if command -v man >/dev/null 2>&1; then
        w=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null | head -3)
        [ -z "$w" ] || fail "caimg-$cmd.1 renders with warnings: $w"
    fi
done
finish
