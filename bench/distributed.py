"""Data-parallel training on this machine: time per epoch with 1 and 2 processes, all-reduce cost,
communication per update, and a model of the speed-up on N machines.

    python bench/distributed.py [--data fashion-mnist] [--repeats 3]

1. `softreg train --data DATA [--nproc 2]` for the default linear recipe, full-batch L-BFGS and the
   MLP recipe, each in fresh processes: the training loop's seconds per epoch (metrics.json), the
   median of --repeats runs, and the job's wall time.
2. gloo all-reduce between 2 processes on 127.0.0.1 for buffer sizes from 100 to 10^6 float32
   values: the median time of 50 calls each, fitted as latency + bytes / bandwidth.
3. The model: an epoch over R rows on N machines costs
       compute(R / N) + updates x allreduce(bytes per update, N),
   with compute measured per row on one process here and the all-reduce constants from (2)
   (a ring all-reduce moves about 2 (N - 1) / N of the buffer per process; latency grows with N).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import e2e  # noqa: E402
CONFIGS = {
    "default linear (SGD, batch 512)": [],
    "L-BFGS, full batch": ["--optimizer", "lbfgs", "--lr", "1", "--epochs", "10"],
    "MLP 256 (Adam, batch 128)": ["--model", "mlp", "--epochs", "3"],
}


def run(data: str, extra: list[str], nproc: int) -> dict:
    cmd = [str(Path(sys.executable).parent / "softreg"), "train", "--data", data, "--device", "cpu", *extra,
           "--out", "{out}"] + (["--nproc", str(nproc)] if nproc > 1 else [])
    r = e2e.run_once(cmd)
    m = r["metrics"]
    return {"epoch_s": m["train_seconds"] / m["epochs"], "wall_s": r["seconds"], "test_acc": m["test_accuracy"]}


def allreduce_worker(rank: int, world: int, port: int, sizes: list[int], queue) -> None:
    import torch
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    out = {}
    for n in sizes:
        buf = torch.ones(n)
        for _ in range(5):
            dist.all_reduce(buf)
        times = []
        for _ in range(50):
            tic = time.perf_counter()
            dist.all_reduce(buf)
            times.append(time.perf_counter() - tic)
        out[n] = statistics.median(times)
    if rank == 0:
        queue.put(out)
    dist.destroy_process_group()


def allreduce_times(sizes: list[int]) -> dict[int, float]:
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=allreduce_worker, args=(r, 2, port, sizes, queue)) for r in range(2)]
    for p in procs:
        p.start()
    result = queue.get(timeout=600)
    for p in procs:
        p.join()
    return result


def fit_line(points: dict[int, float]) -> tuple[float, float]:
    """Least squares t = latency + bytes / bandwidth over (float32 values, seconds)."""
    xs = [4.0 * n for n in points]
    ys = list(points.values())
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return my - slope * mx, 1.0 / slope


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    lines = [f"Load average {load:.2f} at the start (2 cores); medians of {args.repeats} runs.", "",
             "| config | processes | seconds per epoch | job wall s | test accuracy |", "|---|---|---|---|---|"]
    measured = {}
    for name, extra in CONFIGS.items():
        for nproc in (1, 2):
            runs = [run(args.data, extra, nproc) for _ in range(args.repeats)]
            r = {k: statistics.median(x[k] for x in runs) for k in ("epoch_s", "wall_s", "test_acc")}
            measured[(name, nproc)] = r
            lines.append(f"| {name} | {nproc} | {r['epoch_s']:.3f} | {r['wall_s']:.1f} | {r['test_acc']:.4f} |")
            print(lines[-1], flush=True)
    sizes = [100, 1000, 7850, 10_000, 100_000, 203_530, 1_000_000]
    times = allreduce_times(sizes)
    latency, bandwidth = fit_line(times)
    lines += ["", "gloo all-reduce of float32 values between 2 processes on 127.0.0.1 (median of 50 calls):", "",
              "| values | bytes | seconds |", "|---|---|---|"]
    lines += [f"| {n} | {4 * n} | {t * 1e6:.0f} µs |" for n, t in times.items()]
    lines += ["", f"Fit: latency {latency * 1e6:.0f} µs + bytes / {bandwidth / 1e9:.2f} GB/s.", ""]
    # the model, for Fashion-MNIST's shape: 7,850 values per update (+2 counts)
    per_update = 7_850 + 2

    def allreduce(n_procs: int) -> float:
        return 0.0 if n_procs == 1 else latency * (n_procs - 1) + 2 * (n_procs - 1) / n_procs * 4 * per_update / bandwidth

    sgd_row = measured[("default linear (SGD, batch 512)", 1)]["epoch_s"] / 60_000
    lbfgs_row = measured[("L-BFGS, full batch", 1)]["epoch_s"] / 60_000
    lines += ["Model of one epoch on N machines for R rows, from the constants above (localhost; a real network "
              "adds latency, and 1 Gb/s Ethernet moves 0.125 GB/s). Minibatch SGD all-reduces once per update "
              "(R / 512 updates); full-batch L-BFGS about 20 times per epoch (one per evaluation):", "",
              "| recipe | R rows | N | compute s | all-reduce s | epoch s | speed-up |", "|---|---|---|---|---|---|---|"]
    for recipe, per_row, steps_of in (("SGD, batch 512", sgd_row, lambda R: -(-R // 512)),
                                      ("L-BFGS", lbfgs_row, lambda R: 20)):
        for R in (60_000, 2_400_000, 100_000_000):
            base = per_row * R
            for N in (1, 2, 8, 32):
                comm = steps_of(R) * allreduce(N)
                total = base / N + comm
                lines.append(f"| {recipe} | {R:,} | {N} | {base / N:.2f} | {comm:.2f} | {total:.2f} | "
                             f"{base / total:.2f}x |")
    lines += ["", f"Communication per update: {per_update} float32 values = {4 * per_update / 1024:.1f} KiB "
              "(the softmax layer's 7,840 weights and 10 biases, plus the batch's cost and correct count); "
              "118 updates per epoch on 60,000 rows with batch 512."]
    e2e.save_markdown(args.out, "distributed.md", "\n".join(lines))


if __name__ == "__main__":
    main()
