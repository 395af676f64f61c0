#!/bin/sh
# quickstart.sh -- from a fresh Debian 12 clone to results: install what is
# missing, build caimg, and run the demo pipeline on bundled data.
# Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
set -e
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
sh pipelines/install-deps.sh
[ -x configure ] || autoreconf -fi
[ -f Makefile ] || ./configure
make -j"$(nproc)"
sh pipelines/demo.sh "$top/demo"
