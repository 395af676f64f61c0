#!/usr/bin/python3
"""roi_ceiling.py -- how visible each simulated soma is to an oracle that
knows where it is and what it looks like: what is there to be found.

    python3 bench/roi_ceiling.py MOVIE.h5 TRUTH.h5 ROI.h5 [--bin N] [--fs HZ] [--diameter D]

MOVIE.h5 and TRUTH.h5 are from `caimg simulate -o MOVIE.h5 --truth
TRUTH.h5` (best still: --motion-sd 0 --jitter 0 --jump-rate 0), ROI.h5 is
`caimg roi MOVIE.h5 -o ROI.h5`.  The script runs `caimg eval` (from PATH or
$CAIMG) for which somata were found, and measures for every soma the two
kinds of evidence caimg roi looks for (caimg-roi(1), Detection), but as an
oracle that knows where the soma is and what it looks like:

  activity  the soma's true footprint (its /truth/pix_* weights) applied to
            the movie prepared as the detector prepares it (bins of about a
            decay time, 30 s running mean removed, divided by the resting
            brightness, a box mean of 3 diameters removed), the trace
            z-scored by its own median and robust s.d., and the detector's
            statistic sum((z - 1.5)+) in noise units (S; the detector's
            threshold, on the best of ~65,000 pixels, is 6).
  mean image the soma's true footprint as a matched filter on the mean image
            (divided by its 12-pixel Gaussian background) less the median of
            a ring around it that no soma covers, in units of the s.d. of
            the same filter at random soma-free places (z).

A soma with S < 3 and z < 2 is faint in both: even for an oracle it stands
out no more than the noise and the neuropil's texture do at many other
places of the field (a few such somata are still found, by the soma shape
and the classifier's other features).  numpy and h5py only.
Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np


def running_mean(x, w, axis=0):
    """Centred running mean over w samples along axis, shortened at the ends
    (as the detector's high-pass)."""
    n = x.shape[axis]
    c = np.cumsum(x, axis=axis, dtype=np.float64)
    c = np.concatenate([np.zeros_like(np.take(c, [0], axis=axis)), c], axis=axis)
    k = np.arange(n)
    a = np.clip(k - w // 2, 0, n)
    b = np.clip(k + w // 2 + 1, 0, n)
    shape = [1] * x.ndim
    shape[axis] = n
    return ((np.take(c, b, axis=axis) - np.take(c, a, axis=axis))
            / (b - a).reshape(shape)).astype(np.float32)


def box_mean_2d(x, r):
    """Mean over the (2r+1)^2 box around each pixel, truncated at the
    borders, for every frame of x [..., H, W]."""
    return running_mean(running_mean(x, 2 * r + 1, axis=-2), 2 * r + 1, axis=-1)


def gauss_2d(img, sigma):
    """Gaussian blur, normalised by the part of the kernel inside."""
    r = int(np.ceil(3 * sigma))
    g = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    out = img
    for axis in (0, 1):
        conv = lambda v: np.convolve(v, g, mode="same")
        num = np.apply_along_axis(conv, axis, out)
        den = np.apply_along_axis(conv, axis, np.ones_like(out))
        out = num / den
    return out


def dilate(m, it):
    """4-connected binary dilation, `it` times."""
    m = m.copy()
    for _ in range(it):
        d = m.copy()
        d[1:, :] |= m[:-1, :]
        d[:-1, :] |= m[1:, :]
        d[:, 1:] |= m[:, :-1]
        d[:, :-1] |= m[:, 1:]
        m = d
    return m


def phi_moments(th):
    """Mean and variance of (z - th)+ for standard normal z."""
    from math import erfc, exp, pi, sqrt
    pdf = exp(-0.5 * th * th) / sqrt(2 * pi)
    sf = 0.5 * erfc(th / sqrt(2))
    m1 = pdf - th * sf
    m2 = (1 + th * th) * sf - th * pdf
    return m1, m2 - m1 * m1


def main(argv):
    # argparse: an option's value (--bin 6) must not be taken for a file.
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("movie")
    ap.add_argument("truth")
    ap.add_argument("roi")
    ap.add_argument("--fs", type=float, default=30.0)
    ap.add_argument("--bin", type=int, default=6)
    ap.add_argument("--diameter", type=float, default=12.0)
    a = ap.parse_args(argv[1:])
    movie, truth, roi, fs, binf, diameter = a.movie, a.truth, a.roi, a.fs, a.bin, a.diameter
    caimg = os.environ.get("CAIMG", "caimg")

    with tempfile.TemporaryDirectory() as tmp:
        pn = os.path.join(tmp, "pn.tsv")
        subprocess.run([caimg, "eval", "-q", "--truth", truth, roi, "--per-neuron", pn],
                       check=True, stdout=subprocess.DEVNULL)
        found = np.genfromtxt(pn, names=True)["roi"] >= 0

    t = h5py.File(truth, "r")["truth"]
    ps, pi, pw = t["pix_start"][:], t["pix_index"][:], t["pix_weight"][:]
    N = len(ps) - 1
    mv = h5py.File(movie, "r")["movie"]
    T, H, W = mv.shape
    nb = T // binf

    # The movie binned, in blocks (never the whole float movie at once).
    binned = np.empty((nb, H, W), np.float32)
    mean = np.zeros((H, W), np.float64)
    step = binf * max(1, 256 // binf)
    for t0 in range(0, nb * binf, step):
        blk = mv[t0:min(t0 + step, nb * binf)].astype(np.float32)
        mean += blk.sum(0)
        binned[t0 // binf:t0 // binf + len(blk) // binf] = \
            blk.reshape(-1, binf, H, W).mean(1)
    mean = (mean / (nb * binf)).astype(np.float32)

    # Activity, prepared as the detector prepares it.
    binned -= running_mean(binned, max(5, int(30 * fs / binf)))
    binned /= np.maximum(mean, 0.1 * np.median(mean))
    binned -= box_mean_2d(binned, int(1.5 * diameter + 0.5))
    th = 1.5
    m1, v1 = phi_moments(th)
    S = np.empty(N)
    for i in range(N):
        a, b = ps[i], ps[i + 1]
        tr = (binned[:, pi[a:b, 0], pi[a:b, 1]] * pw[a:b]).sum(1)
        med = np.median(tr)
        sd = 1.4826 * np.median(np.abs(tr - med))
        z = (tr - med) / sd if sd > 0 else np.zeros_like(tr)
        S[i] = (np.clip(z - th, 0, None).sum() - m1 * nb) / np.sqrt(v1 * nb)
    del binned

    # The mean image, as a matched filter against the texture.
    img = mean / gauss_2d(mean.astype(np.float64), diameter)
    anycell = np.zeros((H, W), bool)
    anycell[pi[:, 0], pi[:, 1]] = True

    def response(ys, xs, w):
        m = np.zeros((H, W), bool)
        m[ys, xs] = True
        ring = dilate(m, 5) & ~m & ~anycell
        if ring.sum() < 15:
            return np.nan
        return (w / np.sqrt((w * w).sum()) * (img[ys, xs] - np.median(img[ring]))).sum()

    resp = np.array([response(pi[ps[i]:ps[i + 1], 0], pi[ps[i]:ps[i + 1], 1], pw[ps[i]:ps[i + 1]])
                     for i in range(N)])
    rng = np.random.default_rng(1)
    clutter = []
    for _ in range(50000):
        if len(clutter) >= 300:
            break
        i = rng.integers(N)
        a, b = ps[i], ps[i + 1]
        cy, cx = rng.integers(10, H - 10), rng.integers(10, W - 10)
        ys = pi[a:b, 0] - int(pi[a:b, 0].mean()) + cy
        xs = pi[a:b, 1] - int(pi[a:b, 1].mean()) + cx
        if ys.min() < 0 or xs.min() < 0 or ys.max() >= H or xs.max() >= W:
            continue
        if anycell[ys, xs].mean() > 0.02:
            continue
        v = response(ys, xs, pw[a:b])
        if np.isfinite(v):
            clutter.append(v)
    clutter = np.array(clutter)
    if len(clutter) < 30:
        sys.exit("roi_ceiling: fewer than 30 soma-free places to measure the texture")
    zc = (resp - clutter.mean()) / clutter.std()

    faint = (S < 3) & ~(zc >= 2)
    q = lambda v: " ".join("%5.2f" % x for x in np.nanpercentile(v, [10, 50, 90]))
    print("somata %d, found %d, missed %d (%d bins of %d frames; texture from %d places)"
          % (N, found.sum(), (~found).sum(), nb, binf, len(clutter)))
    print("         activity S (10/50/90 %)   mean-image z (10/50/90 %)   faint (S < 3, z < 2)")
    print("found    %s          %s           %d" % (q(S[found]), q(zc[found]), (faint & found).sum()))
    print("missed   %s          %s           %d" % (q(S[~found]), q(zc[~found]), (faint & ~found).sum()))

if __name__ == "__main__":
    main(sys.argv)
