"""Training on several processes and machines with torch.distributed: the only module that touches it.

Under ``torchrun`` (the RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR / MASTER_PORT variables are set),
``setup`` joins the process group (gloo on CPU, nccl on CUDA with one GPU per process) and returns
a ``ProcessGroup`` comm; otherwise the single-process comm, and the very same code path runs.

What crosses processes: the linear models' gradients (one flat buffer per update), an MLP's
gradients (DistributedDataParallel, summed rather than averaged because every process divides
its share of the cost by the global batch size), L-BFGS's cost and gradient inside its closure,
evaluation sums and counts, preprocessing statistics, and errors found while loading (so that
bad input on one process is reported once, by rank 0, and every process exits with status 2).
A collective that waits longer than ``SOFTREG_DIST_TIMEOUT`` seconds (default 60) for a dead
peer ends the job with one line instead of a hang.
"""

from __future__ import annotations

import datetime
import os
import sys
from dataclasses import dataclass

import torch

from softreg.errors import UserInputError
from softreg.system import processes
from softreg.system.processes import SINGLE, Comm

TIMEOUT_ENV = "SOFTREG_DIST_TIMEOUT"
DEFAULT_TIMEOUT = 60.0  # seconds a collective waits for the other processes


def timeout_seconds() -> float:
    text = os.environ.get(TIMEOUT_ENV)
    if text is None:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 1 <= value <= 86400:
        raise UserInputError(f"{TIMEOUT_ENV} must be a number of seconds from 1 to 86400; got {text!r}.")
    return value


@dataclass
class ProcessGroup:
    """This process's place in a torch.distributed job (implements softreg.system.processes.Comm)."""

    rank: int
    world: int
    local_rank: int
    local_world: int
    device: torch.device
    local = False  # gradients cross processes: they are formed and summed

    def device_for(self, name: str) -> torch.device:
        return self.device  # chosen when the process joined (one GPU per process: LOCAL_RANK)

    def reduce(self, tensors: list[torch.Tensor]) -> None:
        """Sum each tensor over the processes, in place, through one flat buffer."""
        import torch.distributed as dist

        if not tensors:
            return
        # in the widest dtype among them (float32 gradients go as float32: 4 bytes a value; batch
        # counts are exact in float32 up to 2^24)
        dtype = max((t.dtype for t in tensors), key=lambda d: torch.finfo(d).bits if d.is_floating_point else 0)
        flat = torch.cat([t.reshape(-1).to(dtype) for t in tensors]).to(self.device)
        dist.all_reduce(flat)
        at = 0
        for t in tensors:
            n = t.numel()
            t.copy_(flat[at : at + n].reshape(t.shape).to(t.dtype))
            at += n

    def sum_step(self, grads: list[torch.Tensor], cost: torch.Tensor,
                 correct: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Gradients summed in place, and the summed cost and correct count: one all-reduce."""
        dtype = grads[0].dtype if grads else cost.dtype
        counts = torch.stack([cost.to(dtype), correct.to(dtype)])
        self.reduce(grads + [counts])
        return counts[0], counts[1].round().to(torch.int64)

    def metrics(self) -> dict:
        return {"world_size": self.world}

    def gather(self, obj) -> list:
        """Every process's ``obj`` (small, picklable), in rank order."""
        import torch.distributed as dist

        out = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def broadcast(self, obj):
        """Rank 0's ``obj`` on every process."""
        import torch.distributed as dist

        box = [obj if self.rank == 0 else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def check(self, error: str | None) -> None:
        """Share an error found by any process: every process raises the first one."""
        errors = [e for e in self.gather(error) if e]
        if errors:
            raise UserInputError(errors[0])

    def merge_moments(self, moments):
        """Combine every process's Moments (the statistics of its rows)."""
        parts = self.gather((moments.count, moments.mean, moments.m2))
        total = type(moments)(moments.mean.shape[0])
        for count, mean, m2 in parts:
            part = type(moments)(mean.shape[0])
            part.count, part.mean, part.m2 = count, mean, m2
            total.merge(part)
        return total

    def wrap(self, net: torch.nn.Module):
        """An MLP under DistributedDataParallel, its gradients summed over processes."""
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        ddp = DistributedDataParallel(net, device_ids=ids)
        ddp.register_comm_hook(None, _sum_hook)
        return ddp

    def barrier(self) -> None:
        import torch.distributed as dist

        dist.barrier()

    def close(self) -> None:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def _sum_hook(state, bucket):
    """DDP communication hook: all-reduce the bucket with SUM (DDP's default divides by world)."""
    import torch.distributed as dist

    future = dist.all_reduce(bucket.buffer(), async_op=True).get_future()
    return future.then(lambda f: f.value()[0])


def setup(device_name: str) -> tuple[Comm, torch.device]:
    """Join the job when launched by torchrun, else run alone; returns (comm, this process's device)."""
    from softreg.system.device import resolve_device

    if not processes.launched():
        return SINGLE, resolve_device(device_name)
    import torch.distributed as dist

    rank, world = processes.rank(), processes.world_size()
    local_rank, local_world = processes.local_rank(), processes.local_world_size()
    device = resolve_device(device_name)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    timeout = datetime.timedelta(seconds=timeout_seconds())
    try:
        dist.init_process_group(backend=backend, timeout=timeout)
    except (RuntimeError, ValueError) as exc:
        raise UserInputError(f"cannot join the distributed job as rank {rank} of {world} "
                             f"({' '.join(str(exc).split())[:200]}); check --master-addr / --rdzv-endpoint "
                             "and that every node runs the same command.") from None
    threads = max(1, (os.cpu_count() or 1) // max(1, local_world))
    torch.set_num_threads(threads)  # the machine's cores shared among its processes
    return ProcessGroup(rank, world, local_rank, local_world, device), device


def peer_failure(exc: BaseException) -> str | None:
    """The line to print when ``exc`` means another process of the job died or stopped answering."""
    import torch.distributed as dist

    kinds = tuple(k for k in (getattr(dist, "DistError", None), getattr(dist, "DistBackendError", None),
                              getattr(dist, "DistNetworkError", None)) if k is not None)
    text = " ".join(str(exc).split())
    if isinstance(exc, kinds) or any(w in text for w in ("Connection closed by peer", "Connection reset by peer",
                                                          "Timed out", "timed out", "Broken pipe", "gloo")):
        return (f"rank {processes.rank()}: another process of the distributed job stopped or stopped answering "
                f"({text[:160]}); this process stops too. Rerun the job (with --resume DIR if it wrote checkpoints).")
    return None


def launch(nproc: int, argv: list[str]) -> int:
    """Start ``nproc`` processes of ``softreg ARGV`` on this machine through torch's own launcher
    (torch.distributed.run, as torchrun does); returns the job's exit status."""
    import logging
    import signal

    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    if not 1 <= nproc <= 1024:
        raise UserInputError(f"--nproc must be an integer from 1 to 1024; got {nproc}.")
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)  # softreg says what failed
    args = parse_args(["--standalone", "--nproc-per-node", str(nproc), "--max-restarts", "0",
                       "--module", "softreg", *argv])
    try:
        run(args)
    except ChildFailedError as exc:
        # a process killed by a signal is the cause; the others then stopped on the broken collective
        # (and may have exited first, which get_first_failure would name)
        killed = sorted((r, f) for r, f in exc.failures.items() if f.exitcode < 0)
        rank, first = killed[0] if killed else exc.get_first_failure()
        code = first.exitcode
        if code in (2, 130, 143):  # a user error or an interrupt: rank 0 has already said why
            return code
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            print(f"softreg: error: training process {rank} was killed ({name}); the job stopped.", file=sys.stderr)
            return 128 - code
        print(f"softreg: error: training process {rank} failed (exit status {code}); the job stopped.",
              file=sys.stderr)
        return code
    return 0
