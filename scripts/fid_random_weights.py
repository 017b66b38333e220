#!/usr/bin/env python3
"""Random weights for pytorch-fid's FID Inception network, in its published file's layout.

The real weights (`pt_inception-2015-12-05-6726825d.pth`) cannot be downloaded or shipped
here, so the parity tests, the end-to-end test and scripts/bench_fid.sh compare `ncsn` with
pytorch-fid on random weights instead: this builds pytorch-fid's own network
(`pytorch_fid.inception.fid_inception_v3()`: torchvision's Inception3 with 1008 classes and the
FIDInceptionA/C/E_1/E_2 blocks) without its download, fills it with seeded random values that
keep activations O(1) through all 94 conv layers (He-normal convs, BatchNorm statistics near
identity), and saves its state_dict with `torch.save`, exactly as the published file holds it
(the same 566 names, `num_batches_tracked` included).

Usage:
    .venv/bin/python scripts/fid_random_weights.py --out w.pth [--seed 0] [--legacy]

--legacy writes torch's pre-1.6 serialization (`_use_new_zipfile_serialization=False`), the
other format a published .pth can be in.
"""

import argparse

import torch
import torch.nn as nn
import pytorch_fid.inception as pi


def fid_inception_without_download():
    """pytorch-fid's fid_inception_v3() with its load_state_dict_from_url and load_state_dict
    bypassed: the module tree is theirs, the values are torch's default init."""
    grabbed = {}
    orig_url, orig_load = pi.load_state_dict_from_url, nn.Module.load_state_dict
    pi.load_state_dict_from_url = lambda *a, **k: None
    nn.Module.load_state_dict = lambda self, sd, *a, **k: grabbed.setdefault("net", self)
    try:
        pi.fid_inception_v3()
    finally:
        pi.load_state_dict_from_url, nn.Module.load_state_dict = orig_url, orig_load
    return grabbed["net"]


def randomize(net, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
            elif isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(0.8 + 0.4 * torch.rand(c, generator=g))
                m.bias.copy_(0.1 * torch.randn(c, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(c, generator=g))
                m.running_var.copy_(0.5 + torch.rand(c, generator=g))
            elif isinstance(m, nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) / m.in_features ** 0.5)
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
    return net


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--legacy", action="store_true", help="torch's pre-1.6 (non-zip) format")
    args = ap.parse_args()
    net = randomize(fid_inception_without_download(), args.seed).eval()
    torch.save(net.state_dict(), args.out, _use_new_zipfile_serialization=not args.legacy)


if __name__ == "__main__":
    main()
