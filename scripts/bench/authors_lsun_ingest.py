#!/usr/bin/env python3
"""The reference for scripts/bench_ingest_lsun.sh: what a user of the authors' code does to get
LSUN into Parquet. The images are read and transformed exactly as the authors' datasets/
__init__.py reads LSUN for training — torchvision's LSUNClass over the LMDB (PIL decode,
convert('RGB')) with transforms.Resize(r) and transforms.CenterCrop(r) (their random flip and
ToTensor left out: a stored dataset keeps the unflipped uint8 pixels) — and written with
pyarrow as ncsn's shards are: columns id, key, pixels (uint8 HWC bytes), zstd, row groups of
1 024 rows, shards of 64 MiB of pixels.

usage: authors_lsun_ingest.py LMDB_DIR OUT_DIR RESOLUTION
"""
import os
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import torchvision.transforms as T
from torchvision.datasets.lsun import LSUNClass


def main():
    root, out, r = sys.argv[1], sys.argv[2], int(sys.argv[3])
    os.makedirs(out, exist_ok=True)
    # LSUNClass caches its key list in the working directory; keep that out of the user's.
    os.chdir(out)
    ds = LSUNClass(root=root, transform=T.Compose([T.Resize(r), T.CenterCrop(r)]))
    schema = pa.schema([("id", pa.int64()), ("key", pa.string()), ("pixels", pa.binary())])
    rows_per_shard = max(1, (64 << 20) // (r * r * 3))
    writer, shard, batch = None, 0, {"id": [], "key": [], "pixels": []}

    def flush():
        nonlocal writer
        if batch["id"]:
            if writer is None:
                writer = pq.ParquetWriter(f"train-{shard:05}.parquet", schema, compression="zstd")
            writer.write_table(pa.table(batch, schema=schema), row_group_size=1024)
            for v in batch.values():
                v.clear()

    for i in range(len(ds)):
        img, _ = ds[i]
        batch["id"].append(i)
        batch["key"].append(ds.keys[i].decode())
        batch["pixels"].append(img.tobytes())
        if len(batch["id"]) == 1024:
            flush()
        if (i + 1) % rows_per_shard == 0:
            flush()
            writer.close()
            writer, shard = None, shard + 1
    flush()
    if writer is not None:
        writer.close()
    print(len(ds))


if __name__ == "__main__":
    main()
