"""The global random-number states (Python, NumPy, torch CPU and CUDA) as checkpoint values.

A checkpoint written at the end of an epoch carries them, and a resumed run restores them
before its first epoch, so the sampler order, the augmentation draws and the data-loader
workers' seeds (all drawn from these generators) continue exactly as in an uninterrupted run.
Everything is stored as tensors and plain values so checkpoints load with ``weights_only``.
"""
import random

import numpy as np
import torch


def capture_rng_state():
    """The current states of every global generator (a dict of tensors and plain values)."""
    np_state = np.random.get_state(legacy=False)
    state = {
        "python": _to_lists(random.getstate()),
        "numpy": {
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state):
    """Set every global generator to ``state`` (from capture_rng_state)."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": "MT19937",
            "state": {"key": np_state["key"].numpy().astype(np.uint32), "pos": np_state["pos"]},
            "has_gauss": np_state["has_gauss"],
            "gauss": np_state["gauss"],
        }
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
        else:  # another number of GPUs: the CPU-side draws are still exact
            print(f"Note: the checkpoint holds {len(cuda_states)} CUDA RNG states for {torch.cuda.device_count()} GPUs; CUDA RNGs are not restored")


def _to_lists(python_state):
    version, internal, gauss = python_state
    return [version, list(internal), gauss]


def offset_for_rank(rank):
    """Reseed the global generators of rank ``rank`` > 0 from its current state and its rank.

    Under torchrun every rank starts from the same seed (identical models); this makes the
    augmentation draws differ between ranks. Rank 0 keeps its stream: it draws as a
    single-process run, and its generators draw the sampler order every rank follows (ShardedSampler).
    """
    if rank <= 0:
        return
    base = int(torch.randint(0, 2**31 - 1, (1,)).item())
    seed = int(np.random.SeedSequence([base, rank]).generate_state(1)[0])
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
