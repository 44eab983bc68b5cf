"""``clip.load``: a CLIP from a backbone name (MODEL.BACKBONE.NAME) and/or a local file (PATH).

Names: OpenAI's release names (ViT-B/16, ...: clip/download.py), ``openclip:ARCH/TAG`` or
``openclip:hf-hub:ORG/REPO`` (clip/openclip_layout.py), ``hf:ORG/REPO`` (clip/hf_layout.py). A local
file or folder is read by what it holds: Hugging Face keys, or OpenAI's keys (an OpenCLIP file when
open_clip wrote it: its name or its open_clip_config.json says so). Every layout ends as an
OpenAI-layout state dict plus the settings its config gives (heads, activation), built by
``build_model``; the model's widths, depths and patch size are read off the weights.
"""
import os

from . import hf_layout, openclip_layout
from .download import MODELS, load_state_dict, resolve_model_file
from .model import TEXT_KEYS, build_model
from .unsupported import SUPPORTED, found_families, unsupported_weights
from .weight_files import SHARD_INDEXES, ConvertedWeights, file_beside, read_tensors


def load(name, path=None, cache_dir=None, device="cpu"):
    """A CLIP model (fp32, eval mode) by name, or from the local file or folder ``path``.

    ``model.image_mean_std`` is the (mean, std) the weights were trained with when their release
    says so (else None); the trainers compare it with INPUT.PIXEL_MEAN / PIXEL_STD.
    """
    weights = read_weights(name, path, cache_dir)
    if found_families(weights.state_dict):  # towers of another family: say so before any shape error
        raise unsupported_weights(weights.source, weights.state_dict)
    try:
        model = build_model(weights.state_dict, **weights.settings)
    except (RuntimeError, ValueError) as e:  # keys, shapes or heads that do not fit our CLIP
        raise unsupported_weights(weights.source, weights.state_dict, str(e).splitlines()[0]) from None
    settings = ", ".join(f"{k} {v}" for k, v in weights.settings.items())
    print(f"Loaded CLIP weights: {weights.source}" + (f" ({settings})" if settings else ""))
    model.image_mean_std = weights.mean_std
    return model.to(device)


def read_weights(name, path=None, cache_dir=None):
    """ConvertedWeights of a backbone name and/or a local file or folder."""
    name = name or ""
    if not path and name and os.path.exists(name):
        path, name = name, ""  # tta.py's --arch may be a file or folder
    if path and not os.path.exists(path):
        raise FileNotFoundError(f'CLIP weights file not found: "{path}" (set by MODEL.BACKBONE.PATH)')
    if name.startswith(openclip_layout.PREFIX):
        return read_openclip(name[len(openclip_layout.PREFIX):], path)
    if name.startswith(hf_layout.PREFIX):
        return read_hf(name[len(hf_layout.PREFIX):], path)
    if path:
        return read_local(path)
    if name not in MODELS:
        raise ValueError(
            f'Unknown CLIP model "{name}"; OpenAI\'s models: {", ".join(MODELS)}; or openclip:ARCH/TAG, '
            f"hf:ORG/REPO, or a local weights file with MODEL.BACKBONE.PATH. {SUPPORTED}"
        )
    return ConvertedWeights(load_state_dict(resolve_model_file(name, None, cache_dir)), f"OpenAI CLIP {name}")


def read_local(path):
    """A local file or folder, its layout told by what it holds."""
    if os.path.isdir(path):
        return read_folder(path)
    state = read_state(path)
    if hf_layout.is_hf_state_dict(state):
        return hf_weights(state, path, file_beside(path, hf_layout.CONFIG_FILE),
                          file_beside(path, hf_layout.PREPROCESSOR_FILE))
    if openclip_layout.is_openclip_file(path):
        return openclip_weights("", state, path, openclip_layout.config_beside(path))
    return openai_weights(state, path)


def read_folder(folder):
    """An OpenCLIP folder (open_clip_config.json + weights) or a Hugging Face one (config.json + weights)."""
    openclip_file = openclip_layout.weights_in_folder(folder)
    if openclip_file and openclip_layout.config_beside(folder):
        return read_openclip("", openclip_file)
    hf_file = hf_layout.weights_in_folder(folder)
    if hf_file and file_beside(folder, hf_layout.CONFIG_FILE):
        return read_hf("", hf_file)
    raise FileNotFoundError(
        f'The folder "{folder}" holds neither an OpenCLIP model ({openclip_layout.CONFIG_FILE} and '
        f"{openclip_layout.WEIGHT_FILES[0]} / {openclip_layout.WEIGHT_FILES[-1]}) nor a Hugging Face CLIP "
        f"({hf_layout.CONFIG_FILE} and {hf_layout.WEIGHT_FILES[0]} / {hf_layout.WEIGHT_FILES[-1]}): name the weights "
        "file itself with MODEL.BACKBONE.PATH"
    )


def read_state(path):
    """The tensors of a local file: safetensors as data, OpenAI's archives and state dicts as clip/download
    reads them, any other torch file through weights_only."""
    if path.endswith(".safetensors") or os.path.basename(path) in SHARD_INDEXES:
        return read_tensors(path)
    try:
        return load_state_dict(path)
    except (RuntimeError, ValueError):  # not OpenAI's keys: read it as a plain weights file
        return read_tensors(path)


def openai_weights(state, path):
    if any(k not in state for k in TEXT_KEYS):
        detail = f"it holds no {', '.join(TEXT_KEYS)}"
        if state and all(k.startswith("module.") for k in state):
            detail += "; its keys start with module.: an OpenCLIP training checkpoint? Name its model with " \
                      "MODEL.BACKBONE.NAME openclip:ARCH/TAG"
        raise unsupported_weights(f'"{path}"', state, detail)
    return ConvertedWeights(state, f'"{path}" (OpenAI\'s layout, QuickGELU)')


def read_openclip(spec, path):
    """openclip:ARCH/TAG or openclip:hf-hub:ORG/REPO (from the hub), or openclip:ARCH with a local ``path``."""
    if path and os.path.isdir(path):
        weights_file = openclip_layout.weights_in_folder(path)
        if weights_file is None:
            names = ", ".join(openclip_layout.WEIGHT_FILES)
            raise FileNotFoundError(f'"{path}" holds no OpenCLIP weights file ({names})')
        path = weights_file
    if path:
        config = openclip_layout.config_beside(path)
    else:
        path, config = openclip_layout.fetch(spec)
    return openclip_weights(spec, read_state(path), path, config)


def openclip_weights(spec, state, path, config):
    source = f'OpenCLIP "{spec or os.path.basename(path)}" from "{path}"'
    arch, _ = openclip_layout.split_spec(spec)
    if config is None and (not arch or arch.startswith(openclip_layout.HUB_PREFIX)):
        raise ValueError(
            f'"{path}" is an OpenCLIP file without its {openclip_layout.CONFIG_FILE}: name its model with '
            "MODEL.BACKBONE.NAME openclip:ARCH/TAG (e.g. openclip:ViT-B-16/laion2b_s34b_b88k), since GELU or "
            f"QuickGELU and the heads depend on it, or put its {openclip_layout.CONFIG_FILE} beside it"
        )
    model_cfg, mean_std = openclip_layout.model_config(config) if config else (None, None)
    if model_cfg is not None:
        options = openclip_layout.unsupported_options(model_cfg)
        if options:
            raise unsupported_weights(source, [], "model config " + ", ".join(options))
    state = openclip_layout.to_openai_layout(state)
    if any(k not in state for k in TEXT_KEYS):
        raise unsupported_weights(source, state, f"it holds no {', '.join(TEXT_KEYS)}")
    settings = openclip_layout.settings(spec, model_cfg, state)
    return ConvertedWeights(state, source, settings, mean_std or openclip_layout.pretrained_mean_std(spec))


def read_hf(repo, path):
    """hf:ORG/REPO from the hub, or a local CLIPModel file or folder (hf: with PATH)."""
    if path and os.path.isdir(path):
        weights_file = hf_layout.weights_in_folder(path)
        if weights_file is None:
            names = ", ".join(hf_layout.WEIGHT_FILES)
            raise FileNotFoundError(f'"{path}" holds no Hugging Face weights file ({names})')
        path = weights_file
    if path:
        config = file_beside(path, hf_layout.CONFIG_FILE)
        preprocessor = file_beside(path, hf_layout.PREPROCESSOR_FILE)
    else:
        path, config, preprocessor = hf_layout.fetch(repo)
    return hf_weights(read_state(path), path, config, preprocessor)


def hf_weights(state, path, config, preprocessor):
    source = f'Hugging Face CLIPModel "{path}"'
    if config is None:
        # a lone file: OpenAI's released configs (heads of 64 channels, QuickGELU), said in the log line
        settings = {}
        source += f" without {hf_layout.CONFIG_FILE}: OpenAI's heads and QuickGELU assumed"
    else:
        settings = hf_layout.settings(hf_layout.read_config(config), source)
    state, unmapped = hf_layout.to_openai_layout(state)
    if unmapped:
        raise unsupported_weights(source, unmapped)
    return ConvertedWeights(state, source, settings, hf_layout.image_mean_std(preprocessor))
