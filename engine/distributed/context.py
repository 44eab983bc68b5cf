"""The process group torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT).

gloo on CPU, nccl when the run uses CUDA; each process drives the GPU ``LOCAL_RANK``.
"""
import contextlib
import datetime
import gc
import os
import sys
import weakref

import torch
import torch.distributed as dist
# Imported before any process group exists: torch.distributed.nn's functions bind group.WORLD as
# a default argument when imported, and torch imports them lazily (with torch._dynamo); imported
# after init_process_group they would keep the group alive past destroy_process_group().
import torch.distributed.nn  # noqa: F401

# a rank that waits longer than this for the others stops with an error instead of hanging
# (torchrun normally ends every process first when one of them dies)
COLLECTIVE_TIMEOUT = datetime.timedelta(minutes=30)


def is_distributed():
    """Whether this process is one of several in an initialised process group."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size():
    return dist.get_world_size() if is_distributed() else 1


def rank():
    return dist.get_rank() if is_distributed() else 0


def local_rank():
    return int(os.environ.get("LOCAL_RANK", 0)) if is_distributed() else 0


def is_main_process():
    """Rank 0: the one process that writes logs, TensorBoard scalars, checkpoints and results."""
    return rank() == 0


def barrier():
    if is_distributed():
        dist.barrier()


def init_from_environment(use_cuda):
    """Join the process group when started by torchrun with more than one process.

    Returns the world size (1 without torchrun, or with ``--nproc_per_node 1``).
    """
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return 1
    missing = [k for k in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise RuntimeError(
            f"WORLD_SIZE={size} but {missing} are not set: start multi-process runs with "
            "`torchrun --nproc_per_node N train.py ...` (or NPROC=N bash scripts/...)"
        )
    if not dist.is_available():
        raise RuntimeError("This torch build has no torch.distributed: multi-process training is not available")
    cuda = use_cuda and torch.cuda.is_available()
    if cuda:
        gpu = int(os.environ["LOCAL_RANK"])
        if gpu >= torch.cuda.device_count():
            raise RuntimeError(
                f"LOCAL_RANK {gpu} but only {torch.cuda.device_count()} GPUs are visible: "
                "use --nproc_per_node <= the number of GPUs (CUDA_VISIBLE_DEVICES)"
            )
        torch.cuda.set_device(gpu)
    dist.init_process_group(backend="nccl" if cuda else "gloo", timeout=COLLECTIVE_TIMEOUT)
    return dist.get_world_size()


def shutdown():
    """Destroy the process group while the interpreter is fully alive.

    Whatever holds the group (DistributedDataParallel, autograd graphs of collectives) must be
    released before: a group that outlives this call is destroyed during interpreter exit,
    where gloo's communication threads can abort the process ("terminate called without an
    active exception", SIGABRT) after a run that otherwise succeeded.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    gc.collect()  # reference cycles that still reach the group
    group = weakref.ref(dist.group.WORLD)
    dist.destroy_process_group()
    gc.collect()
    if group() is not None:
        print(
            f"Warning: rank {os.environ.get('RANK', '?')}: the process group is still referenced after "
            "destroy_process_group(); it will be destroyed at interpreter exit, which can abort the process",
            file=sys.stderr,
        )


@contextlib.contextmanager
def process_group(use_cuda):
    """torchrun's process group for the duration of a run; yields the world size (1 without torchrun).

    Ranks other than 0 print nothing (their stdout goes to /dev/null; errors still reach stderr):
    rank 0 logs. On exit the group is destroyed; release what holds it (DistributedDataParallel)
    inside the block.
    """
    ranks = init_from_environment(use_cuda)
    quiet = ranks > 1 and not is_main_process()
    previous = sys.stdout
    if quiet:
        sys.stdout = open(os.devnull, "w")
    try:
        yield ranks
    finally:
        if quiet:
            sys.stdout.close()
            sys.stdout = previous
        if ranks > 1:
            shutdown()
