#!/usr/bin/env python3
"""Convert an official ermongroup/ncsnv2 checkpoint (.pth) to this project's checkpoint layout.

The authors' runner saves `torch.save(states, 'checkpoint_<step>.pth')` with
    states = [model.state_dict(), optimizer.state_dict(), epoch, step, ema_helper.state_dict()]
where the model was wrapped in nn.DataParallel, so every key starts with `module.`, and the
EMA weights (Technique 5, used for sampling) sit in the LAST slot (`states[-1]`, as their
`sample()` reads them). The EMA state holds parameters only, not the `sigmas` buffer.

Output (CONTRACTS: what `ncsn sample --checkpoint` and the trainer load):
    WORKDIR/config.yml                                  the given config, verbatim
    WORKDIR/checkpoints/ckpt_<step:08>.safetensors      model.<name>, ema.<name> (float32)
    WORKDIR/checkpoints/ckpt_<step:08>.json             CheckpointMeta
    WORKDIR/checkpoints/latest.json                     {"step": N, "file": ...}
Adam's state is not converted (its layout is PyTorch's), so a converted checkpoint samples and
can start a fresh fine-tuning run, but `--resume` from it restarts the optimiser moments.

Usage:
    .venv/bin/python scripts/convert_pth.py --pth checkpoint_300000.pth \
        --config configs/cifar10.yml --workdir runs/cifar10-official
"""

import argparse
import hashlib
import json
import os
import re
import sys
import tempfile

import torch
import yaml
from safetensors.torch import save_file

SCHEMA_VERSION = 1
FLOAT_RE = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def fail(msg):
    print(f"convert_pth: error: {msg}", file=sys.stderr)
    sys.exit(1)


def floats(value):
    """YAML 1.1 (PyYAML) reads `1e-8` as a string; the Rust side (YAML 1.2) as a number."""
    if isinstance(value, dict):
        return {k: floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [floats(v) for v in value]
    if isinstance(value, str) and FLOAT_RE.match(value) and not value.isdigit():
        return float(value)
    return value


def arch_for(config):
    """trainer::models::Arch::for_config (the authors' get_model, `model.arch` overriding)."""
    size = config["data"]["image_size"]
    arch = config["model"].get("arch")
    if arch is not None:
        if arch == "ncsn" and size > 64:
            return "ncsn_deeper"
        return arch
    dataset = config["data"]["dataset"]
    if dataset in ("CIFAR10", "CELEBA"):
        return "ncsnv2"
    if dataset == "LSUN":
        return "ncsnv2_deeper"
    if dataset == "FFHQ":
        return "ncsnv2_deepest"
    return "ncsnv2" if size <= 64 else "ncsnv2_deeper" if size <= 128 else "ncsnv2_deepest"


def strip_module(state, what):
    if not isinstance(state, dict) or not state:
        fail(f"{what} is not a non-empty state_dict (got {type(state).__name__})")
    out = {}
    for key, tensor in state.items():
        if not torch.is_tensor(tensor):
            fail(f"{what}: entry {key!r} is not a tensor")
        name = key[len("module."):] if key.startswith("module.") else key
        out[name] = tensor.detach().to("cpu", torch.float32).contiguous()
    return out


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def atomic_write(path, write):
    d = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pth", required=True, help="the authors' checkpoint_<step>.pth")
    ap.add_argument("--config", required=True, help="the YAML config the checkpoint was trained with")
    ap.add_argument("--workdir", required=True, help="output training directory (created)")
    ap.add_argument("--step", type=int, help="step to record (default: states[3] of the .pth)")
    args = ap.parse_args(argv)

    try:
        with open(args.config) as f:
            config_text = f.read()
        config = floats(yaml.safe_load(config_text))
    except (OSError, yaml.YAMLError) as e:
        fail(f"{args.config}: {e}")
    if not isinstance(config, dict) or "model" not in config or "data" not in config:
        fail(f"{args.config}: not an ncsnv2 config (needs the model: and data: sections)")

    try:
        states = torch.load(args.pth, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - any unpickling problem is the file's
        fail(f"{args.pth}: cannot load: {e}")
    if not isinstance(states, (list, tuple)) or len(states) < 1:
        fail(f"{args.pth}: expected the runner's list [model, optimizer, epoch, step, ema], "
             f"got {type(states).__name__}")

    model = strip_module(states[0], f"{args.pth} states[0] (model)")
    if "sigmas" not in model:
        fail(f"{args.pth}: states[0] has no `sigmas` buffer: not an NCSNv2 state_dict")
    if len(states) >= 5:
        ema = strip_module(states[-1], f"{args.pth} states[-1] (EMA)")
        # The EMA helper tracks parameters only; the buffer comes from the model.
        ema.setdefault("sigmas", model["sigmas"].clone())  # safetensors refuses shared storage
        if set(ema) != set(model):
            fail(f"{args.pth}: EMA names differ from the model's: "
                 f"{sorted(set(ema) ^ set(model))[:5]}")
    else:
        print(f"convert_pth: {args.pth} has no EMA slot; using the model weights as EMA",
              file=sys.stderr)
        ema = {k: v.clone() for k, v in model.items()}
    n_sigmas = model["sigmas"].numel()
    if n_sigmas != config["model"]["num_classes"]:
        fail(f"{args.config}: model.num_classes is {config['model']['num_classes']} but the "
             f"checkpoint has {n_sigmas} sigmas")

    step = args.step if args.step is not None else (int(states[3]) if len(states) > 3 else 0)
    epoch = int(states[2]) if len(states) > 2 else 0
    tensors = {f"model.{k}": v for k, v in model.items()}
    tensors.update({f"ema.{k}": v for k, v in ema.items()})

    ckdir = os.path.join(args.workdir, "checkpoints")
    os.makedirs(ckdir, exist_ok=True)
    stem = f"ckpt_{step:08d}"
    meta = {
        "schema_version": SCHEMA_VERSION,
        "tool_version": "convert_pth.py",
        "step": step,
        "arch": arch_for(config),
        "config": config,
        "data_cursor": {"epoch": epoch, "rows_consumed": 0},
        "rng": {"seed": 0, "state": ""},
    }

    def text_writer(text):
        def write(p):
            with open(p, "w") as f:
                f.write(text)
        return write

    atomic_write(os.path.join(args.workdir, "config.yml"), text_writer(config_text))
    tensors_file = os.path.join(ckdir, stem + ".safetensors")
    atomic_write(tensors_file, lambda p: save_file(tensors, p))
    # ncsn checks every load against it (CheckpointMeta.tensors_sha256).
    meta["tensors_sha256"] = sha256_file(tensors_file)
    atomic_write(os.path.join(ckdir, stem + ".json"), text_writer(json.dumps(meta, indent=2) + "\n"))
    atomic_write(os.path.join(ckdir, "latest.json"),
                 text_writer(json.dumps({"step": step, "file": stem + ".safetensors"}) + "\n"))
    print(f"convert_pth: wrote {os.path.join(ckdir, stem)}.safetensors "
          f"({len(model)} model + {len(ema)} EMA tensors, arch {meta['arch']}, step {step})")


if __name__ == "__main__":
    main()
