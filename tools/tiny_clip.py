"""Tiny random CLIP models with OpenAI's key layout, for tests and the offline demo.

usage: python -m tools.tiny_clip --out FILE [--kind vit|resnet] [--format state_dict|torchscript]
                                 [--image-size 32] [--seed 0]

``clip.build_model`` reads the small architecture back from the weights, exactly as it reads
OpenAI's releases; the text side keeps CLIP's vocabulary (49408) and context (77) so the real
tokenizer works with it.
"""
import argparse
import os
import warnings

import torch

from clip.model import CLIP

KINDS = ("vit", "resnet")
FORMATS = ("state_dict", "torchscript")


def tiny_clip_model(
    kind="vit",
    seed=0,
    image_size=32,
    embed_dim=32,
    vision_width=None,
    vision_layers=2,
    patch_size=8,
    text_width=64,
    text_layers=2,
):
    """A small CLIP (eval mode) with OpenAI's initialisation; the global RNG is left untouched.

    ViT: width 128 by default (2 heads of 64), ``vision_layers`` blocks, ``image_size`` a
    multiple of ``patch_size``. ResNet: one bottleneck per stage, width 8 by default (attention
    pool of 256 channels, 4 heads), ``image_size`` a multiple of 32. Widths must be multiples of
    64 (ViT, text) so that heads = width // 64 as CLIP's builder infers them.
    """
    if kind == "vit":
        vision_width = vision_width or 128
        vision = dict(vision_layers=vision_layers, vision_width=vision_width, vision_patch_size=patch_size)
        if vision_width % 64 or image_size % patch_size:
            raise ValueError(
                f"a tiny ViT needs a width that is a multiple of 64 (got {vision_width}) and an image size "
                f"that is a multiple of the patch size {patch_size} (got {image_size})"
            )
    elif kind == "resnet":
        vision_width = vision_width or 8
        vision = dict(vision_layers=(1, 1, 1, 1), vision_width=vision_width, vision_patch_size=None)
        if image_size % 32:
            raise ValueError(f"a tiny ResNet needs an image size that is a multiple of 32, got {image_size}")
    else:
        raise ValueError(f'kind must be one of {KINDS}, got "{kind}"')
    if text_width % 64:
        raise ValueError(f"text_width must be a multiple of 64, got {text_width}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIP(
            embed_dim=embed_dim,
            image_resolution=image_size,
            context_length=77,
            vocab_size=49408,
            transformer_width=text_width,
            transformer_heads=text_width // 64,
            transformer_layers=text_layers,
            **vision,
        )
    return model.eval()


def tiny_clip_state_dict(kind="vit", seed=0, **kwargs):
    """OpenAI-layout weights of ``tiny_clip_model(kind, seed, **kwargs)``."""
    return tiny_clip_model(kind, seed, **kwargs).state_dict()


def _trace_like_release(model):
    """A TorchScript archive of ``model`` traced on (image, text), like OpenAI's release files."""
    size = model.visual.input_resolution
    image = torch.zeros(1, 3, size, size)
    text = torch.zeros(1, 77, dtype=torch.long)
    text[0, :3] = torch.tensor([49406, 320, 49407])  # SOT "a" EOT
    with warnings.catch_warnings(), torch.no_grad():
        # tracing bakes the text length in; only the archive's weights are ever used
        warnings.simplefilter("ignore")
        return torch.jit.trace(model, (image, text), check_trace=False)


def save_tiny_clip(path, kind="vit", fmt="state_dict", seed=0, **kwargs):
    """Write a tiny CLIP as a plain state dict or as a TorchScript archive; returns ``path``."""
    if fmt not in FORMATS:
        raise ValueError(f'fmt must be one of {FORMATS}, got "{fmt}"')
    model = tiny_clip_model(kind, seed, **kwargs)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if fmt == "state_dict":
        torch.save(model.state_dict(), path)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit: still what OpenAI released
            _trace_like_release(model).save(path)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description="Write a tiny random CLIP with OpenAI's key layout.")
    parser.add_argument("--out", required=True, help="file to write")
    parser.add_argument("--kind", default="vit", choices=KINDS)
    parser.add_argument("--format", default="state_dict", choices=FORMATS)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        save_tiny_clip(args.out, args.kind, args.format, args.seed, image_size=args.image_size)
    except ValueError as e:
        parser.error(str(e))
    print(f"Wrote a tiny {args.kind} CLIP ({args.format}) to {args.out}")


if __name__ == "__main__":
    main()
