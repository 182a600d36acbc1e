"""Seeded, bounded fuzzing of softreg's readers: mutated files in, only softreg's own error out.

Run one reader in a fresh process (so its peak memory is its own)::

    python tests/data/fuzz_harness.py idx 10000 0

and read the one JSON line it prints: how many inputs were tried, the failures (any
exception that is not a ``SoftregError``, or an input slower than ``SLOW`` seconds), the
largest Python / NumPy allocation of one input (tracemalloc) and the growth of the
process's peak resident memory (which also counts torch, Pillow and Arrow buffers).
Readers: ``idx`` (read_idx), ``run`` (load_run on a damaged run folder), ``image``
(read_image), ``csv`` and ``parquet`` (load_dataset). Everything derives from the seed:
the same arguments give the same inputs.
"""

from __future__ import annotations

import gzip
import io as _stdio
import json
import os
import random
import resource
import shutil
import signal
import sys
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path

SLOW = 10.0  # seconds for one input before it counts as a hang
INTERESTING_INTS = [0, 1, 2, 3, 7, 8, 13, 255, 256, 65535, 65536, 2**31 - 1, 2**31, 2**32 - 1]
INTERESTING_JSON = [None, True, False, 0, -1, 1, 2, 3, 784, 10**9, 2**64, -(2**63), 1e308, -1e-308,
                    float("nan"), "", "x", "digits", "/etc/passwd", "../x.csv", "\u0000", [], [0], [[[]]],
                    ["a", "a"], [1, 2, 3], [100000, 100000], {}, {"a": 1}, "9" * 50]


# ------------------------------------------------------------------ mutations


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    """One to four byte-level edits: flips, overwrites, big-endian integers, inserts, cuts, splices."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(8)
        pos = rng.randrange(len(buf) + 1)
        if op == 0 and buf:
            buf[min(pos, len(buf) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1 and buf:
            buf[min(pos, len(buf) - 1)] = rng.choice([0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)])
        elif op == 2:
            value = rng.choice(INTERESTING_INTS)
            buf[pos:pos + 4] = value.to_bytes(4, rng.choice(["big", "little"]))
        elif op == 3:
            buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif op == 4:
            del buf[pos:pos + rng.randint(1, 64)]
        elif op == 5:
            del buf[pos:]
        elif op == 6 and buf:
            start = rng.randrange(len(buf))
            buf[pos:pos] = buf[start:start + rng.randint(1, 64)]
        else:
            buf += bytes(rng.randint(1, 8))
    return bytes(buf)


def mutate_json(doc, rng: random.Random):
    """Replace, drop or nest one value somewhere in a JSON document."""
    doc = json.loads(json.dumps(doc))
    paths = []

    def walk(node, path):
        paths.append(path)
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, path + [key])
        elif isinstance(node, list):
            for i, value in enumerate(node[:8]):
                walk(value, path + [i])

    walk(doc, [])
    path = rng.choice(paths[1:] or paths)
    if not path:
        return rng.choice(INTERESTING_JSON)
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    key, op = path[-1], rng.randrange(4)
    if op == 0 and isinstance(parent, dict):
        del parent[key]
    elif op == 1:
        parent[key] = [parent[key]] if rng.random() < 0.5 else {"v": parent[key]}
    else:
        parent[key] = rng.choice(INTERESTING_JSON)
    return doc


# ------------------------------------------------------------------ seeds and readers


def _idx(code: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    import struct

    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + payload


def idx_reader(work: Path):
    from softreg.data.idx.files import read_idx

    raw = [_idx(0x08, (3, 4, 4), bytes(range(48))), _idx(0x0D, (5,), bytes(20)), _idx(0x0B, (2, 3), bytes(12)),
           _idx(0x08, (6,), bytes([0, 1, 2, 0, 1, 2]))]
    seeds = raw + [gzip.compress(b, mtime=0) for b in raw]
    path = work / "fuzz-idx"

    def run(data: bytes) -> None:
        path.write_bytes(data)
        read_idx(path)

    return seeds, mutate_bytes, run


def run_reader(work: Path):
    import torch

    from softreg.data import load_dataset
    from softreg.runs.folder import load_run, save_result
    from softreg.training import make_config, train

    base = work / "seed-runs"
    runs = []
    for name, settings in (("toy", dict(epochs=3)), ("xor", dict(model="mlp", hidden=[3], epochs=3))):
        dataset = load_dataset(name)
        result = train(dataset, make_config(None, data_name=name, **settings))
        runs.append(save_result(base / name, result, dataset, name))
    files = ["config.json", "metrics.json", "history.csv", "model.safetensors"]
    seeds = [(run, name, (run / name).read_bytes()) for run in runs for name in files]
    torch.set_num_threads(1)
    target = work / "fuzz-run"

    def mutate(seed, rng):
        run, name, data = seed
        if name.endswith(".json") and rng.random() < 0.6:
            text = json.dumps(mutate_json(json.loads(data), rng))
            return run, name, text.encode()
        return run, name, mutate_bytes(data, rng)

    def run_one(case) -> None:
        run, name, data = case
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(run, target)
        (target / name).write_bytes(data)
        load_run(target)

    return seeds, mutate, run_one


def image_reader(work: Path):
    from PIL import Image

    from softreg.inference.images import read_image

    seeds = []
    for mode, fmt in (("L", "PNG"), ("RGB", "PNG"), ("L", "JPEG"), ("RGBA", "PNG"), ("P", "GIF"), ("L", "BMP")):
        out = _stdio.BytesIO()
        Image.new(mode, (12, 10), color=40 if mode in ("L", "P") else (10, 200, 30, 255)[: len(mode)]).save(out, fmt)
        seeds.append(out.getvalue())
    path = work / "fuzz.png"

    def run(data: bytes) -> None:
        path.write_bytes(data)
        read_image(path, (28, 28), 255.0)

    return seeds, mutate_bytes, run


def table_reader(work: Path, suffix: str):
    from softreg.data import load_dataset

    rows = "f1,f2,label\n" + "".join(f"{i * 0.5},{i % 4},{'ab'[i % 2]}\n" for i in range(12))
    seeds = [rows.encode(), rows.replace(",", ",", 1).encode(), b"a,b\n1,x\n2,y\n3,x\n4,y\n"]
    if suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        converted = []
        for data in seeds:
            out = pa.BufferOutputStream()
            pq.write_table(pacsv.read_csv(pa.py_buffer(data)), out)
            converted.append(out.getvalue().to_pybytes())
        seeds = converted
    path = work / f"fuzz{suffix}"

    def run(data: bytes) -> None:
        path.write_bytes(data)
        load_dataset(str(path))

    return seeds, mutate_bytes, run


READERS = {
    "idx": idx_reader,
    "run": run_reader,
    "image": image_reader,
    "csv": lambda work: table_reader(work, ".csv"),
    "parquet": lambda work: table_reader(work, ".parquet"),
}


# ------------------------------------------------------------------ the loop


class _Slow(BaseException):
    pass


def _alarm(signum, frame):
    raise _Slow


def fuzz(reader: str, n: int, seed: int) -> dict:
    """Try ``n`` mutated inputs on ``reader``; return the summary printed by the script."""
    from softreg.errors import SoftregError

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    work = Path(tempfile.mkdtemp(prefix="softreg-fuzz-"))
    try:
        seeds, mutate, run = READERS[reader](work)
        signal.signal(signal.SIGALRM, _alarm)
        rng = random.Random(seed)
        for s in seeds:  # warm-up: imports and caches are not the readers' allocations
            try:
                run(s)
            except SoftregError:
                pass
        baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        failures, max_traced, start = [], 0, time.monotonic()
        tracemalloc.start()
        for i in range(n):
            case = mutate(rng.choice(seeds), rng)
            tracemalloc.reset_peak()
            signal.setitimer(signal.ITIMER_REAL, SLOW)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    run(case)
            except SoftregError:
                pass
            except _Slow:
                failures.append({"input": i, "error": f"slower than {SLOW} s"})
            except BaseException as exc:  # noqa: BLE001 - finding these is the point
                failures.append({"input": i, "error": f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"})
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            max_traced = max(max_traced, tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return {"reader": reader, "inputs": n, "seed": seed, "seconds": round(time.monotonic() - start, 1),
                "failures": len(failures), "examples": failures[:5], "max_traced_bytes": max_traced,
                "rss_growth_bytes": peak - baseline}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def replay(reader: str, seed: int, index: int, work: Path):
    """The ``index``-th input :func:`fuzz` tries with ``seed``, and the reader to run it."""
    seeds, mutate, run = READERS[reader](work)
    rng = random.Random(seed)
    for _ in range(index):
        mutate(rng.choice(seeds), rng)
    return mutate(rng.choice(seeds), rng), run


if __name__ == "__main__":
    name, count, seed_arg = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    print(json.dumps(fuzz(name, count, seed_arg)))
