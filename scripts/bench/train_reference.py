#!/usr/bin/env python3
"""PyTorch reference for the training benchmark (scripts/bench_train.sh).

A compact re-implementation of the authors' NCSNv2 / NCSNv2Deeper / NCSNv2Deepest (paper
Table 3; InstanceNorm++, ResBlocks, RefineBlocks, output divided by sigma) and one training step
exactly as `ncsn train` runs it: DSM loss of Eq. 2 with random sigma indices, backward, Adam
(lr 1e-4, eps from the config), EMA update with rate 0.999. It times steps per second for a given
image size / batch / ngf, on CPU (threads as given) or CUDA (fp32, TF32, bf16 autocast,
channels-last), and prints one JSON line per setting.

Usage: train_reference.py --size 32 --batch 8 --ngf 128 --steps 10 [--device cuda] [--tf32]
       [--bf16] [--channels-last] [--threads 2]
"""

import argparse
import json
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class InstanceNorm2dPlus(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.alpha = nn.Parameter(torch.empty(c).normal_(1, 0.02))
        self.gamma = nn.Parameter(torch.empty(c).normal_(1, 0.02))
        self.beta = nn.Parameter(torch.zeros(c))

    def forward(self, x):
        means = x.mean(dim=(2, 3))
        m = means.mean(-1, keepdim=True)
        v = means.var(-1, keepdim=True)
        means = (means - m) / torch.sqrt(v + 1e-5)
        h = F.instance_norm(x, eps=1e-5)
        h = h + means[..., None, None] * self.alpha[None, :, None, None]
        return self.gamma[None, :, None, None] * h + self.beta[None, :, None, None]


def conv3(i, o, bias=True, dilation=1):
    return nn.Conv2d(i, o, 3, padding=dilation, dilation=dilation, bias=bias)


class ConvMeanPool(nn.Module):
    def __init__(self, i, o, k):
        super().__init__()
        self.conv = nn.Conv2d(i, o, k, padding=k // 2)

    def forward(self, x):
        o = self.conv(x)
        return (o[:, :, ::2, ::2] + o[:, :, 1::2, ::2] + o[:, :, ::2, 1::2] + o[:, :, 1::2, 1::2]) / 4.0


class ResBlock(nn.Module):
    def __init__(self, i, o, down=False, dilation=1):
        super().__init__()
        self.act = nn.ELU()
        self.norm1 = InstanceNorm2dPlus(i)
        if down and dilation > 1:
            self.conv1, self.norm2, self.conv2 = conv3(i, i, dilation=dilation), InstanceNorm2dPlus(i), conv3(i, o, dilation=dilation)
            self.shortcut = conv3(i, o, dilation=dilation)
        elif down:
            self.conv1, self.norm2, self.conv2 = conv3(i, i), InstanceNorm2dPlus(i), ConvMeanPool(i, o, 3)
            self.shortcut = ConvMeanPool(i, o, 1)
        else:
            self.conv1, self.norm2, self.conv2 = conv3(i, o, dilation=dilation), InstanceNorm2dPlus(o), conv3(o, o, dilation=dilation)
            self.shortcut = (conv3(i, o, dilation=dilation) if dilation > 1 else nn.Conv2d(i, o, 1)) if i != o else None

    def forward(self, x):
        h = self.conv2(self.act(self.norm2(self.conv1(self.act(self.norm1(x))))))
        return (x if self.shortcut is None else self.shortcut(x)) + h


class RCU(nn.Module):
    def __init__(self, c, blocks, stages=2):
        super().__init__()
        self.convs = nn.ModuleList([conv3(c, c, bias=False) for _ in range(blocks * stages)])
        self.blocks, self.stages = blocks, stages

    def forward(self, x):
        for b in range(self.blocks):
            r = x
            for s in range(self.stages):
                x = self.convs[b * self.stages + s](F.elu(x))
            x = x + r
        return x


class RefineBlock(nn.Module):
    def __init__(self, ins, feat, start=False, end=False):
        super().__init__()
        self.adapt = nn.ModuleList([RCU(c, 2) for c in ins])
        self.msf = None if start else nn.ModuleList([conv3(c, feat) for c in ins])
        self.crp = nn.ModuleList([conv3(feat, feat, bias=False) for _ in range(2)])
        self.out = RCU(feat, 3 if end else 1)

    def forward(self, xs, shape):
        hs = [a(x) for a, x in zip(self.adapt, xs)]
        if self.msf is None:
            h = hs[0]
        else:
            h = sum(F.interpolate(c(x), size=shape, mode="bilinear", align_corners=True) for c, x in zip(self.msf, hs))
        h = F.elu(h)
        path = h
        for c in self.crp:
            path = c(F.max_pool2d(path, 5, 1, 2))
            h = path + h
        return self.out(h)


# (in, out, down, dilation) per ResBlock pair; refine (inputs' channels, features).
def stages(arch, n):
    base = [(n, n, False, 1), (n, 2 * n, True, 1)]
    if arch == "ncsnv2":
        return base + [(2 * n, 2 * n, True, 2), (2 * n, 2 * n, True, 4)]
    if arch == "ncsnv2_deeper":
        return base + [(2 * n, 2 * n, True, 1), (2 * n, 4 * n, True, 2), (4 * n, 4 * n, True, 4)]
    return base + [(2 * n, 2 * n, True, 1), (2 * n, 2 * n, True, 1), (2 * n, 4 * n, True, 2), (4 * n, 4 * n, True, 4)]


class NCSNv2(nn.Module):
    def __init__(self, arch, ngf, sigmas):
        super().__init__()
        self.register_buffer("sigmas", sigmas)
        self.begin_conv = conv3(3, ngf)
        st = stages(arch, ngf)
        self.res = nn.ModuleList([nn.ModuleList([ResBlock(i, o, down, d), ResBlock(o, o, False, d)]) for i, o, down, d in st])
        outs = [o for _, o, _, _ in st]
        # Refine from the deepest level up; each takes (skip, previous) and outputs the next
        # shallower level's width (the last keeps ngf).
        self.refine = nn.ModuleList()
        prev = outs[-1]
        for k in range(len(outs) - 1, -1, -1):
            feat = outs[k - 1] if k > 0 else ngf
            ins = [outs[k]] if k == len(outs) - 1 else [outs[k], prev]
            self.refine.append(RefineBlock(ins, outs[k] if k == len(outs) - 1 else feat, start=k == len(outs) - 1, end=k == 0))
            prev = outs[k] if k == len(outs) - 1 else feat
        self.norm = InstanceNorm2dPlus(ngf)
        self.end_conv = conv3(ngf, 3)

    def forward(self, x, y):
        h = self.begin_conv(2 * x - 1.0)
        layers = []
        for pair in self.res:
            h = pair[1](pair[0](h))
            layers.append(h)
        ref = None
        for r, k in zip(self.refine, range(len(layers) - 1, -1, -1)):
            xs = [layers[k]] if ref is None else [layers[k], ref]
            ref = r(xs, layers[k].shape[2:])
        out = self.end_conv(F.elu(self.norm(ref)))
        return out / self.sigmas[y].view(-1, 1, 1, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="ncsnv2", choices=["ncsnv2", "ncsnv2_deeper", "ncsnv2_deepest"])
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--ngf", type=int, default=128)
    ap.add_argument("--num-classes", type=int, default=232)
    ap.add_argument("--sigma-begin", type=float, default=50.0)
    ap.add_argument("--adam-eps", type=float, default=1e-8)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--tf32", action="store_true")
    ap.add_argument("--bf16", action="store_true", help="autocast the forward/backward to bfloat16")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--phases", action="store_true",
                    help="CPU: time forward, backward, Adam and EMA separately (trainer/examples/profile_step.rs)")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    torch.backends.cudnn.allow_tf32 = a.tf32
    torch.backends.cudnn.benchmark = a.device != "cpu"
    torch.manual_seed(0)
    dev = torch.device(a.device)
    sigmas = torch.tensor(np.exp(np.linspace(np.log(a.sigma_begin), np.log(0.01), a.num_classes))).float()
    model = NCSNv2(a.arch, a.ngf, sigmas).to(dev)
    fmt = torch.channels_last if a.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    ema = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.999), eps=a.adam_eps)
    x_u8 = torch.randint(0, 256, (a.batch, a.size, a.size, 3), dtype=torch.uint8)

    def step():
        x = x_u8.to(dev, non_blocking=True).permute(0, 3, 1, 2).float().div(255).contiguous(memory_format=fmt)
        y = torch.randint(0, a.num_classes, (a.batch,), device=dev)
        sig = model.sigmas[y].view(-1, 1, 1, 1)
        z = torch.randn_like(x)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.bf16):
            s = model(x + sig * z, y)
        target = -z / sig
        loss = (0.5 * ((s.float() - target) ** 2).flatten(1).sum(-1) * sig.flatten() ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            for n, p in model.named_parameters():
                ema[n].copy_((1.0 - 0.999) * p + 0.999 * ema[n])
        return loss

    if a.phases:
        print(json.dumps(phases(model, opt, ema, x_u8, a)))
        return
    for _ in range(a.warmup):
        step().item()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step().item()  # the Rust trainer also reads the loss every step
    if dev.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"impl": "pytorch", "torch": torch.__version__, "arch": a.arch, "size": a.size, "batch": a.batch,
                      "ngf": a.ngf, "params": params, "device": a.device, "threads": a.threads, "tf32": a.tf32,
                      "bf16": a.bf16, "channels_last": a.channels_last, "steps": a.steps,
                      "steps_per_s": a.steps / dt,
                      "max_mem_gib": torch.cuda.max_memory_allocated() / 2**30 if dev.type == "cuda" else None}))


def phases(model, opt, ema, x_u8, a):
    """Mean milliseconds per phase of a CPU step, the split profile_step.rs prints."""
    t = [0.0] * 4
    for i in range(a.warmup + a.steps):
        x = x_u8.permute(0, 3, 1, 2).float().div(255).contiguous()
        y = torch.randint(0, a.num_classes, (a.batch,))
        sig = model.sigmas[y].view(-1, 1, 1, 1)
        z = torch.randn_like(x)
        t0 = time.perf_counter()
        opt.zero_grad()
        s = model(x + sig * z, y)
        loss = (0.5 * ((s - (-z / sig)) ** 2).flatten(1).sum(-1) * sig.flatten() ** 2).mean()
        loss.item()
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        with torch.no_grad():
            for n, p in model.named_parameters():
                ema[n].copy_((1.0 - 0.999) * p + 0.999 * ema[n])
        t4 = time.perf_counter()
        if i >= a.warmup:
            for k, d in enumerate([t1 - t0, t2 - t1, t3 - t2, t4 - t3]):
                t[k] += d * 1e3 / a.steps
    return {"impl": "pytorch", "forward_ms": t[0], "backward_ms": t[1], "adam_ms": t[2], "ema_ms": t[3],
            "total_ms": sum(t)}


if __name__ == "__main__":
    main()
