"""Cached CLIP features of a caption training set, and the reference's feature pickles read as data.

Ours: one safetensors file, tensors ``image`` [N_img, D] and ``text`` [N_cap, D] (CLIP embeddings,
not normalised), ``image_index`` [N_cap] (the image of each caption); metadata ``captions`` and
``image_ids`` (JSON lists), ``clip`` (the CLIP that made them). The reference's pickles
({"clip_image_embedding", "clip_text_embedding", "captions", "image_ids", "text_index",
"image_index"}) read through the allow-listed unpickler, their tensors through torch's weights-only
loader.
"""
import io
import json
import os
from dataclasses import dataclass

import torch
from safetensors.torch import load_file, safe_open, save_file

from engine.utils.safe_pickle import SafeUnpickler, allowed_globals, is_trusted
from engine.utils.tools import atomic_write


@dataclass
class CaptionFeatures:
    image: torch.Tensor  # [N_img, D]
    text: torch.Tensor  # [N_cap, D]
    image_index: torch.Tensor  # [N_cap] int64
    captions: list
    image_ids: list
    clip: str = ""

    def check(self, path):
        n = len(self.captions)
        if self.text.shape[0] != n or self.image_index.shape[0] != n:
            raise ValueError(f'"{path}" has {n} captions but {self.text.shape[0]} text embeddings / {self.image_index.shape[0]} image indices')
        if n and (int(self.image_index.max()) >= self.image.shape[0] or int(self.image_index.min()) < 0):
            raise ValueError(f'"{path}" has caption image indices outside its {self.image.shape[0]} image embeddings')
        return self


def save_features(path, features):
    tensors = {"image": features.image.contiguous(), "text": features.text.contiguous(),
               "image_index": features.image_index.long().contiguous()}
    metadata = {"captions": json.dumps(features.captions), "image_ids": json.dumps(features.image_ids), "clip": features.clip}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def _storage_from_bytes(b):
    """What torch.storage._load_from_bytes does for a pickled tensor, without running pickled code."""
    return torch.load(io.BytesIO(b), weights_only=True)


def _read_reference_pickle(path):
    allowed = allowed_globals()
    allowed[("torch.storage", "_load_from_bytes")] = _storage_from_bytes
    with open(path, "rb") as f:
        data = SafeUnpickler(f, path, lambda module, name: allowed.get((module, name)), is_trusted(path)).load()
    keys = ("clip_image_embedding", "clip_text_embedding", "captions", "image_index")
    if not isinstance(data, dict) or any(k not in data for k in keys):
        raise ValueError(f'"{path}" is not a feature pickle of the reference (it needs the keys {list(keys)})')
    return CaptionFeatures(
        image=torch.as_tensor(data["clip_image_embedding"]).float(), text=torch.as_tensor(data["clip_text_embedding"]).float(),
        image_index=torch.as_tensor(data["image_index"], dtype=torch.long), captions=list(data["captions"]),
        image_ids=list(data.get("image_ids", [])),
    )


def load_features(path):
    """Our .safetensors feature file or the reference's .pkl, checked."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'The feature file "{path}" does not exist: extract the features first, or check --data')
    if path.endswith(".safetensors"):
        tensors = load_file(path)
        with safe_open(path, "pt") as f:
            meta = f.metadata() or {}
        missing = [k for k in ("image", "text", "image_index") if k not in tensors] + [k for k in ("captions",) if k not in meta]
        if missing:
            raise ValueError(f'"{path}" is not a caption feature file (it lacks {missing})')
        features = CaptionFeatures(tensors["image"], tensors["text"], tensors["image_index"], json.loads(meta["captions"]),
                                   json.loads(meta.get("image_ids", "[]")), meta.get("clip", ""))
    else:
        features = _read_reference_pickle(path)
    return features.check(path)
