"""What did a prompt learn? The vocabulary tokens nearest to each learned context vector (CoOp's tool).

    python -m tools.interpret_prompt output/.../seed1/prompt_learner/model.pth.tar-50 [--topk 3]
                                     [--backbone ViT-B/16] [--backbone-path FILE] [--key ctx]

Reads CoOp / CoCoOp / TextRefiner checkpoints (``ctx``) and IVLP-style ones (PromptSRC, PromptKD,
MaPLe: ``prompt_learner.ctx``), ours and the reference's. Distances are Euclidean, between the
context vectors and CLIP's token embedding table. The backbone is read from the config printed in
the run's log.txt (the folder above the checkpoint's model folder) unless given by a flag.
"""
import argparse
import os
import re
import sys

import torch
import yaml

import clip
from clip.tokenizer import decode
from engine.utils import load_checkpoint

CTX_KEYS = ("ctx", "prompt_learner.ctx")
CONFIG_START = "** Config **"
CONFIG_END = "Collecting env info"


class InterpretError(ValueError):
    """A checkpoint or backbone that cannot be interpreted; the message says what to pass."""


def context_of(checkpoint, key=None):
    """(key, ctx [n_ctx, width] or [n_cls, n_ctx, width] as float) of a checkpoint dict."""
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise InterpretError("the file holds no state dict (expected a checkpoint with a 'state_dict')")
    keys = [key] if key else [k for k in CTX_KEYS if k in state]
    if not keys or keys[0] not in state:
        candidates = [k for k in state if "ctx" in k] or list(state)[:10]
        raise InterpretError(f"no context vectors under {key or ' or '.join(CTX_KEYS)}; "
                             f"the state dict has {candidates}: pass one with --key")
    return keys[0], state[keys[0]].float()


def backbone_from_log(checkpoint_path):
    """(MODEL.BACKBONE.NAME, MODEL.BACKBONE.PATH or "") from <run>/log.txt, or None when there is none."""
    run_dir = os.path.dirname(os.path.dirname(os.path.abspath(checkpoint_path)))
    log = os.path.join(run_dir, "log.txt")
    if not os.path.isfile(log):
        return None
    with open(log, "r", encoding="utf-8", errors="replace") as f:
        text = f.read()
    start, end = text.find(CONFIG_START), text.find(CONFIG_END)
    if start < 0 or end < start:
        return None
    body = re.sub(r"^\*+\n", "", text[start + len(CONFIG_START):end].lstrip("\n"))
    try:
        backbone = yaml.safe_load(body)["MODEL"]["BACKBONE"]
    except (yaml.YAMLError, KeyError, TypeError):
        return None
    return str(backbone.get("NAME") or ""), str(backbone.get("PATH") or "")


def nearest_tokens(ctx, token_embedding, topk):
    """(indices, distances) [n, topk] of the nearest rows of token_embedding [V, width] to ctx [n, width]."""
    distance = torch.cdist(ctx, token_embedding)  # [n, V]
    values, indices = distance.topk(topk, dim=1, largest=False)
    return indices, values


def describe(ctx, token_embedding, topk):
    """Printed lines: one per context vector (and per class for class-specific contexts)."""
    lines = []
    groups = [("", ctx)] if ctx.dim() == 2 else [(f"class {i}: ", c) for i, c in enumerate(ctx)]
    for prefix, vectors in groups:
        indices, distances = nearest_tokens(vectors, token_embedding, topk)
        for m, (idxs, dists) in enumerate(zip(indices, distances)):
            words = [decode([int(i)]).strip() for i in idxs]
            lines.append(f"{prefix}{m + 1}: {words} {[f'{d:.4f}' for d in dists.tolist()]}")
        lines.append(f'{prefix}nearest words: "{" ".join(decode([int(i)]).strip() for i in indices[:, 0])}"')
    return lines


def build_parser():
    parser = argparse.ArgumentParser(description="Nearest vocabulary tokens of learned prompt context vectors.")
    parser.add_argument("checkpoint", help="a prompt learner checkpoint (model.pth.tar-N, model-best.pth.tar)")
    parser.add_argument("--topk", type=int, default=3, help="tokens per context vector (default 3)")
    parser.add_argument("--backbone", default="", help="CLIP backbone (default: from the run's log.txt)")
    parser.add_argument("--backbone-path", default="", help="a local CLIP weights file (default: from log.txt)")
    parser.add_argument("--key", default="", help="state-dict key of the context (default ctx / prompt_learner.ctx)")
    return parser


def interpret(args):
    if not os.path.isfile(args.checkpoint):
        raise InterpretError(f'no file at "{args.checkpoint}": pass a checkpoint file such as '
                             "<run>/prompt_learner/model-best.pth.tar")
    if args.topk < 1:
        raise InterpretError(f"--topk must be at least 1, got {args.topk}")
    key, ctx = context_of(load_checkpoint(args.checkpoint, map_location="cpu"), args.key)
    name, path = args.backbone, args.backbone_path
    if not (name or path):
        found = backbone_from_log(args.checkpoint)
        if found is None:
            raise InterpretError(f"no log.txt with the run's config next to {args.checkpoint}: "
                                 "pass --backbone (e.g. ViT-B/16) or --backbone-path")
        name, path = found
        print(f"Backbone from the run's log: {name}" + (f' ("{path}")' if path else ""))
    token_embedding = clip.load(name, path=path or None).token_embedding.weight.detach()
    print(f"Return the top-{args.topk} matched words")
    print(f"Size of token embedding: {tuple(token_embedding.shape)}")
    print(f"Size of context ({key}): {tuple(ctx.shape)}")
    if ctx.shape[-1] != token_embedding.shape[1]:
        raise InterpretError(f"the context has width {ctx.shape[-1]} but the token embedding of {name or path} has "
                             f"width {token_embedding.shape[1]}: pass the backbone the prompt was trained with")
    for line in describe(ctx, token_embedding, min(args.topk, token_embedding.shape[0])):
        print(line)


def main(argv=None):
    parser = build_parser()
    try:
        interpret(parser.parse_args(argv))
    except InterpretError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
