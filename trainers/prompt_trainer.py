"""PromptTrainer: the recipe every CLIP prompt learner here shares, as a few hooks.

build_model: precision -> CLIP -> the prompted model (``build_custom_clip``) -> extra modules
(``build_extra_modules``, e.g. TextRefiner's) -> fp16 heads as the reference leaves them ->
freeze all but ``is_trainable`` -> initial weights -> optimizer over ``trainable_modules`` ->
register every model of ``saved_models()`` -> GradScaler for PREC amp.
Training: ``forward_backward`` hands ``train_inputs(batch)`` and ``losses`` to the engine's
step (engine/step.py: micro-batches, autocast, guard, backward, update; the engine also steps
the LR once per epoch). Evaluation: ``class_text()`` once per evaluation, then
``logit_scale * image_features(image) @ text^T`` per batch.
Checkpoints: ``saved_models()`` is the one declaration, per registered model (its checkpoint
folder), of the module and its CheckpointKeys (engine/checkpoint/keys.py: the state-dict keys
saved, left out and rebuilt, and the extra fields beside them, e.g. the TextRefiner cache).
"""
import torch

from engine import TrainerX, distributed
from engine.optim import build_lr_scheduler, build_optimizer
from engine.step import PRECISIONS, Precision
from engine.checkpoint import CheckpointKeys, load_pretrained_weights

from .clip_backbone import backbone_weights_files, check_class_names, load_clip, require_vit


class PromptTrainer(TrainerX):
    prompt_key = None  # TRAINER.<prompt_key> holds the method's keys (PREC among them)
    log_trainable = True  # print "Parameters to be updated" after freezing
    # the optimizer gets every parameter of the trainable modules, frozen ones included (they never
    # get a gradient), as references that pass the whole model do: same updates, same optimizer state
    optimize_all_parameters = False
    vit_only = False  # deep prompts inside the image encoder's transformer blocks (IVLP, MaPLe, ...)
    frozen_image_encoder = False  # no learned parameter enters the test-time image features (CoOp, TaskRes, ...)

    @property
    def prompt_cfg(self):
        return self.cfg.TRAINER[self.prompt_key]

    def check_cfg(self, cfg):
        prec = cfg.TRAINER[self.prompt_key].PREC
        if prec not in PRECISIONS:
            raise ValueError(f'TRAINER.{self.prompt_key}.PREC must be fp16, fp32 or amp, got "{prec}"')
        if cfg.TRAIN.GRAD_ACCUM < 1:
            raise ValueError(f"TRAIN.GRAD_ACCUM must be 1 (no accumulation) or more, got {cfg.TRAIN.GRAD_ACCUM}")

    @classmethod
    def weights_files(cls, cfg):
        return backbone_weights_files(cfg)

    # ----- building ----------------------------------------------------------------------
    def build_model(self):
        cfg = self.cfg
        self.set_precision(Precision.resolve(self.prompt_cfg.PREC, self.device))
        check_class_names(self.dm.dataset)
        clip_model = self.load_clip_model()
        if self.vit_only:
            require_vit(clip_model, cfg)
        print("Building custom CLIP")
        self.model = self.build_custom_clip(clip_model)
        self.build_extra_modules()
        if self.precision.name == "fp16":
            self.to_reference_half()
        print("Turning off gradients in both the image and the text encoder")
        for name, param in self.model.named_parameters():
            param.requires_grad_(self.is_trainable(name))
        if self.log_trainable:
            enabled = self.trainable_names()
            print(f"Parameters to be updated: {enabled}")
            print(f"Parameters count: {len(enabled)}")
        if cfg.MODEL.INIT_WEIGHTS:
            load_pretrained_weights(self.init_weights_module(), cfg.MODEL.INIT_WEIGHTS)
        self.model.to(self.device)
        for module in self.trainable_modules():
            module.to(self.device)
        self.optim = build_optimizer(self.optimizer_params(), cfg.OPTIM)
        self.sched = build_lr_scheduler(self.optim, cfg.OPTIM)
        for name, (module, keys) in self.saved_models().items():
            self.register_model(name, module, self.optim, self.sched, keys=keys)
        self._eval_text = None
        self.distributed_losses = self.wrap_for_ranks()

    def wrap_for_ranks(self):
        """Under torchrun: BatchNorm over the global batch and DistributedDataParallel over the
        trainable modules computing ``losses`` (None in a single process)."""
        if not distributed.is_distributed():
            return None
        for module in self.trainable_modules():
            distributed.convert_batchnorm(module)
        ranks = distributed.world_size()
        print(f"DistributedDataParallel over {ranks} processes: {self.cfg.DATALOADER.TRAIN_X.BATCH_SIZE // ranks} images per process and step")
        return distributed.wrap_losses(self.trainable_modules(), self.losses, self.device)

    def load_clip_model(self):
        return load_clip(self.cfg, self.precision.name, self.device)

    def build_custom_clip(self, clip_model):
        raise NotImplementedError("A prompt trainer builds its prompted CLIP in build_custom_clip()")

    def build_extra_modules(self):
        """Modules added next to the model before freezing and the optimizer (e.g. TextRefiner's)."""

    def to_reference_half(self):
        """PREC fp16: cast the trainer's own heads as the reference leaves them (CLIP is fp16 already)."""

    def is_trainable(self, name):
        """Whether parameter ``name`` of ``self.model`` is learned."""
        raise NotImplementedError

    def trainable_modules(self):
        """The modules whose parameters that require grad the optimizer updates."""
        return [self.model]

    def trainable_names(self):
        names = [n for n, p in self.model.named_parameters() if p.requires_grad]
        for attr, module in self.extra_trainable():
            names += [f"{attr}.{n}" for n, p in module.named_parameters() if p.requires_grad]
        return names

    def extra_trainable(self):
        """(attribute name, module) of trainable modules outside ``self.model``."""
        return []

    def optimizer_params(self):
        every = self.optimize_all_parameters
        return [p for module in self.trainable_modules() for p in module.parameters() if every or p.requires_grad]

    def init_weights_module(self):
        """Where MODEL.INIT_WEIGHTS loads: the first saved model's module."""
        return next(iter(self.saved_models().values()))[0]

    # ----- training ------------------------------------------------------------------------
    def train_inputs(self, batch):
        """The arguments of ``losses`` (computed outside autocast)."""
        return self.parse_batch_train(batch)

    def losses(self, *inputs):
        """(total loss, logged parts {name: value}) of one batch."""
        raise NotImplementedError

    def forward_backward(self, batch):
        """One update on ``batch`` through the engine's step, as TRAIN.GRAD_ACCUM micro-batches whose
        gradients add up (each micro-batch's loss weighted by its share of the batch, so the update
        equals the whole batch's up to float summation order). Under torchrun the losses run through
        DistributedDataParallel and the logged values are the ranks' mean."""
        losses = self.distributed_losses or self.losses
        optims = self._unique(self._optims, None)
        return self.train_step.run(self.train_inputs(batch), losses, optims, self.cfg.TRAIN.GRAD_ACCUM, self.device)

    def leave_process_group(self):
        """Release the DistributedDataParallel wrapper (it holds the process group) before the
        group is destroyed; losses computed afterwards run unwrapped."""
        self.distributed_losses = None

    # ----- evaluation ------------------------------------------------------------------------
    def class_text(self):
        """The class text features [C, D] evaluation compares images with (image independent)."""
        return self.model.text_features()

    def eval_text(self, split):
        """The class text of evaluation split ``split`` (all classes unless a protocol says otherwise)."""
        return self.class_text()

    def image_features(self, image):
        """Normalised image features [B, D] for evaluation."""
        features = self.model.encode_image(image)
        return features / features.norm(dim=-1, keepdim=True)

    def before_evaluation(self, split):
        with torch.no_grad():
            self._eval_text = self.eval_text(split)  # once per evaluation: it does not depend on the image

    def after_evaluation(self, split):
        self._eval_text = None

    def frozen_image_tower(self):
        return self.model.image_encoder if self.frozen_image_encoder else None

    def model_inference(self, image):
        return self.logits_from_features(self.image_features(image))

    def logits_from_features(self, features):
        """Logits [B, C] of normalised image features [B, D] against this evaluation's class text."""
        return self.model.logit_scale.exp() * features @ self._eval_text.t().to(features.dtype)  # [B, C]

    # ----- checkpoints ----------------------------------------------------------------------
    def saved_models(self):
        """{registered name (the checkpoint folder): (module, CheckpointKeys)}, in registration order:
        every model the trainer checkpoints, each with the one declaration of what its files hold.
        All of them share the trainer's optimizer and scheduler."""
        return {"prompt_learner": (self.model, CheckpointKeys())}
