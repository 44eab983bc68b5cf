"""The TextRefiner plug-in: what every host adapter attaches to its host, as plain functions.

A host adapter (``<host>_host.py``) is ``class TextRefinerX(X)``: it subclasses the host trainer
only, holds the plug-in's two parts as ``self.head`` (a TextRefinerHead: the recipe) and
``self.memory`` (its LocalCache), and overrides the PromptTrainer hooks that TextRefiner touches,
each in a line or two that calls one of these functions:
- ``check_cfg``: ``check_refiner_cfg(cfg.TRAINER.TF)`` after the host's checks;
- ``build_extra_modules``: ``attach_refiner`` after the host's extra modules (the alignment
  ``mid_image_trans`` on the host's model, then the cache: the reference's construction order,
  so seeded initial values are the reference's);
- ``to_reference_half``: ``refiner_to_half`` (alignment and cache in fp16, as the reference);
- ``is_trainable`` / ``trainable_modules`` / ``extra_trainable``: the alignment
  (``is_refiner_parameter``) and the cache are learned with the host's prompts;
- ``saved_models``: the cache saved as ``MEMORY`` ("Memory", ``memory_checkpoint``) with the host's
  optimizer and scheduler (one optimizer under two names, as the reference; the engine steps each
  once); its files hold ``extractor.weight`` and the cache as the extra field ``memory_item``;
- ``class_text``: ``self.head.refine(host class text)``, once per evaluation;
- ``losses``: the host's loss composition, usually ``refined_ce`` on the host's text plus the
  host's own terms.
What the host supplies: a model with ``encode_image(image, return_local=True)`` -> (global
features [B, D], last-block tokens [B, L, d], CLS attention [B, L-1]), ``logit_scale``,
``image_encoder.output_dim``, and its class text (``text_features()`` or the adapter's own).
"""
from engine import distributed
from engine.checkpoint import CheckpointKeys, ExtraState
from engine.metrics import compute_accuracy

from ..clip_backbone import half_like_reference
from ..shared.alignment import FeatureAlignment
from .cache import LocalCache
from .refiner import TextRefinerHead

MEMORY = "Memory"  # the cache's registered name: its checkpoint folder

# CoOp-family hosts (CoOp, CoCoOp, KgCoOp) save the whole model under prompt_learner/, as the
# reference's whole CustomCLIP: keep the refiner's own keys, rebuild the class-name embeddings
COOP_FAMILY_KEYS = CheckpointKeys(
    ("prompt_learner.", "mid_image_trans."),
    rebuilt=("prompt_learner.token_prefix", "prompt_learner.token_suffix", "prompt_learner.tokenized_prompts"),
)


def memory_checkpoint(memory):
    """{MEMORY: (the cache, its CheckpointKeys)}: ``Memory/`` files hold the extractor's state dict and
    the cache as ``memory_item``, the reference's names (its files load into ours and back)."""
    cache = ExtraState(
        "memory_item", memory.get_cache, memory.set_cache,
        missing="The Memory checkpoint has no memory_item (the cache); was it written by another trainer?",
    )
    return {MEMORY: (memory, CheckpointKeys(extra=(cache,)))}


def coop_weights(tf):
    """The CoOp variant's loss weights, printed as the reference prints them."""
    return {"balance": tf.BALANCE, "distill": tf.DISTILL}


def attach_refiner(model, tf, in_dim, out_dim, hyper_parameters):
    """Attach the alignment (``in_dim`` -> ``out_dim``) to ``model`` as ``mid_image_trans``, build
    the cache (``out_dim`` wide) and return the TextRefinerHead over both; print the weights."""
    model.mid_image_trans = FeatureAlignment(in_dim, out_dim)
    print("Building memory")
    memory = LocalCache(dim=out_dim, size=tf.MEMORY_SIZE, alpha=tf.ALPHA, momentum=tf.MOMENTUM)
    gather = distributed.all_gather_cat
    head = TextRefinerHead(model.mid_image_trans, memory, tf.TOPK, tuple(tf.LOCAL_FEATURES), gather=gather)
    for name, value in hyper_parameters.items():
        print(f"check hyper-parameter {name}: {value}")
    print(f"check hyper-parameter alpha: {memory.alpha}")
    print(f"check hyper-parameter momentum: {memory.momentum}")
    return head


def refiner_to_half(head):
    """PREC fp16: the alignment's convs and the cache (extractor and cache) in half, as the reference."""
    half_like_reference(head.alignment)
    head.cache.half()


def is_refiner_parameter(name):
    """Whether parameter ``name`` of the host's model belongs to the refiner (the alignment)."""
    return name.startswith("mid_image_trans.")


def refined_ce(head, model, image, label, text, tf):
    """The CoOp variant on the host's normalised class text [C, D]: (loss, logged parts,
    logits [B, C] against the refined text, normalised image features [B, D]).

    CE(image, t~) + L_sem / TF.BALANCE + TF.DISTILL * L_reg, the image encoder run once with its
    local tokens.
    """
    global_feat, tokens, cls_attn = model.encode_image(image, return_local=True)
    image_features = global_feat / global_feat.norm(dim=-1, keepdim=True)
    step = head.forward_train(text, tokens, cls_attn)
    scale = model.logit_scale.exp()
    logits, loss, parts = head.coop_losses(step, image_features, text, label, scale, tf.BALANCE, tf.DISTILL)
    return loss, {**parts, "acc": compute_accuracy(logits, label)[0]}, logits, image_features
