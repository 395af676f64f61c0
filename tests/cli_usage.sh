#!/bin/sh
# cli_usage.sh -- every subcommand reports a command-line mistake the way it
# reports anything else: one line starting "caimg CMD:", the usage hint, and
# exit status 2 -- including the mistakes getopt finds (unknown options,
# missing or unwanted arguments, ambiguous abbreviations).
# Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
. "${top_srcdir:-.}/tests/cli-lib.sh"

cmds=$("$CAIMG" --help | sed -n 's/^  \([a-z][a-z0-9-]*\)  .*/\1/p')
[ -n "$cmds" ] || fail "caimg --help lists no commands"
for cmd in $cmds; do
    bad 2 "^caimg $cmd: unrecognized option '--bogus'$" "" "$cmd --bogus" "$CAIMG" $cmd --bogus
    bad 2 "^caimg $cmd: unrecognized option '--bogus=1'$" "" "$cmd --bogus=1" "$CAIMG" $cmd --bogus=1
    bad 2 "^caimg $cmd: option '--output' requires an argument$" "" "$cmd --output" \
        "$CAIMG" $cmd --output
    bad 2 "^caimg $cmd: option requires an argument -- 'o'$" "" "$cmd -o" "$CAIMG" $cmd -o
    bad 2 "^caimg $cmd: invalid option -- 'Z'$" "" "$cmd -Z" "$CAIMG" $cmd -Z
    bad 2 "^caimg $cmd: invalid option -- 'Z'$" "" "$cmd -qZ" "$CAIMG" $cmd -qZ
    bad 2 "^caimg $cmd: option '--quiet' doesn't allow an argument$" "" "$cmd --quiet=1" \
        "$CAIMG" $cmd --quiet=1
    grep -q "^Try 'caimg $cmd -h' for more information.$" "$T/err" || fail "$cmd: no usage hint"
done
# Abbreviations work when unique and are refused, with the candidates, when not.
bad 2 "^caimg roi: option '--np' is ambiguous; possibilities: '--np-gap' '--np-min-pixels' '--np-coeff'$" \
    "" "ambiguous abbreviation" "$CAIMG" roi --np 3
bad 2 "^caimg roi: option '--method' requires an argument$" "" "roi --method" "$CAIMG" roi --method
bad 2 "^caimg export: option requires an argument -- 'd'$" "" "export -d" "$CAIMG" export -d
bad 2 "^caimg roi: no input file$" "" "unique abbreviation" "$CAIMG" roi --meth activity -o "$T/x.h5"

finish
