"""OpenCLIP checkpoints (the open_clip model zoo) onto our CLIP.

An OpenCLIP CLIP with its native towers (ViT-*, RN*) stores OpenAI's key layout: ``visual.conv1``,
``visual.class_embedding``, ``visual.transformer.resblocks.N.attn.in_proj_weight`` / ``ln_1`` /
``mlp.c_fc`` / ``mlp.c_proj``, ``visual.ln_post``, ``visual.proj``, ``token_embedding``,
``positional_embedding``, ``transformer.resblocks...``, ``ln_final``, ``text_projection``,
``logit_scale``. What the keys do not say comes from the model config that goes with the file
(``open_clip_config.json``, or the architecture's name):
- the MLP activation: nn.GELU unless the model is a "-quickgelu" one or the pretrained tag was
  trained with QuickGELU (OpenAI's, MetaCLIP, DFN, the LAION-400M ViT-B-32, ...);
- the heads: width // head_width (64 but for ViT-H-14 80, ViT-g-14 88, ViT-bigG-14 104);
- the MLP width (bigG: 8192 = 4.9231 x 1664) is read off the weights.
Config options that change the computation without leaving keys (text pooling other than the EOT
argmax, no causal mask, average pooling, no ln_pre, LayerNorm after pooling, other tokenizers, ...)
are refused with one error naming them.

Names: ``openclip:ARCH/TAG`` (a model of the zoo, PRETRAINED below; fetched from the Hugging Face
hub into its cache), ``openclip:hf-hub:ORG/REPO`` (any hub repository with open_clip_config.json),
or ``openclip:ARCH`` with MODEL.BACKBONE.PATH a local file or folder.
"""
import os

from .hub import hub_file, optional_hub_file
from .weight_files import file_beside, first_file, read_json

PREFIX = "openclip:"
HUB_PREFIX = "hf-hub:"
CONFIG_FILE = "open_clip_config.json"
WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.safetensors", "open_clip_pytorch_model.bin")
QUICKGELU_SUFFIX = "-quickgelu"
INCEPTION_MEAN_STD = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))

# (architecture, tag) -> (hub repository, trained with QuickGELU, (mean, std) if not OpenAI's); from
# open_clip's pretrained table. Any other hub model: openclip:hf-hub:ORG/REPO.
PRETRAINED = {
    ("RN50", "openai"): ("timm/resnet50_clip.openai", True, None),
    ("RN50", "yfcc15m"): ("timm/resnet50_clip.yfcc15m", True, None),
    ("RN50", "cc12m"): ("timm/resnet50_clip.cc12m", True, None),
    ("RN101", "openai"): ("timm/resnet101_clip.openai", True, None),
    ("ViT-B-32", "openai"): ("timm/vit_base_patch32_clip_224.openai", True, None),
    ("ViT-B-32", "laion400m_e32"): ("timm/vit_base_patch32_clip_224.laion400m_e32", True, None),
    ("ViT-B-32", "laion2b_s34b_b79k"): ("laion/CLIP-ViT-B-32-laion2B-s34B-b79K", False, None),
    ("ViT-B-32", "datacomp_xl_s13b_b90k"): ("laion/CLIP-ViT-B-32-DataComp.XL-s13B-b90K", False, None),
    ("ViT-B-32", "metaclip_400m"): ("timm/vit_base_patch32_clip_224.metaclip_400m", True, None),
    ("ViT-B-16", "openai"): ("timm/vit_base_patch16_clip_224.openai", True, None),
    ("ViT-B-16", "laion400m_e32"): ("timm/vit_base_patch16_clip_224.laion400m_e32", False, None),
    ("ViT-B-16", "laion2b_s34b_b88k"): ("laion/CLIP-ViT-B-16-laion2B-s34B-b88K", False, None),
    ("ViT-B-16", "datacomp_xl_s13b_b90k"): ("laion/CLIP-ViT-B-16-DataComp.XL-s13B-b90K", False, None),
    ("ViT-B-16", "dfn2b"): ("apple/DFN2B-CLIP-ViT-B-16", True, None),
    ("ViT-B-16", "metaclip_400m"): ("timm/vit_base_patch16_clip_224.metaclip_400m", True, None),
    ("ViT-L-14", "openai"): ("timm/vit_large_patch14_clip_224.openai", True, None),
    ("ViT-L-14", "laion400m_e32"): ("timm/vit_large_patch14_clip_224.laion400m_e32", False, None),
    ("ViT-L-14", "laion2b_s32b_b82k"): ("laion/CLIP-ViT-L-14-laion2B-s32B-b82K", False, INCEPTION_MEAN_STD),
    ("ViT-L-14", "datacomp_xl_s13b_b90k"): ("laion/CLIP-ViT-L-14-DataComp.XL-s13B-b90K", False, None),
    ("ViT-L-14", "dfn2b"): ("apple/DFN2B-CLIP-ViT-L-14", True, None),
    ("ViT-L-14", "metaclip_400m"): ("timm/vit_large_patch14_clip_224.metaclip_400m", True, None),
    ("ViT-L-14-336", "openai"): ("timm/vit_large_patch14_clip_336.openai", True, None),
    ("ViT-H-14", "laion2b_s32b_b79k"): ("laion/CLIP-ViT-H-14-laion2B-s32B-b79K", False, None),
    ("ViT-H-14", "dfn5b"): ("apple/DFN5B-CLIP-ViT-H-14", True, None),
    ("ViT-g-14", "laion2b_s34b_b88k"): ("laion/CLIP-ViT-g-14-laion2B-s34B-b88K", False, None),
    ("ViT-bigG-14", "laion2b_s39b_b160k"): ("laion/CLIP-ViT-bigG-14-laion2B-39B-b160k", False, None),
}
# image-tower head widths of the zoo's model configs that are not 64 (text heads are width // 64)
VISION_HEAD_WIDTHS = {"ViT-H-14": 80, "ViT-g-14": 88, "ViT-bigG-14": 104}

OPENAI_TOKENIZER = dict(vocab_size=49408, context_length=77, eot_id=49407)
# config keys that change the computation without leaving a key in the weights: key -> its one safe value
SAFE_TOWER_KEYS = dict(
    ls_init_value=None, block_type=None, qk_norm=False, scaled_cosine_attn=False, scale_heads=False,
    scale_attn_inner=False, scale_attn=False, scale_fc=False, final_ln_after_pool=False, act_kwargs=None,
)
SAFE_VISION_KEYS = dict(
    SAFE_TOWER_KEYS, timm_model_name=None, attentional_pool=False, pool_type="tok", no_ln_pre=False,
)
SAFE_TEXT_KEYS = dict(
    SAFE_TOWER_KEYS, text_arch="clip", hf_model_name=None, hf_tokenizer_name=None, tokenizer_type="",
    no_causal_mask=False, embed_cls=False, proj_type="linear", proj_bias=False,
    vocab_size=OPENAI_TOKENIZER["vocab_size"], context_length=OPENAI_TOKENIZER["context_length"],
)


def split_spec(spec):
    """"ViT-B-16/laion2b_s34b_b88k" -> ("ViT-B-16", "laion2b_s34b_b88k"); "ViT-B-16" -> ("ViT-B-16", "")."""
    arch, _, tag = spec.partition("/")
    return arch.strip(), tag.strip()


def base_arch(arch):
    return arch[: -len(QUICKGELU_SUFFIX)] if arch.endswith(QUICKGELU_SUFFIX) else arch


def pretrained_entry(spec):
    """The PRETRAINED entry of "ARCH/TAG" (with or without -quickgelu), or None."""
    if spec.startswith(HUB_PREFIX):
        return None
    arch, tag = split_spec(spec)
    return PRETRAINED.get((base_arch(arch), tag))


def hub_repo(spec):
    """(repository, PRETRAINED entry or None) of a hub-backed name; one error for an unknown tag."""
    if spec.startswith(HUB_PREFIX):
        return spec[len(HUB_PREFIX):].strip("/"), None
    entry = pretrained_entry(spec)
    if entry is None:
        known = ", ".join(f"{a}/{t}" for a, t in PRETRAINED)
        raise ValueError(
            f'Unknown OpenCLIP model "{PREFIX}{spec}". Known: {known}. Any other OpenCLIP model on the Hugging '
            f"Face hub: {PREFIX}{HUB_PREFIX}ORG/REPO; a local file: {PREFIX}ARCH with MODEL.BACKBONE.PATH."
        )
    return entry[0], entry


def fetch(spec):
    """(weights file, config file or None) of a hub-backed name, downloaded into the hub cache."""
    repo, entry = hub_repo(spec)
    config = optional_hub_file(repo, CONFIG_FILE)
    if config is None and entry is None:
        raise FileNotFoundError(f'"{repo}" has no {CONFIG_FILE}: it is not an OpenCLIP model repository')
    return hub_file(repo, WEIGHT_FILES, "OpenCLIP weights"), config


def weights_in_folder(folder):
    return first_file(folder, WEIGHT_FILES)


def config_beside(path):
    """The open_clip_config.json in the folder of a weights file (or in the folder itself), or None."""
    return file_beside(path, CONFIG_FILE)


def is_openclip_file(path):
    """A file (or folder) that open_clip wrote: its file name or its config says so."""
    return os.path.basename(path) in WEIGHT_FILES or config_beside(path) is not None


def model_config(config_path):
    """(model_cfg, (mean, std) or None) of an open_clip_config.json (or a bare model config)."""
    config = read_json(config_path, "OpenCLIP config")
    model_cfg = config.get("model_cfg", config)
    if "vision_cfg" not in model_cfg or "text_cfg" not in model_cfg:
        raise ValueError(f'"{config_path}" holds no OpenCLIP model config (model_cfg with vision_cfg and text_cfg)')
    preprocess = config.get("preprocess_cfg", {})
    mean_std = (tuple(preprocess["mean"]), tuple(preprocess["std"])) if "mean" in preprocess else None
    return model_cfg, mean_std


def unsupported_options(model_cfg):
    """The config options our CLIP cannot compute, as "text_cfg.pool_type=last" strings."""
    found = []
    for tower, safe in (("vision_cfg", SAFE_VISION_KEYS), ("text_cfg", SAFE_TEXT_KEYS)):
        cfg = model_cfg.get(tower, {})
        for key, value in safe.items():
            if key in cfg and cfg[key] != value and not (value is None and not cfg[key]):
                found.append(f"{tower}.{key}={cfg[key]}")
        eps = (cfg.get("norm_kwargs") or {}).get("eps", 1e-5)
        if eps != 1e-5:
            found.append(f"{tower}.norm_kwargs.eps={eps}")
    text = model_cfg.get("text_cfg", {})
    pool = text.get("pool_type", "argmax")
    if pool not in ("argmax", "eos") or (pool == "eos" and text.get("eos_id") != OPENAI_TOKENIZER["eot_id"]):
        found.append(f"text_cfg.pool_type={pool}")  # "eos" at CLIP's EOT id is the argmax pooling
    for key in ("init_logit_bias", "multimodal_cfg"):  # SigLIP's sigmoid bias, CoCa's decoder
        if key in model_cfg:
            found.append(key)
    return found


def settings(spec, model_cfg, state_dict):
    """build_model settings: the activation and the heads of both towers."""
    arch = "" if spec.startswith(HUB_PREFIX) else split_spec(spec)[0]
    entry = pretrained_entry(spec)
    quick = arch.endswith(QUICKGELU_SUFFIX) or bool(entry and entry[1]) or bool((model_cfg or {}).get("quick_gelu"))
    resnet = "visual.proj" not in state_dict
    # the ViT's patch embedding, or the ResNet's first stage (its stem is half as wide)
    vision_width = state_dict["visual.layer1.0.conv1.weight" if resnet else "visual.conv1.weight"].shape[0]
    if model_cfg is not None:
        vision = model_cfg["vision_cfg"]
        head_width = vision.get("head_width", 64)
        text_heads = model_cfg["text_cfg"].get("heads", 8)  # open_clip's CLIPTextCfg default
    else:
        head_width = next((w for name, w in VISION_HEAD_WIDTHS.items() if base_arch(arch).startswith(name)), 64)
        text_heads = state_dict["ln_final.weight"].shape[0] // 64
    return dict(
        activation="quick_gelu" if quick else "gelu",
        vision_heads=(vision_width * 32 if resnet else vision_width) // head_width,
        transformer_heads=text_heads,
    )


def pretrained_mean_std(spec):
    entry = pretrained_entry(spec)
    return entry[2] if entry else None


def to_openai_layout(state_dict):
    """OpenCLIP's saved keys as OpenAI's: no DDP "module." prefix, the custom-text "text." prefix of a
    native text tower removed, the causal-mask buffer of old versions dropped, logit_scale a scalar."""
    if state_dict and all(k.startswith("module.") for k in state_dict):
        state_dict = {k[len("module."):]: v for k, v in state_dict.items()}
    if "text.token_embedding.weight" in state_dict:
        state_dict = {k[len("text."):] if k.startswith("text.") else k: v for k, v in state_dict.items()}
    state_dict = {k: v for k, v in state_dict.items() if k.split(".")[-1] != "attn_mask"}
    scale = state_dict.get("logit_scale")
    if scale is not None and scale.numel() == 1:
        state_dict["logit_scale"] = scale.reshape([])
    return state_dict
