"""deconv_speed_numba.py -- the reference for bench/deconv_speed.sh: Suite2p's
deconvolution (suite2p.extraction.dcnv.oasis, 0.14) as Suite2p runs it, in
numba: AR(1) OASIS with the decay given, no sparsity penalty, single
precision, neurons in batches (500, Suite2p's default batch_size) with the
work arrays allocated per batch, threads across the neurons of a batch.

Usage: python3 deconv_speed_numba.py TRACES.f32 N T THREADS REPEATS [TAU FS]

TRACES.f32 is N x T float32 (bench/deconv_speed -w).  Prints the best
wall-clock rate and the rate from the process's CPU time (times the
threads), in traces per second, on one line.  Needs python3-numba.

Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
"""
import sys
import time

import numba
import numpy as np

SIG1 = "void(float32[:], float32[:], float32[:], int64[:], float32[:], float32[:], float32, float32)"
SIG2 = SIG1.replace("[:]", "[:,:]")


@numba.njit(SIG1)
def pools(y, val, wt, start, length, s, tau, fs):
    """One trace: pools of constant decay, merged while a pool's value is
    below the decayed value of the one before; s is written at the pool
    starts only (as Suite2p does)."""
    a = -1.0 / (tau * fs)
    n = 0
    for t in range(y.shape[0]):
        val[n] = y[t]
        wt[n] = 1
        start[n] = t
        length[n] = 1
        while n > 0:
            if val[n - 1] * np.exp(a * length[n - 1]) > val[n]:
                d1 = np.exp(a * length[n - 1])
                d2 = np.exp(2 * a * length[n - 1])
                w = wt[n - 1] + wt[n] * d2
                val[n - 1] = (val[n - 1] * wt[n - 1] + val[n] * wt[n] * d1) / w
                wt[n - 1] = w
                length[n - 1] = length[n - 1] + length[n]
                n -= 1
            else:
                break
        n += 1
    s[start[1:n]] = val[1:n] - val[:n - 1] * np.exp(a * length[:n - 1])


@numba.njit(SIG2, parallel=True)
def pools_batch(Y, val, wt, start, length, S, tau, fs):
    for i in numba.prange(Y.shape[0]):
        pools(Y[i], val[i], wt[i], start[i], length[i], S[i], tau, fs)


def deconvolve(Y, tau, fs, batch=500):
    N, T = Y.shape
    out = np.zeros((N, T), np.float32)
    for i in range(0, N, batch):
        y = Y[i:i + batch]
        val = np.zeros(y.shape, np.float32)
        wt = np.zeros(y.shape, np.float32)
        start = np.zeros(y.shape, np.int64)
        length = np.zeros(y.shape, np.float32)
        s = np.zeros(y.shape, np.float32)
        pools_batch(y, val, wt, start, length, s, tau, fs)
        out[i:i + batch] = s
    return out


def main():
    if len(sys.argv) not in (6, 8):
        sys.exit(__doc__.split("\n\n")[1])
    path, N, T, threads, reps = sys.argv[1], *map(int, sys.argv[2:6])
    tau, fs = (float(sys.argv[6]), float(sys.argv[7])) if len(sys.argv) == 8 else (0.5, 30.0)
    numba.set_num_threads(threads)
    Y = np.fromfile(path, np.float32)
    if Y.size != N * T:
        sys.exit(f"{path}: {Y.size} samples, expected {N} x {T}")
    Y = Y.reshape(N, T)
    deconvolve(Y[:2], tau, fs)   # compile outside the timing
    wall = cpu = float("inf")
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        deconvolve(Y, tau, fs)
        wall = min(wall, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    print(f"{N / wall:.0f} {N / cpu * threads:.0f}")


if __name__ == "__main__":
    main()
