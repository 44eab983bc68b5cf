"""TextRefinerMixin: TextRefiner added to a PromptTrainer host through the host's hooks.

``class TextRefinerX(TextRefinerMixin, X)``: the mixin goes first, so its hooks wrap the host's.
What it adds:
- build_extra_modules: the feature alignment ``mid_image_trans`` on the host's model, then the
  local cache (the reference's construction order, so seeded initial values are the reference's),
  registered as "Memory" (same optimizer and scheduler, stepped once) and checkpointed as
  ``Memory/`` (``extractor.weight`` plus the cache as ``memory_item``);
- fp16 heads as the reference (alignment convs and the cache in half), the alignment trainable;
- evaluation: ``class_text() = refine(host class text)``, once per evaluation;
- training: ``refined_ce(image, label, text)``, the CoOp variant's objective (CE of the host's
  image features against the refined text + semantic / BALANCE + DISTILL * regularisation),
  for a host adapter's ``losses`` to return or to add its own terms to.
A host adapter (trainers/textrefiner/<host>_host.py) says how its loss is combined and, if not the image encoder's
output width, the alignment widths (``alignment_dims``).
"""
import torch

from engine import distributed
from engine.metrics import compute_accuracy

from ..clip_backbone import half_like_reference
from ..shared.alignment import FeatureAlignment
from .cache import LocalCache
from .refiner import TextRefinerHead, check_refiner_cfg


class TextRefinerMixin:
    def check_cfg(self, cfg):
        super().check_cfg(cfg)
        check_refiner_cfg(cfg.TRAINER.TF)

    # ----- what an adapter may override ---------------------------------------------------
    def alignment_dims(self):
        """(token width in, cache width out) of the alignment: the image encoder's output width twice."""
        dim = self.model.image_encoder.output_dim
        return dim, dim

    def hyper_parameters(self):
        """The adapter's loss weights, printed as the reference prints them."""
        tf = self.cfg.TRAINER.TF
        return {"balance": tf.BALANCE, "distill": tf.DISTILL}

    # ----- building ----------------------------------------------------------------------
    def build_extra_modules(self):
        super().build_extra_modules()
        tf = self.cfg.TRAINER.TF
        in_dim, out_dim = self.alignment_dims()
        self.model.mid_image_trans = FeatureAlignment(in_dim, out_dim)
        print("Building memory")
        self.memory = LocalCache(dim=out_dim, size=tf.MEMORY_SIZE, alpha=tf.ALPHA, momentum=tf.MOMENTUM)
        self.head = TextRefinerHead(
            self.model.mid_image_trans, self.memory, tf.TOPK, tuple(tf.LOCAL_FEATURES), gather=distributed.all_gather_cat
        )
        for name, value in self.hyper_parameters().items():
            print(f"check hyper-parameter {name}: {value}")
        print(f"check hyper-parameter alpha: {self.memory.alpha}")
        print(f"check hyper-parameter momentum: {self.memory.momentum}")

    def to_reference_half(self):
        super().to_reference_half()
        half_like_reference(self.model.mid_image_trans)
        self.memory.half()  # extractor and cache in fp16, as the reference

    def is_trainable(self, name):
        return super().is_trainable(name) or name.startswith("mid_image_trans.")

    def trainable_modules(self):
        return [*super().trainable_modules(), self.memory]

    def extra_trainable(self):
        return [*super().extra_trainable(), ("memory", self.memory)]

    def register_models(self):
        # one optimizer / scheduler under two names, as the reference; the engine steps each once
        super().register_models()
        self.register_model("Memory", self.memory, self.optim, self.sched)

    # ----- training ------------------------------------------------------------------------
    def encode_image_local(self, image):
        """Global features [B, D], last-block tokens [B, L, D] and CLS attention [B, L-1] of the host."""
        return self.model.encode_image(image, return_local=True)

    def refined_ce(self, image, label, text):
        """The CoOp variant on the host's normalised class text [C, D]: (loss, logged parts,
        logits [B, C] against the refined text, normalised image features [B, D])."""
        global_feat, tokens, cls_attn = self.encode_image_local(image)
        image_features = global_feat / global_feat.norm(dim=-1, keepdim=True)
        step = self.head.forward_train(text, tokens, cls_attn)
        tf = self.cfg.TRAINER.TF
        logits, loss, parts = self.head.coop_losses(
            step, image_features, text, label, self.model.logit_scale.exp(), tf.BALANCE, tf.DISTILL
        )
        return loss, {**parts, "acc": compute_accuracy(logits, label)[0]}, logits, image_features

    # ----- evaluation ------------------------------------------------------------------------
    @torch.no_grad()
    def class_text(self):
        return self.head.refine(super().class_text())  # [C, D], image independent: once per evaluation

    # ----- checkpoints ----------------------------------------------------------------------
    def checkpoint_state(self, name):
        if name == "Memory":
            return self.memory.checkpoint_state()
        return super().checkpoint_state(name)

    def restore_state(self, name, checkpoint, strict=True):
        if name == "Memory":
            self.memory.restore_checkpoint(checkpoint)
            return
        super().restore_state(name, checkpoint, strict)
