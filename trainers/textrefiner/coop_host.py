"""TextRefiner on CoOp (TRAINER.TF.HOST "CoOp"): the refiner around CoOp's text features.

Per training step (the reference's order): image encoder with local tokens -> host text
features t -> alignment Z of the last block's tokens -> local features -> cache read and
aggregation t~ -> cache write with Z -> losses. At evaluation t~ does not depend on the image,
so it is computed once per evaluation and the image encoder runs its plain (fused) path.

Checkpoints keep the reference's layout: ``prompt_learner/`` (keys ``prompt_learner.*`` and
``mid_image_trans.*``; the frozen CLIP is not stored) and ``Memory/`` (``extractor.weight`` plus
the cache as ``memory_item``).
"""

from engine import TrainerX
from engine.metrics import compute_accuracy
from engine.optim import build_lr_scheduler, build_optimizer
from engine.utils import load_pretrained_weights

from ..clip_backbone import half_like_reference, load_clip, make_scaler, optimizer_step, resolve_precision
from ..coop import CustomCLIP
from .alignment import FeatureAlignment
from .cache import LocalCache
from .refiner import TextRefinerHead, check_refiner_cfg

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


class TextRefinerCoOp(TrainerX):
    def check_cfg(self, cfg):
        tf = cfg.TRAINER.TF
        if cfg.TRAINER.COOP.PREC not in ("fp16", "fp32", "amp"):
            raise ValueError(f'TRAINER.COOP.PREC must be fp16, fp32 or amp, got "{cfg.TRAINER.COOP.PREC}"')
        check_refiner_cfg(tf)

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
            half_like_reference(self.model.mid_image_trans)
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
        self.scaler = make_scaler(self.prec, self.device)
        self._refined_text = None

    # ----- training ------------------------------------------------------------------------
    def refiner_losses(self, image, label):
        """The total loss, the logits against the refined text and the loss's logged parts for one batch."""
        global_feat, tokens, cls_attn = self.model.encode_image_local(image)  # [B, D], [B, L, D], [B, L-1]
        image_features = global_feat / global_feat.norm(dim=-1, keepdim=True)
        text_features = self.model.text_features()  # [C, D], normalised
        step = self.head.forward_train(text_features, tokens, cls_attn)
        logits, loss, parts = self.head.coop_losses(
            step, image_features, text_features, label, self.model.logit_scale.exp(), self.balance, self.distill
        )
        return loss, logits, parts

    def forward_backward(self, batch):
        image, label = self.parse_batch_train(batch)
        loss, logits, parts = optimizer_step(self, lambda: self.refiner_losses(image, label))
        loss_summary = {"loss": loss.item(), **{k: float(v) for k, v in parts.items()}}
        loss_summary["acc"] = compute_accuracy(logits, label)[0].item()
        if (self.batch_idx + 1) == self.num_batches:
            self.sched.step()  # once per epoch; both registered names share it
        return loss_summary

    # ----- evaluation --------------------------------------------------------------------
    def before_evaluation(self, split):
        text_features = self.model.text_features()
        self._refined_text = self.head.refine(text_features)  # [C, D], image independent

    def after_evaluation(self, split):
        self._refined_text = None

    def model_inference(self, image):
        image_features = self.model.image_encoder(image.type(self.model.dtype))
        image_features = image_features / image_features.norm(dim=-1, keepdim=True)
        return self.model.logit_scale.exp() * image_features @ self._refined_text.t()

    # ----- checkpoints ----------------------------------------------------------------------
    def checkpoint_state(self, name):
        if name == "Memory":
            return self.memory.checkpoint_state()
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
            self.memory.restore_checkpoint(checkpoint)
            return
        # reference checkpoints hold the whole CustomCLIP: keep only the refiner's own keys
        state = {k: v for k, v in checkpoint["state_dict"].items() if k.startswith(SAVED_PREFIXES)}
        super().restore_state(name, {**checkpoint, "state_dict": state}, strict=False)
