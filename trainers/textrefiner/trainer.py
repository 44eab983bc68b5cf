"""Trainer "TextRefiner": the refiner plugged into a host prompt learner (TRAINER.TF.HOST).

Per training step (the reference's order): image encoder with local tokens -> host text
features t -> alignment Z of the last block's tokens -> local features -> cache read and
aggregation t~ -> cache write with Z -> losses. At evaluation t~ does not depend on the image,
so it is computed once per evaluation and the image encoder runs its plain (fused) path.

Checkpoints keep the reference's layout: ``prompt_learner/`` (keys ``prompt_learner.*`` and
``mid_image_trans.*``; the frozen CLIP is not stored) and ``Memory/`` (``extractor.weight`` plus
the cache as ``memory_item``).
"""
import torch
import torch.nn as nn

from engine import TRAINER_REGISTRY, TrainerX
from engine.metrics import compute_accuracy
from engine.optim import build_lr_scheduler, build_optimizer
from engine.utils import load_pretrained_weights

from ..clip_backbone import autocast, load_clip, resolve_precision
from ..coop import CustomCLIP
from .alignment import FeatureAlignment
from .cache import LocalCache
from .refiner import TextRefinerHead

HOSTS = ("CoOp",)
# the state-dict prefixes of the "prompt_learner" model that belong in a checkpoint
SAVED_PREFIXES = ("prompt_learner.", "mid_image_trans.")


class RefinedCLIP(CustomCLIP):
    """CoOp's CustomCLIP plus the feature alignment module (the reference's mid_image_trans)."""

    def __init__(self, prompt_cfg, input_size, classnames, clip_model):
        super().__init__(prompt_cfg, input_size, classnames, clip_model)
        dim = clip_model.visual.output_dim
        self.mid_image_trans = FeatureAlignment(dim, dim)

    def encode_image_local(self, image):
        """Global feature, last-block tokens and CLS attention of the ViT image encoder."""
        return self.image_encoder(image.type(self.dtype), return_local=True)


def _half_like_reference(module):
    """fp16 convs/linears, fp32 BatchNorm: what the reference's convert_weights leaves."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.half()


@TRAINER_REGISTRY.register()
class TextRefiner(TrainerX):
    def check_cfg(self, cfg):
        tf = cfg.TRAINER.TF
        if tf.HOST not in HOSTS:
            raise ValueError(f'TRAINER.TF.HOST "{tf.HOST}" is not supported; available hosts: {", ".join(HOSTS)}')
        if cfg.TRAINER.COOP.PREC not in ("fp16", "fp32", "amp"):
            raise ValueError(f'TRAINER.COOP.PREC must be fp16, fp32 or amp, got "{cfg.TRAINER.COOP.PREC}"')
        if tf.LAYER != -1:
            raise ValueError(f"TRAINER.TF.LAYER {tf.LAYER} is not supported: the refiner reads the last block (-1)")

    def build_model(self):
        cfg, tf = self.cfg, self.cfg.TRAINER.TF
        # like the reference, the prompt learner reads TRAINER.COOP (TRAINER.TF.N_CTX etc. are unused)
        self.prec = resolve_precision(cfg.TRAINER.COOP.PREC, self.device)
        clip_model = load_clip(cfg, self.prec, self.device)

        print("Building custom CLIP")
        self.model = RefinedCLIP(cfg.TRAINER.COOP, cfg.INPUT.SIZE, self.dm.dataset.classnames, clip_model)
        print("Building memory")
        self.memory = LocalCache(
            dim=clip_model.visual.output_dim, size=tf.MEMORY_SIZE, alpha=tf.ALPHA, momentum=tf.MOMENTUM
        )
        if self.prec == "fp16":
            _half_like_reference(self.model.mid_image_trans)
            self.memory.half()
        self.balance, self.distill = tf.BALANCE, tf.DISTILL
        self.head = TextRefinerHead(self.model.mid_image_trans, self.memory, tf.TOPK, tuple(tf.LOCAL_FEATURES))

        print("Turning off gradients in both the image and the text encoder")
        for name, param in self.model.named_parameters():
            param.requires_grad_(name.startswith(SAVED_PREFIXES))
        print(f"check hyper-parameter balance: {self.balance}")
        print(f"check hyper-parameter distill: {self.distill}")
        print(f"check hyper-parameter alpha: {self.memory.alpha}")
        print(f"check hyper-parameter momentum: {self.memory.momentum}")
        if cfg.MODEL.INIT_WEIGHTS:
            load_pretrained_weights(self.model.prompt_learner, cfg.MODEL.INIT_WEIGHTS)
        self.model.to(self.device)
        self.memory.to(self.device)

        trainable = [p for m in (self.model, self.memory) for p in m.parameters() if p.requires_grad]
        self.optim = build_optimizer(trainable, cfg.OPTIM)
        self.sched = build_lr_scheduler(self.optim, cfg.OPTIM)
        # one optimizer/scheduler under two names, as the reference; stepped directly (never update_lr)
        self.register_model("prompt_learner", self.model, self.optim, self.sched)
        self.register_model("Memory", self.memory, self.optim, self.sched)
        enabled = [n for n, p in self.model.named_parameters() if p.requires_grad]
        enabled += [f"memory.{n}" for n, p in self.memory.named_parameters() if p.requires_grad]
        print(f"Parameters to be updated: {enabled}")
        print(f"Parameters count: {len(enabled)}")
        self.scaler = torch.amp.GradScaler(self.device.type) if self.prec == "amp" else None
        self._refined_text = None

    # ----- training ------------------------------------------------------------------------
    def refiner_losses(self, image, label):
        """Logits against the refined text, the total loss and its logged parts for one batch."""
        global_feat, tokens, cls_attn = self.model.encode_image_local(image)  # [B, D], [B, L, D], [B, L-1]
        image_features = global_feat / global_feat.norm(dim=-1, keepdim=True)
        text_features = self.model.text_features()  # [C, D], normalised
        step = self.head.forward_train(text_features, tokens, cls_attn)
        return self.head.coop_losses(
            step, image_features, text_features, label, self.model.logit_scale.exp(), self.balance, self.distill
        )

    def forward_backward(self, batch):
        image, label = self.parse_batch_train(batch)
        if self.prec == "amp":
            with autocast(self.device, enabled=True):
                logits, loss, parts = self.refiner_losses(image, label)
            self.optim.zero_grad()
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optim)
            self.scaler.update()
        else:
            logits, loss, parts = self.refiner_losses(image, label)
            self.optim.zero_grad()
            self.model_backward(loss)
            self.optim.step()

        loss_summary = {"loss": loss.item(), **{k: float(v) for k, v in parts.items()}}
        loss_summary["acc"] = compute_accuracy(logits, label)[0].item()
        if (self.batch_idx + 1) == self.num_batches:
            self.sched.step()  # once per epoch; both registered names share it
        return loss_summary

    # ----- evaluation --------------------------------------------------------------------
    def before_evaluation(self):
        text_features = self.model.text_features()
        self._refined_text = self.head.refine(text_features)  # [C, D], image independent

    def after_evaluation(self):
        self._refined_text = None

    def model_inference(self, image):
        image_features = self.model.image_encoder(image.type(self.model.dtype))
        image_features = image_features / image_features.norm(dim=-1, keepdim=True)
        return self.model.logit_scale.exp() * image_features @ self._refined_text.t()

    # ----- checkpoints ----------------------------------------------------------------------
    def checkpoint_state(self, name):
        if name == "Memory":
            return {"state_dict": self.memory.state_dict(), "memory_item": self.memory.get_cache()}
        state = self.model.state_dict()
        return {"state_dict": {k: v for k, v in state.items() if k.startswith(SAVED_PREFIXES)}}

    def ignored_keys_on_load(self, name):
        if name == "Memory":
            return ()
        # rebuilt from the current class names / unused at test time, as the reference drops them
        keys = ["prompt_learner.token_prefix", "prompt_learner.token_suffix", "prompt_learner.tokenized_prompts"]
        return tuple(keys + [k for k in self.model.state_dict() if k.startswith("mid_image_trans.")])

    def restore_state(self, name, checkpoint, strict=True):
        if name == "Memory":
            if "memory_item" not in checkpoint:
                raise KeyError(
                    "The Memory checkpoint has no memory_item (the cache); was it written by another trainer?"
                )
            self.memory.load_state_dict(checkpoint["state_dict"])
            self.memory.set_cache(checkpoint["memory_item"])
            return
        # reference checkpoints hold the whole CustomCLIP: keep only the refiner's own keys
        state = {k: v for k, v in checkpoint["state_dict"].items() if k.startswith(SAVED_PREFIXES)}
        super().restore_state(name, {**checkpoint, "state_dict": state}, strict=False)
