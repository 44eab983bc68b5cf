"""The captioner: a CLIP embedding -> the mapper's prefix -> a frozen OPT (``inputs_embeds``).

Only the mapper (``clip_project``, the reference's name) has gradients; OPT is frozen and in eval
mode in every mode of the captioner. Weights files load as data: our mapper files (safetensors,
``clip_project.*``) and the reference's released checkpoints ({"state_dict": ...} with
``clip_project.*`` and ``llm.llm.*`` keys, read through the allow-listed unpickler).
"""
import os

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from engine.checkpoint import load_checkpoint
from tta.captioning.mapper import TransformerMapper

MAPPER_PREFIX = "clip_project."
REFERENCE_LLM_PREFIX = "llm.llm."  # the reference's wrapper around OPTForCausalLM


def load_language_model(name, dtype=torch.float32):
    """(OPTForCausalLM frozen in eval mode, its tokenizer) from a hub name or a local folder."""
    from transformers import AutoTokenizer, OPTForCausalLM

    try:
        llm = OPTForCausalLM.from_pretrained(name).to(dtype)
        tokenizer = AutoTokenizer.from_pretrained(name)
    except OSError as e:
        raise FileNotFoundError(
            f'--llm "{name}" is neither a folder with an OPT model and its tokenizer nor a Hugging Face hub name that '
            f"can be downloaded now ({str(e).splitlines()[0]}): give the folder of a downloaded OPT (e.g. "
            "facebook/opt-125m, saved with save_pretrained) or a hub name with internet access"
        ) from None
    return llm.eval().requires_grad_(False), tokenizer


class Captioner(nn.Module):
    """Mapper + frozen OPT. Shapes: clip embeddings [B, D_clip], prefix [B, L, W], tokens [B, T]."""

    def __init__(self, llm, clip_dim=512, prefix_length=40, clip_length=40, layers=8, heads=8):
        super().__init__()
        width = llm.get_input_embeddings().weight.shape[1]
        self.clip_project = TransformerMapper(clip_dim, width, prefix_length, clip_length, layers, heads)
        self.llm = llm.eval().requires_grad_(False)

    @property
    def prefix_length(self):
        return self.clip_project.prefix_length

    def train(self, mode=True):
        super().train(mode)
        self.llm.eval()  # frozen: dropout off whatever the mapper's mode
        return self

    def prefix(self, clip_embeddings):
        return self.clip_project(clip_embeddings.to(self.clip_project.linear.weight.dtype))

    def logits(self, prefix, tokens, mask):
        """Next-token logits [B, T, V] of each caption token (the first target is the caption's BOS)."""
        text = self.llm.get_input_embeddings()(tokens)  # [B, T, W]
        embeds = torch.cat([prefix.to(text.dtype), text], dim=1)  # [B, L + T, W]
        full_mask = torch.cat([mask.new_ones(prefix.shape[:2]), mask], dim=1)
        logits = self.llm(inputs_embeds=embeds, attention_mask=full_mask).logits
        return logits[:, self.prefix_length - 1 : -1]

    def token_ce(self, prefix, tokens, mask):
        """CE [B, T] of each token given the prefix and the tokens before it; 0 where ``mask`` is 0 (pads)."""
        logits = self.logits(prefix, tokens, mask).float()
        ce = F.cross_entropy(logits.transpose(1, 2), tokens, reduction="none")  # [B, T]
        return ce * mask

    def mapper_state(self):
        return {MAPPER_PREFIX + k: v for k, v in self.clip_project.state_dict().items()}


def read_weights(path):
    """The state dict in a captioner weights file: safetensors, or a reference checkpoint ({'state_dict': ...})."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'The captioner checkpoint "{path}" does not exist: check --checkpoint')
    if path.endswith(".safetensors"):
        return load_file(path)
    state = load_checkpoint(path)
    return state.get("state_dict", state) if isinstance(state, dict) else state


def load_weights(captioner, path):
    """Load a mapper (and, from a reference checkpoint, its OPT) into ``captioner``; raise one error on mismatch."""
    state = read_weights(path)
    if not isinstance(state, dict) or not any(k.startswith(MAPPER_PREFIX) for k in state):
        raise ValueError(f'"{path}" holds no mapper weights (keys "{MAPPER_PREFIX}*"): it is not a ClipCap / CapDec checkpoint')
    other = sorted(k for k in state if not k.startswith((MAPPER_PREFIX, REFERENCE_LLM_PREFIX)))
    if other:
        raise ValueError(f'"{path}" has keys that are neither the mapper\'s nor the language model\'s: {other[:5]}')
    mapper = {k[len(MAPPER_PREFIX):]: v for k, v in state.items() if k.startswith(MAPPER_PREFIX)}
    _load_part(captioner.clip_project, mapper, path, "mapper", "--prefix_length / --clip_length / --mapper_layers / CLIP width")
    llm = {k[len(REFERENCE_LLM_PREFIX):]: v for k, v in state.items() if k.startswith(REFERENCE_LLM_PREFIX)}
    if llm:
        _load_part(captioner.llm, llm, path, "language model", "--llm (the OPT it was trained with)")


def _load_part(module, state, path, what, fix):
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items() if k in state and state[k].shape != v.shape]
    if missing or unexpected or shapes:
        found = [f"missing {missing[:3]}"] * bool(missing) + [f"unexpected {unexpected[:3]}"] * bool(unexpected) + shapes[:3]
        raise ValueError(f'The {what} weights in "{path}" do not fit this captioner ({"; ".join(found)}): check {fix}')
    with torch.no_grad():
        for k, v in own.items():
            v.copy_(state[k].to(v.dtype))
