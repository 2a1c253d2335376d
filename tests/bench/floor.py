"""FLOOR: read and inflate every .json.gz under a folder with ISA-L on N threads, and nothing else."""
import os
import sys
from concurrent.futures import ThreadPoolExecutor

from isal import isal_zlib


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
        total += len(isal_zlib.decompress(raw, 31, int.from_bytes(raw[-4:], "little") + 1))
    return total


if __name__ == "__main__":
    files = sorted(paths(sys.argv[1]))
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    batches = [files[i:i + 32] for i in range(0, len(files), 32)]
    with ThreadPoolExecutor(threads) as pool:
        print(sum(pool.map(inflate, batches)))
