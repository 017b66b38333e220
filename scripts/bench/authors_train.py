#!/usr/bin/env python3
"""The authors' own training step, for scripts/bench_train.sh: ermongroup/ncsnv2's modules as
they are (vendored unchanged in scripts/bench/third_party/ncsnv2, MIT licence, commit 1bcea03),
driven as their runners/ncsn_runner.py drives them:

    loss = anneal_dsm_score_estimation(score, X, sigmas, None, anneal_power, hook)
    optimizer.zero_grad(); loss.backward(); optimizer.step(); ema_helper.update(score)

with the model their get_model() picks for the config's dataset (NCSNv2 for CIFAR-10/CelebA,
NCSNv2Deeper for LSUN, NCSNv2Deepest for FFHQ), their get_optimizer() and EMAHelper, and the
config file read as their main.py reads it (yaml → namespace). The batches are uniform images
in [0, 1] (their data_transform with rescaled/logit/dequantization off is the identity), made
before timing, so what is timed is their model, loss, optimizer and EMA only (no loader); their
DataParallel wrapper is left out (one device either way).

Prints one JSON line: steps/s over --steps after --warmup, and the median step time.

With --phases it also prints, averaged over the timed steps, the wall and the CPU time (of the
calling thread: all of the step's work at --threads 1) of loss + zero_grad ("forward"),
backward, optimizer step and EMA update, like trainer/examples/profile_step.rs.

Usage: authors_train.py --config configs/cifar10.yml --batch 8 --steps 10 --warmup 2 --threads 2
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "third_party", "ncsnv2"))

from losses import get_optimizer  # noqa: E402  (the authors' modules)
from losses.dsm import anneal_dsm_score_estimation  # noqa: E402
from models import get_sigmas  # noqa: E402
from models.ema import EMAHelper  # noqa: E402
from models.ncsnv2 import NCSNv2, NCSNv2Deeper, NCSNv2Deepest  # noqa: E402


def dict2namespace(config):  # as in the authors' main.py
    namespace = argparse.Namespace()
    for key, value in config.items():
        setattr(namespace, key, dict2namespace(value) if isinstance(value, dict) else value)
    return namespace


def get_model(config):  # as in the authors' runners/ncsn_runner.py
    if config.data.dataset in ("CIFAR10", "CELEBA"):
        return NCSNv2(config).to(config.device)
    if config.data.dataset == "FFHQ":
        return NCSNv2Deepest(config).to(config.device)
    if config.data.dataset == "LSUN":
        return NCSNv2Deeper(config).to(config.device)
    raise SystemExit(f"unknown data.dataset {config.data.dataset!r}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True)
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--flush-denormal", action="store_true",
                   help="torch.set_flush_denormal(True) first (not what the authors' code does; "
                        "ncsn train does it), to compare like with like")
    p.add_argument("--phases", action="store_true",
                   help="also time forward (loss + zero_grad), backward, step and EMA apart")
    a = p.parse_args()
    if a.flush_denormal:
        torch.set_flush_denormal(True)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    with open(a.config) as f:
        config = dict2namespace(yaml.safe_load(f))
    config.device = torch.device(a.device)
    torch.manual_seed(a.seed)

    score = get_model(config)
    optimizer = get_optimizer(config, score.parameters())
    ema_helper = EMAHelper(mu=config.model.ema_rate)
    ema_helper.register(score)
    sigmas = get_sigmas(config)
    size, ch = config.data.image_size, config.data.channels
    batches = [torch.rand(a.batch, ch, size, size, device=config.device) for _ in range(4)]

    def sync():
        if config.device.type == "cuda":
            torch.cuda.synchronize()

    times = []
    wall, cpu = [0.0] * 4, [0.0] * 4

    def mark(marks):  # a phase boundary (the clocks read after a sync, as ncsn's loss read is)
        if a.phases:
            sync()
            marks.append((time.perf_counter(), time.thread_time()))

    for step in range(a.warmup + a.steps):
        X = batches[step % len(batches)]
        t0 = time.perf_counter()
        marks = []
        mark(marks)
        score.train()
        loss = anneal_dsm_score_estimation(score, X, sigmas, None, config.training.anneal_power)
        optimizer.zero_grad()
        mark(marks)
        loss.backward()
        mark(marks)
        optimizer.step()
        mark(marks)
        if config.model.ema:
            ema_helper.update(score)
        sync()
        mark(marks)
        if step >= a.warmup:
            times.append(time.perf_counter() - t0)
            for k in range(len(marks) - 1):
                wall[k] += (marks[k + 1][0] - marks[k][0]) * 1e3 / a.steps
                cpu[k] += (marks[k + 1][1] - marks[k][1]) * 1e3 / a.steps
    print(json.dumps({
        "impl": "authors (ermongroup/ncsnv2 1bcea03)", "config": a.config, "size": size,
        "batch": a.batch, "ngf": config.model.ngf, "threads": torch.get_num_threads(),
        "device": str(config.device), "steps": a.steps, "steps_per_s": a.steps / sum(times),
        "median_step_s": statistics.median(times), "loss": loss.item(),
        "flush_denormal": a.flush_denormal,
        **({"forward_ms": wall[0], "backward_ms": wall[1], "adam_ms": wall[2], "ema_ms": wall[3],
            "cpu_forward_ms": cpu[0], "cpu_backward_ms": cpu[1], "cpu_adam_ms": cpu[2],
            "cpu_ema_ms": cpu[3], "cpu_total_ms": sum(cpu)} if a.phases else {}),
        "max_mem_gib": torch.cuda.max_memory_allocated() / 2**30 if config.device.type == "cuda" else None,
    }))


if __name__ == "__main__":
    main()
