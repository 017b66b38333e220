#!/usr/bin/env python3
"""pytorch-fid's side of scripts/bench_fid.sh: Inception feature throughput on the CPU.

    pytorch_fid_features.py WEIGHTS IMAGES.npz BATCH THREADS

pytorch-fid's InceptionV3 (its download replaced by a load of WEIGHTS), fed uint8 images the
way its get_activations does (ToTensor: /255 in f32; the model resizes to 299 and scales to
[-1, 1]), under torch.no_grad. Loading is not timed; one warm-up batch; then every image of
IMAGES.npz in batches of BATCH. Prints `pytorch-fid img/s <rate> cpu-ms/img <cost> (...)`:
the rate in wall time, and the process's CPU time (all threads) per image.
"""

import sys
import time

import numpy as np
import torch
import pytorch_fid.inception as pi


def main():
    weights, images, batch, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(threads)
    sd = torch.load(weights)
    pi.load_state_dict_from_url = lambda *a, **k: sd
    model = pi.InceptionV3([3]).eval()
    x = np.load(images)["arr_0"]

    def batches():
        for i in range(0, len(x), batch):
            # ToTensor on a uint8 HWC array: CHW, float, / 255.
            yield torch.from_numpy(x[i:i + batch]).permute(0, 3, 1, 2).float().div(255)

    with torch.no_grad():
        model(next(batches()))
        start, cpu0 = time.perf_counter(), time.process_time()
        check = 0.0
        for b in batches():
            check += model(b)[0].double().sum().item()
        secs, cpu = time.perf_counter() - start, time.process_time() - cpu0
    print(f"pytorch-fid img/s {len(x) / secs:.3f} cpu-ms/img {cpu * 1e3 / len(x):.1f} "
          f"({len(x)} images, {secs:.2f} s, {threads} threads; checksum {check:.6e})")


if __name__ == "__main__":
    main()
