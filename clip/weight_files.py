"""Reading weights files of other CLIP releases as data, and what a layout reader hands back.

``.safetensors`` files are read with safetensors (no pickle at all); ``.bin`` / ``.pt`` / ``.pth``
files only through ``torch.load(weights_only=True)``, which refuses anything but tensors and
plain containers. A Hugging Face index (``model.safetensors.index.json``) names the shards.
"""
import json
import os
from dataclasses import dataclass, field

import torch

SHARD_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


@dataclass
class ConvertedWeights:
    """A state dict in OpenAI's key layout and what the weights alone do not tell.

    settings: ``build_model`` keywords (vision_heads, transformer_heads, activation);
    source: how the log names the weights; mean_std: the (mean, std) the images were normalised
    with in training, when the release says (None: not said).
    """

    state_dict: dict
    source: str
    settings: dict = field(default_factory=dict)
    mean_std: tuple = None


def first_file(folder, names):
    """The path of the first of ``names`` that exists in ``folder``, or None."""
    return next((os.path.join(folder, n) for n in names if os.path.isfile(os.path.join(folder, n))), None)


def file_beside(path, name):
    """``name`` in the folder of the file ``path`` (or in ``path`` itself when it is a folder), or None."""
    return first_file(path if os.path.isdir(path) else os.path.dirname(path), [name])


def read_json(path, what):
    try:
        with open(path, "r") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f'The {what} "{path}" is not valid JSON ({e}): download it again.') from None


def read_tensors(path):
    """{name: tensor} of one weights file (or of every shard its index names), read as data."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'CLIP weights file not found: "{path}"')
    if os.path.basename(path) in SHARD_INDEXES:
        folder = os.path.dirname(path)
        shards = sorted(set(read_json(path, "weights index")["weight_map"].values()))
        state = {}
        for shard in shards:
            state.update(read_tensors(os.path.join(folder, shard)))
        return state
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        try:
            return load_file(path, device="cpu")
        except Exception as e:  # safetensors raises its own error types for damaged files
            raise ValueError(f'"{path}" is not a readable safetensors file ({e}): download it again.') from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # weights_only refuses pickled code; other errors: not a torch file
        first_line = str(e).splitlines()[0] if str(e) else ""
        raise ValueError(
            f'"{path}" cannot be read as a weights file holding only tensors ({type(e).__name__}: {first_line}). '
            "Files that need code to load are not read; a .safetensors copy of the weights always loads."
        ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]  # a training checkpoint: {"epoch", "state_dict", ...}
    if not isinstance(state, dict):
        raise ValueError(f'"{path}" holds a {type(state).__name__}, not a state dict of tensors')
    return state
