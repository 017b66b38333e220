#!/usr/bin/env python3
"""Packs a directory of images into an LMDB laid out like LSUN's official ones (keys: 40-char
hex ids, values: the encoded image bytes), for scripts/bench_ingest_lsun.sh.

usage: make_lsun_lmdb.py IMAGE_DIR LMDB_DIR
"""
import hashlib
import os
import sys

import lmdb


def main():
    src, dst = sys.argv[1], sys.argv[2]
    names = sorted(os.listdir(src))
    size = sum(os.path.getsize(os.path.join(src, n)) for n in names)
    env = lmdb.open(dst, map_size=2 * size + (64 << 20), subdir=True)
    with env.begin(write=True) as txn:
        for n in names:
            key = hashlib.sha1(n.encode()).hexdigest().encode()
            with open(os.path.join(src, n), "rb") as f:
                txn.put(key, f.read())
    env.close()


if __name__ == "__main__":
    main()
