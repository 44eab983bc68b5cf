"""One error for weights the loader cannot map onto CLIP: what was found, and what loads."""

SUPPORTED = (
    "Supported: OpenAI's CLIP releases (ViT-B/16, ViT-L/14, RN50, ... or a copy in their layout), OpenCLIP "
    "CLIP models with its own towers (openclip:ARCH/TAG, e.g. openclip:ViT-B-16/laion2b_s34b_b88k, or "
    "openclip:hf-hub:ORG/REPO) and Hugging Face CLIPModel checkpoints (hf:ORG/REPO, e.g. "
    "hf:openai/clip-vit-base-patch16, or a local folder). See docs/OTHER_CLIPS.md."
)
SIGLIP = (
    "SigLIP does not fit the prompt learners: its text tower is bidirectional and pools the last position of a "
    "fixed-length SentencePiece sequence (no start token for the context to follow, no EOT to pool, no causal "
    "prefix), and its image tower has no class token (an attention-pool head), which every method's global "
    "feature and TextRefiner's CLS attention read."
)
# key pattern -> what it shows (the first matching entries are named in the error)
FAMILIES = (
    ("visual.trunk.", "a timm image tower (visual.trunk.*: OpenCLIP's EVA, SigLIP, ConvNeXt, ViTamin ... models)"),
    ("text.transformer.", "a Hugging Face text tower (text.transformer.*: OpenCLIP's XLM-R / RoBERTa / mT5 models)"),
    ("logit_bias", "a sigmoid-loss logit_bias (SigLIP)"),
    ("vision_model.head.", "an attention-pool image head (vision_model.head.*: SigLIP)"),
    ("visual.attn_pool", "an attention-pool image head (visual.attn_pool*: CoCa)"),
    ("text_decoder.", "a caption decoder (text_decoder.*: CoCa)"),
    ("visual.blocks.", "EVA-CLIP's own image tower (visual.blocks.*)"),
    (".ls_1.", "layer scale (ls_1 / ls_2)"),
    (".ln_attn.", "extra attention LayerNorms (ln_attn: scale_attn)"),
    (".ln_inner.", "inner attention LayerNorms (ln_inner: scale_attn_inner)"),
    (".attn.ln_q.", "q/k LayerNorms (qk_norm)"),
    (".attn.head_scale", "per-head scales (scale_heads)"),
    (".attn.logit_scale", "scaled cosine attention"),
    ("text_projection.bias", "a biased text projection (proj_bias)"),
)


def family_note(model_type):
    return SIGLIP + " " + SUPPORTED if model_type.startswith("siglip") else SUPPORTED


def found_families(keys):
    found = []
    for pattern, what in FAMILIES:
        if any(pattern in k for k in keys) and what not in found:
            found.append(what)
    return found


def unsupported_weights(source, keys, detail=""):
    """The ValueError for weights at ``source`` whose ``keys`` do not map onto CLIP."""
    keys = sorted(keys)
    found = found_families(keys)
    what = "; ".join(found) if found else f"{len(keys)} keys such as {', '.join(keys[:6])}"
    siglip = " " + SIGLIP if any("SigLIP" in f for f in found) else ""
    detail = f" ({detail})" if detail else ""
    return ValueError(f"Cannot map the weights of {source} onto CLIP: found {what}{detail}.{siglip} {SUPPORTED}")
