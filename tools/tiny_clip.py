"""Tiny random CLIP models with OpenAI's key layout, for tests and the offline demo.

usage: python -m tools.tiny_clip --out FILE [--kind vit|resnet] [--format state_dict|torchscript] [--image-size 32]
"""
import argparse
import os

import torch

from clip.model import CLIP


def tiny_clip_model(kind="vit", seed=0, image_size=32, embed_dim=32, width=64, layers=2):
    """A small CLIP with OpenAI's initialisation, built without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if kind == "vit":
            vision = dict(vision_layers=layers, vision_width=width, vision_patch_size=8)
        elif kind == "resnet":
            # width 64 -> attention-pool width 2048; image_size must be a multiple of 32
            vision = dict(vision_layers=(1, 1, 1, 1), vision_width=width, vision_patch_size=None)
        else:
            raise ValueError(f'kind must be "vit" or "resnet", got "{kind}"')
        model = CLIP(
            embed_dim=embed_dim,
            image_resolution=image_size,
            context_length=77,
            vocab_size=49408,
            transformer_width=width,
            transformer_heads=width // 64,
            transformer_layers=layers,
            **vision,
        )
    return model.eval()


def tiny_clip_state_dict(kind="vit", seed=0, **kwargs):
    return tiny_clip_model(kind, seed, **kwargs).state_dict()


def save_tiny_clip(path, kind="vit", fmt="state_dict", seed=0, **kwargs):
    """Write a tiny CLIP as a plain state dict or as a TorchScript archive like OpenAI's releases."""
    model = tiny_clip_model(kind, seed, **kwargs)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if fmt == "state_dict":
        torch.save(model.state_dict(), path)
    elif fmt == "torchscript":
        size = model.visual.input_resolution
        example = (torch.zeros(1, 3, size, size), torch.zeros(1, 77, dtype=torch.long))
        example[1][0, :3] = torch.tensor([49406, 320, 49407])
        with torch.no_grad():
            traced = torch.jit.trace(model, example, check_trace=False)
        traced.save(path)
    else:
        raise ValueError(f'fmt must be "state_dict" or "torchscript", got "{fmt}"')
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--kind", default="vit", choices=["vit", "resnet"])
    parser.add_argument("--format", default="state_dict", choices=["state_dict", "torchscript"])
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    save_tiny_clip(args.out, args.kind, args.format, args.seed, image_size=args.image_size)
    print(f"Wrote a tiny {args.kind} CLIP ({args.format}) to {args.out}")


if __name__ == "__main__":
    main()
