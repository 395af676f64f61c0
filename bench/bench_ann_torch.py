#!/usr/bin/env python3
# bench_ann_torch.py -- PyTorch reference for bench/bench_ann (bench only;
# caimg never depends on PyTorch).  Copyright (C) 2026 the caimg authors.
# GPL-3.0-or-later.
#
# The same network as caimg's "conv2" preset: conv 16 9x9 pad=same, ELU,
# conv 16 7x7 pad=same, ELU, factorised readout (spatial mask x feature
# weights + bias per neuron), softplus; Poisson loss plus the same
# penalties (L2 on weights, L1 on the readout, Laplacian smoothness of the
# first-layer kernels and of the masks); Adam.  Reports training samples/s
# (best epoch), prediction and input-gradient samples/s, like bench_ann.
#
# Usage: bench_ann_torch.py [--size 32x32] [--neurons 100] [--batch 64]
#                           [--epochs 3] [--images 2048] [--threads 2]
import argparse
import time

import torch
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--size", default="32x32")
p.add_argument("--neurons", type=int, default=100)
p.add_argument("--batch", type=int, default=64)
p.add_argument("--epochs", type=int, default=3)
p.add_argument("--images", type=int, default=2048)
p.add_argument("--threads", type=int, default=2)
a = p.parse_args()
H, W = (int(v) for v in a.size.split("x"))
N, B = a.neurons, a.batch
torch.set_num_threads(a.threads)
torch.manual_seed(1)

class Conv2(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(1, 16, 9, padding=4)
        self.c2 = torch.nn.Conv2d(16, 16, 7, padding=3)
        self.mask = torch.nn.Parameter(torch.randn(N, H, W) / (H * W) ** 0.5)
        self.feat = torch.nn.Parameter(0.1 * torch.randn(N, 16) / 4.0)
        self.bias = torch.nn.Parameter(torch.zeros(N))

    def forward(self, x):
        h = F.elu(self.c1(x))
        h = F.elu(self.c2(h))
        t = torch.einsum("bchw,nhw->bcn", h, self.mask)
        return F.softplus(torch.einsum("bcn,nc->bn", t, self.feat) + self.bias)

lap = torch.tensor([[0.0, -1.0, 0.0], [-1.0, 4.0, -1.0], [0.0, -1.0, 0.0]]).view(1, 1, 3, 3)

def smooth(w):   # sum of squared 5-point Laplacians of every 2-D slice
    s = w.reshape(-1, 1, w.shape[-2], w.shape[-1])
    return (F.conv2d(s, lap, padding=1) ** 2).sum()

m = Conv2()
opt = torch.optim.Adam(m.parameters(), lr=0.002)
x = torch.rand(a.images, 1, H, W)
y = torch.randint(0, 4, (a.images, N)).float()
best = bestc = float("inf")
for ep in range(a.epochs):
    perm = torch.randperm(a.images)
    t0, c0 = time.perf_counter(), time.process_time()
    for b0 in range(0, a.images, B):
        idx = perm[b0:b0 + B]
        p_ = m(x[idx])
        loss = (p_ - y[idx] * torch.log(p_ + 1e-6)).sum(1).mean()
        loss = loss + 1e-4 / 2 * sum((q ** 2).sum() for q in (m.c1.weight, m.c2.weight, m.mask, m.feat))
        loss = loss + 0.01 * smooth(m.c1.weight) + 0.001 * smooth(m.mask)
        loss = loss + 0.001 * (m.mask.abs().sum() + m.feat.abs().sum())
        opt.zero_grad()
        loss.backward()
        opt.step()
    best = min(best, time.perf_counter() - t0)
    bestc = min(bestc, time.process_time() - c0)
params = sum(q.numel() for q in m.parameters())
print(f"torch {torch.__version__} input={H}x{W} neurons={N} params={params} batch={B} "
      f"threads={a.threads} mkldnn={torch.backends.mkldnn.is_available()}")
# Samples per CPU second (process time of all threads) is steadier than wall
# time on a shared machine; bench_ann prints both too.
print(f"train     {a.images / best:9.0f} samples/s  {a.images / bestc:9.0f} per CPU second")
with torch.no_grad():
    best = bestc = float("inf")
    for r in range(3):
        t0, c0 = time.perf_counter(), time.process_time()
        for b0 in range(0, a.images, 256):
            m(x[b0:b0 + 256])
        best = min(best, time.perf_counter() - t0)
        bestc = min(bestc, time.process_time() - c0)
print(f"predict   {a.images / best:9.0f} samples/s  {a.images / bestc:9.0f} per CPU second")
best = bestc = float("inf")
for r in range(3):
    t0, c0 = time.perf_counter(), time.process_time()
    for b0 in range(0, a.images - B + 1, B):
        xb = x[b0:b0 + B].clone().requires_grad_(True)
        m(xb).sum().backward()
    best = min(best, time.perf_counter() - t0)
    bestc = min(bestc, time.process_time() - c0)
n = (a.images // B) * B
print(f"inputgrad {n / best:9.0f} samples/s  {n / bestc:9.0f} per CPU second")
