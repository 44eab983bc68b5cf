"""Hugging Face transformers CLIP checkpoints (``CLIPModel``: config.json + model.safetensors) onto our CLIP.

The remapping (HF -> OpenAI keys):
    text_model.embeddings.token_embedding / position_embedding -> token_embedding / positional_embedding
    vision_model.embeddings.class_embedding / patch_embedding / position_embedding
                                           -> visual.class_embedding / visual.conv1 / visual.positional_embedding
    vision_model.pre_layrnorm / post_layernorm -> visual.ln_pre / visual.ln_post
    {text,vision}_model.encoder.layers.N.  -> transformer.resblocks.N. / visual.transformer.resblocks.N.
        self_attn.{q,k,v}_proj             -> attn.in_proj_weight / in_proj_bias (q, k, v stacked)
        self_attn.out_proj, layer_norm1, layer_norm2, mlp.fc1, mlp.fc2
                                           -> attn.out_proj, ln_1, ln_2, mlp.c_fc, mlp.c_proj
    text_model.final_layer_norm            -> ln_final
    text_projection.weight / visual_projection.weight [D, W] -> text_projection / visual.proj [W, D]
HF scales q before the product, SDPA after it: the same attention. Its text pooling takes the first
EOT (eos_token_id 49407) or, in configs written before that, the largest id (eos_token_id 2): for
CLIP's tokenizer both are our EOT argmax. Heads and the activation (hidden_act) come from config.json.
"""
import re

import torch

from .hub import hub_file, optional_hub_file
from .layers import ACTIVATIONS
from .unsupported import family_note
from .weight_files import SHARD_INDEXES, first_file, read_json

PREFIX = "hf:"
CONFIG_FILE = "config.json"
PREPROCESSOR_FILE = "preprocessor_config.json"
WEIGHT_FILES = ("model.safetensors", *SHARD_INDEXES, "pytorch_model.bin")
# transformers' CLIPTextConfig / CLIPVisionConfig defaults, for configs that leave a value out
TOWER_DEFAULTS = {
    "text_config": dict(num_attention_heads=8, hidden_act="quick_gelu", layer_norm_eps=1e-5, eos_token_id=2),
    "vision_config": dict(num_attention_heads=12, hidden_act="quick_gelu", layer_norm_eps=1e-5),
}
CLIP_EOT_IDS = (2, 49407)  # legacy marker (pool at the largest id) and CLIP's EOT id

SINGLE_KEYS = {
    "text_model.embeddings.token_embedding.weight": "token_embedding.weight",
    "text_model.embeddings.position_embedding.weight": "positional_embedding",
    "text_model.final_layer_norm.weight": "ln_final.weight",
    "text_model.final_layer_norm.bias": "ln_final.bias",
    "vision_model.embeddings.class_embedding": "visual.class_embedding",
    "vision_model.embeddings.patch_embedding.weight": "visual.conv1.weight",
    "vision_model.embeddings.position_embedding.weight": "visual.positional_embedding",
    "vision_model.pre_layrnorm.weight": "visual.ln_pre.weight",
    "vision_model.pre_layrnorm.bias": "visual.ln_pre.bias",
    "vision_model.post_layernorm.weight": "visual.ln_post.weight",
    "vision_model.post_layernorm.bias": "visual.ln_post.bias",
    "logit_scale": "logit_scale",
}
TRANSPOSED_KEYS = {"text_projection.weight": "text_projection", "visual_projection.weight": "visual.proj"}
IGNORED_KEYS = ("text_model.embeddings.position_ids", "vision_model.embeddings.position_ids")
TOWERS = {"text_model": "transformer.resblocks", "vision_model": "visual.transformer.resblocks"}
BLOCK_PARTS = {
    "self_attn.out_proj": "attn.out_proj",
    "layer_norm1": "ln_1",
    "layer_norm2": "ln_2",
    "mlp.fc1": "mlp.c_fc",
    "mlp.fc2": "mlp.c_proj",
}
BLOCK_KEY = re.compile(r"^(text_model|vision_model)\.encoder\.layers\.(\d+)\.(.+)\.(weight|bias)$")
QKV = {"self_attn.q_proj": 0, "self_attn.k_proj": 1, "self_attn.v_proj": 2}


def is_hf_state_dict(state_dict):
    return any(k.startswith(("text_model.", "vision_model.")) for k in state_dict)


def weights_in_folder(folder):
    return first_file(folder, WEIGHT_FILES)


def fetch(repo):
    """(weights file, config.json, preprocessor_config.json or None) of a hub repository."""
    repo = repo.strip("/")
    config = hub_file(repo, [CONFIG_FILE], "config")
    weights = hub_file(repo, ["model.safetensors", "pytorch_model.bin"], "CLIPModel weights")
    return weights, config, optional_hub_file(repo, PREPROCESSOR_FILE)


def read_config(config_path):
    """config.json -> {"text_config": {...}, "vision_config": {...}} with transformers' defaults filled
    in; one error for another model family."""
    config = read_json(config_path, "Hugging Face config")
    model_type = config.get("model_type", "")
    if model_type != "clip":
        raise ValueError(
            f'"{config_path}" is a Hugging Face "{model_type}" model, not a CLIP (CLIPModel, model_type "clip"). '
            + family_note(model_type)
        )
    return {tower: {**defaults, **(config.get(tower) or {})} for tower, defaults in TOWER_DEFAULTS.items()}


def settings(config, source):
    """build_model settings (heads, activation) from a read_config; errors for what we cannot compute."""
    text, vision = config["text_config"], config["vision_config"]
    problems = []
    if text["hidden_act"] != vision["hidden_act"] or text["hidden_act"] not in ACTIVATIONS:
        problems.append(f"hidden_act {text['hidden_act']} (text) / {vision['hidden_act']} (image)")
    for tower, cfg in (("text", text), ("image", vision)):
        if cfg["layer_norm_eps"] != 1e-5:
            problems.append(f"layer_norm_eps {cfg['layer_norm_eps']} ({tower})")
    if text["eos_token_id"] not in CLIP_EOT_IDS:
        problems.append(f"eos_token_id {text['eos_token_id']} (another tokenizer than CLIP's)")
    if problems:
        raise ValueError(
            f"{source}: our CLIP computes QuickGELU or GELU in both towers, LayerNorm eps 1e-5 and CLIP's "
            f"tokenizer; this config has {', '.join(problems)}"
        )
    return dict(
        activation=text["hidden_act"],
        vision_heads=vision["num_attention_heads"],
        transformer_heads=text["num_attention_heads"],
    )


def image_mean_std(preprocessor_path):
    if preprocessor_path is None:
        return None
    config = read_json(preprocessor_path, "Hugging Face preprocessor config")
    if "image_mean" not in config or "image_std" not in config:
        return None
    return tuple(config["image_mean"]), tuple(config["image_std"])


def to_openai_layout(state_dict):
    """(OpenAI-layout state dict, keys that could not be mapped) of a CLIPModel state dict."""
    out, qkv, unmapped = {}, {}, []
    for key, value in state_dict.items():
        if key in IGNORED_KEYS:
            continue
        if key in SINGLE_KEYS:
            out[SINGLE_KEYS[key]] = value
            continue
        if key in TRANSPOSED_KEYS:
            out[TRANSPOSED_KEYS[key]] = value.t().contiguous()  # nn.Linear [D, W] -> projection [W, D]
            continue
        match = BLOCK_KEY.match(key)
        part = match and match.group(3)
        if match and part in QKV:
            block = f"{TOWERS[match.group(1)]}.{match.group(2)}"
            qkv.setdefault((block, match.group(4)), [None] * 3)[QKV[part]] = value
        elif match and part in BLOCK_PARTS:
            out[f"{TOWERS[match.group(1)]}.{match.group(2)}.{BLOCK_PARTS[part]}.{match.group(4)}"] = value
        else:
            unmapped.append(key)
    for (block, kind), parts in qkv.items():
        if any(p is None for p in parts):
            unmapped.append(f"{block} (q, k and v projections incomplete)")
            continue
        out[f"{block}.attn.in_proj_{kind}"] = torch.cat(parts, dim=0)  # [3W, W] / [3W]
    if "logit_scale" in out and out["logit_scale"].numel() == 1:
        out["logit_scale"] = out["logit_scale"].reshape([])
    return out, unmapped
