"""Loading the CLIP backbone named in the config, and the precision it runs in."""
import os

import torch

import clip
from clip.model import convert_weights

CONTEXT_LENGTH = 77  # CLIP's text context, in tokens


def clip_weights_file(name, path=""):
    """The file a CLIP is loaded from: ``path`` when given, else the download cache's file of the
    release ``name`` (it may not exist yet); None for an unknown name."""
    if path:
        return path
    url = clip.MODELS.get(name)
    return None if url is None else os.path.join(clip.default_cache_dir(), os.path.basename(url))


def backbone_weights_files(cfg):
    """{config key: file} of the weights every CLIP trainer loads: the backbone and MODEL.INIT_WEIGHTS."""
    files = {"MODEL.BACKBONE": clip_weights_file(cfg.MODEL.BACKBONE.NAME, cfg.MODEL.BACKBONE.PATH)}
    if cfg.MODEL.INIT_WEIGHTS:
        files["MODEL.INIT_WEIGHTS"] = cfg.MODEL.INIT_WEIGHTS
    return files


def load_clip(cfg, prec, device):
    """CLIP from MODEL.BACKBONE.PATH or the download cache, in fp16 for PREC fp16 (else fp32)."""
    backbone = cfg.MODEL.BACKBONE.NAME
    path = cfg.MODEL.BACKBONE.PATH or None
    if not backbone and path is None:
        raise ValueError("No CLIP backbone: set MODEL.BACKBONE.NAME (e.g. ViT-B/16) or MODEL.BACKBONE.PATH")
    print(f"Loading CLIP (backbone: {backbone})" + (f' from "{path}"' if path else ""))
    model = clip.load(backbone, path=path, device="cpu")
    check_normalisation(model, cfg.INPUT)
    if prec == "fp16":
        convert_weights(model)
    if cfg.MODEL.BACKBONE.COMPILE:
        compile_image_encoder(model.visual, device)
    return model.to(device)


def check_normalisation(model, input_cfg):
    """One line when the weights were trained on images normalised otherwise than INPUT.PIXEL_MEAN / STD
    (e.g. OpenCLIP's ViT-L-14 laion2b_s32b_b82k: 0.5, 0.5): the config decides, the log says how to match."""
    if model.image_mean_std is None:
        return
    mean, std = (list(map(float, v)) for v in model.image_mean_std)
    config = list(map(float, input_cfg.PIXEL_MEAN)), list(map(float, input_cfg.PIXEL_STD))
    if any(abs(a - b) > 1e-6 for ours, theirs in zip(config, (mean, std)) for a, b in zip(ours, theirs)):
        print(f"Note: these CLIP weights were trained on images normalised with mean {mean} and std {std}, "
              f"but INPUT.PIXEL_MEAN is {config[0]} and INPUT.PIXEL_STD {config[1]}: add "
              f'INPUT.PIXEL_MEAN "{mean}" INPUT.PIXEL_STD "{std}" to the command to match them')


def require_vit(clip_model, cfg):
    """One clear error when a trainer that prompts the image encoder's blocks gets a ResNet CLIP."""
    if not hasattr(clip_model.visual, "transformer"):
        backbone = cfg.MODEL.BACKBONE.PATH or cfg.MODEL.BACKBONE.NAME
        raise ValueError(
            f'{cfg.TRAINER.NAME} puts prompts into the transformer blocks of a ViT image encoder, but the CLIP "{backbone}" '
            "has a ResNet image encoder: use a ViT backbone (MODEL.BACKBONE.NAME ViT-B/16, or a ViT weights file "
            "in MODEL.BACKBONE.PATH)"
        )


def check_class_names(dataset):
    """Every class name fits CLIP's 77-token text context with its start and end tokens; the error
    names the class and the file it comes from."""
    limit = CONTEXT_LENGTH - 2
    for label, name in enumerate(dataset.classnames):
        n_tokens = len(clip.encode(name.replace("_", " ")))
        if n_tokens > limit:
            source = f' in "{dataset.label_source}"' if dataset.label_source else ""
            shown = name if len(name) <= 80 else name[:77] + "..."
            raise ValueError(
                f'The class name "{shown}" (label {label}{source}) is {n_tokens} tokens long, but CLIP\'s text encoder '
                f"reads {CONTEXT_LENGTH} tokens, its start and end tokens and the prompt's words included: shorten "
                "the name there (a few words name a class best)."
            )


def _probe_compile(device):
    """Compile and run a one-line function on ``device``: raises where torch.compile cannot work
    (e.g. no C++ compiler for CPU kernels), which a compiled module would only reveal at its first call."""
    fn = torch.compile(lambda x: x * torch.sigmoid(1.702 * x))
    fn(torch.ones(8, device=device))


def compile_image_encoder(visual, device):
    """MODEL.BACKBONE.COMPILE: ``visual.compile()`` (in place, so parameter names and checkpoints
    do not change), or eager with one line saying why when torch.compile is unavailable here.
    Returns whether it compiled. Compiled kernels are not bit-identical to eager ones (docs/ENGINE.md)."""
    try:
        _probe_compile(device)
    except Exception as e:  # the compiler stack raises many types (missing compiler, backend errors)
        lines = str(e).strip().splitlines()
        reason = lines[0] if lines else ""
        print(f"MODEL.BACKBONE.COMPILE: torch.compile is unavailable ({type(e).__name__}: {reason}); "
              "running the image encoder eagerly")
        return False
    visual.compile()
    print("MODEL.BACKBONE.COMPILE: the image encoder runs under torch.compile (its first batches compile it)")
    return True


def half_like_reference(module):
    """fp16 convs/linears, fp32 BatchNorm: what the reference's convert_weights leaves of a head."""
    for m in module.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            m.half()
    return module
