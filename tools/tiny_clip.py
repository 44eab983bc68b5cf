"""Tiny random CLIP models in OpenAI's, OpenCLIP's and Hugging Face's layouts, for tests and the offline demo.

usage: python -m tools.tiny_clip --out FILE [--kind vit|resnet] [--format state_dict|torchscript|openclip|hf]
                                 [--image-size 32] [--seed 0]

``clip.build_model`` reads the small architecture back from the weights, exactly as it reads
OpenAI's releases; the text side keeps CLIP's vocabulary (49408) and context (77) so the real
tokenizer works with it. ``openclip`` writes a folder as the OpenCLIP zoo ships one (GELU, its
open_clip_config.json); ``hf`` a random transformers CLIPModel folder (needs transformers).
"""
import argparse
import json
import os
import warnings

import torch

from clip.model import CLIP

KINDS = ("vit", "resnet")
FORMATS = ("state_dict", "torchscript", "openclip", "hf")


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
    vision_heads=None,
    text_heads=None,
    activation="quick_gelu",
):
    """A small CLIP (eval mode) with OpenAI's initialisation; the global RNG is left untouched.

    ViT: width 128 by default (2 heads of 64), ``vision_layers`` blocks, ``image_size`` a
    multiple of ``patch_size``. ResNet: one bottleneck per stage, width 8 by default (attention
    pool of 256 channels, 4 heads), ``image_size`` a multiple of 32. Without explicit heads,
    widths must be multiples of 64 (ViT, text) so that heads = width // 64 as CLIP's builder infers
    them from OpenAI's weights; other layouts carry their heads in their config.
    """
    if kind == "vit":
        vision_width = vision_width or 128
        vision = dict(vision_layers=vision_layers, vision_width=vision_width, vision_patch_size=patch_size)
        if (vision_heads is None and vision_width % 64) or image_size % patch_size:
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
    if text_heads is None and text_width % 64:
        raise ValueError(f"text_width must be a multiple of 64, got {text_width}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIP(
            embed_dim=embed_dim,
            image_resolution=image_size,
            context_length=77,
            vocab_size=49408,
            transformer_width=text_width,
            transformer_heads=text_heads or text_width // 64,
            transformer_layers=text_layers,
            vision_heads=vision_heads,
            activation=activation,
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


def save_tiny_openclip(folder, kind="vit", seed=0, **kwargs):
    """A tiny GELU CLIP in the folder layout of the OpenCLIP zoo: open_clip_model.safetensors (OpenAI's
    keys, which OpenCLIP's native towers keep) and open_clip_config.json (its model_cfg, heads
    as head_width / heads). Returns (folder, the model)."""
    from safetensors.torch import save_file

    model = tiny_clip_model(kind, seed, activation="gelu", **kwargs)
    visual = model.visual
    if kind == "vit":
        width = visual.conv1.weight.shape[0]
        vision_cfg = dict(image_size=visual.input_resolution, layers=visual.transformer.layers, width=width,
                          patch_size=visual.conv1.weight.shape[-1],
                          head_width=width // visual.transformer.resblocks[0].attn.num_heads)
    else:
        width = visual.layer1[0].conv1.weight.shape[0]
        vision_cfg = dict(image_size=visual.input_resolution, layers=[1, 1, 1, 1], width=width, patch_size=None,
                          head_width=width * 32 // visual.attnpool.num_heads)
    text = model.transformer
    model_cfg = dict(
        embed_dim=model.text_projection.shape[1], vision_cfg=vision_cfg,
        text_cfg=dict(context_length=77, vocab_size=49408, width=text.width,
                      heads=text.resblocks[0].attn.num_heads, layers=text.layers),
    )
    os.makedirs(folder, exist_ok=True)
    weights = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(weights, os.path.join(folder, "open_clip_model.safetensors"))
    with open(os.path.join(folder, "open_clip_config.json"), "w") as f:
        json.dump({"model_cfg": model_cfg, "preprocess_cfg": {}}, f, indent=2)
    return folder, model


def tiny_hf_config(image_size=32, patch_size=8, vision_width=128, vision_layers=2, vision_heads=2,
                   text_width=64, text_layers=2, text_heads=1, embed_dim=32, activation="quick_gelu"):
    """A small transformers.CLIPConfig with CLIP's vocabulary and context."""
    from transformers import CLIPConfig

    text = dict(hidden_size=text_width, intermediate_size=4 * text_width, num_hidden_layers=text_layers,
                num_attention_heads=text_heads, vocab_size=49408, max_position_embeddings=77, hidden_act=activation,
                bos_token_id=49406, eos_token_id=49407)
    vision = dict(hidden_size=vision_width, intermediate_size=4 * vision_width, num_hidden_layers=vision_layers,
                  num_attention_heads=vision_heads, image_size=image_size, patch_size=patch_size, hidden_act=activation)
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=embed_dim)


def tiny_hf_clip(seed=0, **kwargs):
    """A random transformers.CLIPModel (eval mode) of tiny_hf_config(**kwargs); the global RNG is left untouched."""
    from transformers import CLIPModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return CLIPModel(tiny_hf_config(**kwargs)).eval()


def save_tiny_clip(path, kind="vit", fmt="state_dict", seed=0, **kwargs):
    """Write a tiny CLIP as a plain state dict, a TorchScript archive, or an OpenCLIP / Hugging Face
    folder; returns ``path``."""
    if fmt not in FORMATS:
        raise ValueError(f'fmt must be one of {FORMATS}, got "{fmt}"')
    if fmt == "openclip":
        return save_tiny_openclip(path, kind, seed, **kwargs)[0]
    if fmt == "hf":
        if kind != "vit":
            raise ValueError("Hugging Face CLIPModel has no ResNet image tower: use --kind vit")
        image_size = kwargs.pop("image_size", 32)
        tiny_hf_clip(seed, image_size=image_size, **kwargs).save_pretrained(path)
        return path
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
    parser.add_argument("--out", required=True, help="file to write (a folder for --format openclip / hf)")
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
