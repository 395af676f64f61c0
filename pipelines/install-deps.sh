#!/bin/sh
# install-deps.sh -- install the Debian 12 packages caimg needs to build and
# test, skipping those already present.  Run as root.
# Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
set -e
PKGS="build-essential autoconf automake libtool pkg-config
      libtiff-dev libfftw3-dev libhdf5-dev libgsl-dev libopenblas-dev check
      zlib1g-dev libtiff-tools hdf5-tools man-db"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    # shellcheck disable=SC2086
    apt-get install -y --no-install-recommends $missing
fi
