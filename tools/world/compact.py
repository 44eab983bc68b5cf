"""The compact file of a world CLIP: what pretraining changed, in safetensors (no pickle).

Pretraining trains every tensor of the world CLIP except the rows of the 49,408-row token
embedding that world captions never use (all but about 50). Those rows hold the canonical
``untrained_rows`` of the seed (pretraining writes them over the builder's initial values,
which training never touched and which torch draws differently on different CPUs). The
compact file holds every other tensor, the used rows and their ids, and as metadata the
pretraining settings, the world version and the SHA-256 of the whole state dict
(``state_digest``). ``expand`` rebuilds the untrained rows, puts the rest in and checks the
digest: every machine gets the same bytes, or an error that says so.
"""
import hashlib
import json
import os
from dataclasses import dataclass

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from engine.utils.tools import atomic_write

FORMAT = "textrefiner-world-clip-compact-1"
TOKEN_KEY = "token_embedding.weight"
IDS_KEY = "token_embedding.world_ids"  # [V] int64: the rows the world's captions use
ROWS_KEY = "token_embedding.world_rows"  # [V, width]: their trained values


def untrained_rows(seed, n_rows, width):
    """Token rows [n_rows, width] that no world text uses: uniform in [-2^-5, 2^-5) (std 0.018, about
    CLIP's initial 0.02). The 24 top bits of PCG64's raw outputs (a fixed algorithm) times a power of
    two: exact float32 arithmetic, so the same bits on every machine, whatever its vector units."""
    raw = np.random.PCG64(seed).random_raw(n_rows * width)  # uint64
    ints = (raw >> np.uint64(40)).astype(np.int64) - 2**23  # [-2^23, 2^23): exact in float32
    return torch.from_numpy((ints.astype(np.float32) * np.float32(2.0**-28)).reshape(n_rows, width))


def canonical_token_embedding(weight, ids, seed):
    """``weight`` [N, width] with every row but ``ids`` replaced by ``untrained_rows(seed, N, width)``."""
    canonical = untrained_rows(seed, *weight.shape).to(weight.dtype)
    canonical[ids] = weight.detach().cpu()[ids]
    return canonical


def state_digest(state_dict):
    """SHA-256 (hex) of a state dict's names, dtypes, shapes and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class CompactWorldCLIP:
    path: str
    tensors: dict  # every state-dict tensor but the token embedding
    ids: torch.Tensor  # [V]
    rows: torch.Tensor  # [V, width]
    vocab_size: int  # rows of the token embedding
    keys: list  # the state dict's names in their order
    settings: dict
    world_version: int
    digest: str  # state_digest of the expanded state dict


def expand(compact):
    """The full state dict of a compact file: untrained rows from the seed, the shipped rows and
    tensors put in. Raises ValueError when its digest is not the recorded one."""
    tokens = untrained_rows(compact.settings["seed"], compact.vocab_size, compact.rows.shape[1])
    tokens[compact.ids] = compact.rows
    state = {name: (tokens if name == TOKEN_KEY else compact.tensors[name]) for name in compact.keys}
    digest = state_digest(state)
    if digest != compact.digest:
        raise ValueError(f"The world CLIP expanded from {compact.path} has SHA-256 {digest[:12]}..., not the recorded "
                         f"{compact.digest[:12]}...: the file is damaged. Restore it (git checkout), or pretrain "
                         "the world CLIP on this machine: python -m tools.world.pretrain --pretrain")
    return state


def write_compact(path, state_dict, ids, settings, world_version):
    """Write the compact file of ``state_dict`` (its token rows ``ids`` [V] trained, the others the
    canonical untrained rows) atomically; refuses a state whose other rows differ (they would be lost)."""
    tokens = state_dict[TOKEN_KEY]
    if not torch.equal(tokens.detach().cpu(), canonical_token_embedding(tokens, ids, settings["seed"])):
        raise ValueError("token-embedding rows outside the world's vocabulary are not the canonical untrained rows "
                         "(compact.untrained_rows): a compact file keeps only the world's rows, so it cannot hold "
                         "this state; pretrain it again with this version (python -m tools.world.pretrain --force)")
    tensors = {name: t.detach().cpu().clone().contiguous() for name, t in state_dict.items() if name != TOKEN_KEY}
    tensors[IDS_KEY] = ids.to(torch.int64).cpu().clone()
    tensors[ROWS_KEY] = tokens[ids].detach().cpu().clone().contiguous()
    metadata = {"format": FORMAT, "settings": json.dumps(settings, sort_keys=True),
                "world_version": str(world_version), "state_sha256": state_digest(state_dict),
                "vocab_size": str(tokens.shape[0]), "keys": json.dumps(list(state_dict))}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def read_compact(path):
    """A compact world-CLIP file -> CompactWorldCLIP; one clear error when it is not one."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"The compact world-CLIP file {path} is missing")
    try:
        with safe_open(path, framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except Exception as e:  # safetensors raises its own error types for a damaged header
        raise ValueError(f"{path} is not a readable safetensors file ({e})") from e
    if metadata.get("format") != FORMAT or IDS_KEY not in tensors or ROWS_KEY not in tensors:
        raise ValueError(f'{path} is not a compact world-CLIP file (format "{metadata.get("format")}", '
                         f"expected {FORMAT})")
    ids, rows = tensors.pop(IDS_KEY), tensors.pop(ROWS_KEY)
    keys = json.loads(metadata["keys"])
    if set(keys) != set(tensors) | {TOKEN_KEY}:
        raise ValueError(f"{path} is damaged: its tensors are not the ones its metadata lists")
    return CompactWorldCLIP(path, tensors, ids, rows, int(metadata["vocab_size"]), keys,
                            json.loads(metadata["settings"]), int(metadata["world_version"]), metadata["state_sha256"])
