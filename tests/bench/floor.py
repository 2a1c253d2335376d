"""FLOOR: read and inflate every .json.gz under a folder with ISA-L on N threads, and nothing else.

    python floor.py DIR [THREADS] [isal|libdeflate]

``libdeflate`` inflates with libdeflate instead (trailkit's first choice, ~20% faster than ISA-L here), so the
report can show both floors.
"""
import os
import sys
from concurrent.futures import ThreadPoolExecutor

from isal import isal_zlib

INFLATERS = {
    "isal": lambda raw: isal_zlib.decompress(raw, 31, int.from_bytes(raw[-4:], "little") + 1),
    "libdeflate": lambda raw: __import__("deflate").gzip_decompress(raw),
}


def paths(root):
    for dirpath, _, names in os.walk(root):
        for name in names:
            if name.endswith(".json.gz"):
                yield os.path.join(dirpath, name)


def inflate(batch):
    total = 0
    for path in batch:
        with open(path, "rb") as fh:
            raw = fh.read()
        total += len(INFLATE(raw))
    return total


if __name__ == "__main__":
    files = sorted(paths(sys.argv[1]))
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    INFLATE = INFLATERS[sys.argv[3] if len(sys.argv) > 3 else "isal"]
    batches = [files[i:i + 32] for i in range(0, len(files), 32)]
    with ThreadPoolExecutor(threads) as pool:
        print(sum(pool.map(inflate, batches)))
