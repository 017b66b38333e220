#!/usr/bin/env python3
"""N forward passes of the authors' DSM loss with autograd recording, nothing else: the
counterpart of trainer/examples/count_forward.rs, to run under valgrind --tool=callgrind (or
with --profile, under torch.profiler) and compare the forward pass op by op. Prints, per pass,
the loss and the pass's CPU time on this thread in ms (all of it at --threads 1).

Usage: authors_forward.py --config configs/cifar10.yml --batch 8 --passes 2 --threads 1 [--profile]
"""

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from authors_train import dict2namespace, get_model  # noqa: E402

from losses.dsm import anneal_dsm_score_estimation  # noqa: E402
from models import get_sigmas  # noqa: E402
import yaml  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True)
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--passes", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--profile", action="store_true",
                   help="print torch.profiler's op table of the last pass")
    a = p.parse_args()
    torch.set_flush_denormal(True)
    torch.set_num_threads(a.threads)
    with open(a.config) as f:
        config = dict2namespace(yaml.safe_load(f))
    config.device = torch.device("cpu")
    torch.manual_seed(0)
    score = get_model(config)
    score.train()
    sigmas = get_sigmas(config)
    size, ch = config.data.image_size, config.data.channels
    x = torch.rand(a.batch, ch, size, size)
    for i in range(a.passes):
        t0 = time.thread_time()
        if a.profile and i == a.passes - 1:
            with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
                loss = anneal_dsm_score_estimation(score, x, sigmas, None, config.training.anneal_power)
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=40))
        else:
            loss = anneal_dsm_score_estimation(score, x, sigmas, None, config.training.anneal_power)
        loss = loss.item()  # frees the graph before the next pass, as a training step does
        print(loss, f"{(time.thread_time() - t0) * 1e3:.1f}")


if __name__ == "__main__":
    main()
