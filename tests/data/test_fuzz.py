"""Fuzzing in the test suite: each reader gets mutated files and may only fail with SoftregError.

The harness (tests/data/fuzz_harness.py) runs each reader in a fresh process, seeded, and
reports failures, the largest Python / NumPy allocation of one input (tracemalloc) and
the growth of the process's peak resident memory. ``SOFTREG_FUZZ_N`` sets the inputs per
reader: 1,000 by default, 10,000 in CI (.ci/run).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # process-level runs: `make test-fast` leaves them out

N = int(os.environ.get("SOFTREG_FUZZ_N", "1000"))
MAX_TRACED = 64 << 20  # one input may not make softreg allocate more than this (the inputs are kilobytes)
MAX_RSS_GROWTH = 256 << 20
HARNESS = Path(__file__).with_name("fuzz_harness.py")

READERS = [
    "idx",
    "run",
    "csv",
    "parquet",
    "image",
]


@pytest.mark.parametrize("reader", READERS)
def test_mutated_inputs_raise_only_softreg_errors_within_a_memory_bound(reader):
    done = subprocess.run([sys.executable, str(HARNESS), reader, str(N), "0"], capture_output=True, text=True,
                          timeout=900, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["inputs"] == N
    assert report["failures"] == 0, report["examples"]
    assert report["max_traced_bytes"] < MAX_TRACED, report
    assert report["rss_growth_bytes"] < MAX_RSS_GROWTH, report


def test_mutations_are_seeded_and_change_the_input():
    import random

    sys.path.insert(0, str(HARNESS.parent))
    from fuzz_harness import mutate_bytes, mutate_json

    data = bytes(range(64))
    first = [mutate_bytes(data, random.Random(7)) for _ in range(3)]
    assert first[0] == first[1] == first[2]  # the same seed, the same input
    rng = random.Random(1)
    assert sum(mutate_bytes(data, rng) != data for _ in range(100)) > 90
    doc = {"a": {"b": [1, 2]}, "c": "x"}
    assert any(mutate_json(doc, rng) != doc for _ in range(20))


@pytest.mark.parametrize("reader, index", [
    ("parquet", 1822),
    ("image", 4399),
])
def test_findings_of_the_fuzzer(tmp_path, reader, index):
    """Inputs the fuzzer found (seed 0), replayed: fixed when softreg answers them with its own error
    and a small allocation."""
    import tracemalloc
    import warnings

    sys.path.insert(0, str(HARNESS.parent))
    from fuzz_harness import replay

    from softreg.errors import SoftregError

    case, run = replay(reader, 0, index, tmp_path)
    tracemalloc.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                run(case)
            except SoftregError:
                pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MAX_TRACED, peak
