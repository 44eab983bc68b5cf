"""The process group torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT).

gloo on CPU, nccl when the run uses CUDA; each process drives the GPU ``LOCAL_RANK``.
"""
import datetime
import os

import torch
import torch.distributed as dist

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
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
