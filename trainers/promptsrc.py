"""PromptSRC (Khattak et al., ICCV 2023): IVLP prompts trained with self-regularising
constraints towards the frozen CLIP, and Gaussian prompt aggregation (GPA) over the epochs.

PromptKD's teacher is a PromptSRC model (ViT-L/14): train it with
``scripts/promptsrc/base2new_train.sh`` and the ``vit_l14_c2_ep20_batch8_4+4ctx`` config.

Per step: CE(z, y) + TEXT_LOSS_WEIGHT * L1(text, frozen text) + IMAGE_LOSS_WEIGHT * L1(image,
frozen image) + KL(frozen logits || z) / (B * C), where the frozen text is the mean of the 60
ImageNet templates' CLIP features and the frozen image is the prompt-free CLIP image feature.
Checkpoints: ``VLPromptLearner/model.pth.tar-N`` holding the prompts (the frozen CLIP is not stored).
"""
import torch
import torch.nn.functional as F

import clip
from clip.model import convert_weights
from engine import TRAINER_REGISTRY, TrainerX
from engine.optim import build_lr_scheduler, build_optimizer
from engine.utils import load_pretrained_weights, trainable_state_dict

from .clip_backbone import PRECISIONS, load_clip, make_scaler, optimizer_step, resolve_precision
from .gpa import PromptAverager, gaussian_epoch_weights
from .imagenet_templates import IMAGENET_TEMPLATES
from .ivlp import IVLPCLIP, is_prompt

PROMPT_BUFFERS = ("prompt_learner.token_prefix", "prompt_learner.token_suffix")


@torch.no_grad()
def template_text_features(clip_model, classnames, templates=IMAGENET_TEMPLATES):
    """Mean over the templates of CLIP's (unnormalised) text features, normalised: [C, D]."""
    names = [name.replace("_", " ") for name in classnames]
    device = clip_model.token_embedding.weight.device
    total = 0
    for template in templates:
        tokens = clip.tokenize([template.replace("{}", name) for name in names]).to(device)
        total = total + clip_model.encode_text(tokens).float()  # [C, D]
    mean = total / len(templates)
    return mean / mean.norm(dim=-1, keepdim=True)


def kl_to_frozen(logits, frozen_logits):
    """KL(softmax(frozen) || softmax(logits)) summed, divided by the logits' element count."""
    kl = F.kl_div(F.log_softmax(logits, dim=1), F.log_softmax(frozen_logits, dim=1), reduction="sum", log_target=True)
    return kl / logits.numel()


@TRAINER_REGISTRY.register()
class PromptSRC(TrainerX):
    def check_cfg(self, cfg):
        src = cfg.TRAINER.PROMPTSRC
        if src.PREC not in PRECISIONS:
            raise ValueError(f'TRAINER.PROMPTSRC.PREC must be fp16, fp32 or amp, got "{src.PREC}"')
        if src.PROMPT_DEPTH_TEXT < 1:
            raise ValueError(
                "TRAINER.PROMPTSRC.PROMPT_DEPTH_TEXT must be >= 1 in independent V-L prompting "
                "(the learned text context is the first text prompt)"
            )

    def build_model(self):
        cfg, src = self.cfg, self.cfg.TRAINER.PROMPTSRC
        classnames = self.dm.dataset.classnames
        self.prec = resolve_precision(src.PREC, self.device)
        # fp32 first: the frozen text references come from the fp32 CLIP, as in the reference
        clip_model = load_clip(cfg, "fp32", self.device)
        print(f"Computing the frozen text features of {len(IMAGENET_TEMPLATES)} templates x {len(classnames)} classes")
        self.fixed_embeddings = template_text_features(clip_model, classnames)  # [C, D], normalised
        if self.prec == "fp16":
            convert_weights(clip_model)

        print("Building custom CLIP")
        self.model = IVLPCLIP(src, cfg.INPUT.SIZE, classnames, clip_model)
        print("Turning off gradients in both the image and the text encoder")
        for name, param in self.model.named_parameters():
            param.requires_grad_(is_prompt(name))
        enabled = [name for name, param in self.model.named_parameters() if param.requires_grad]
        print(f"Parameters to be updated: {enabled}")
        print(f"Parameters count: {len(enabled)}")
        if cfg.MODEL.INIT_WEIGHTS:
            load_pretrained_weights(self.model, cfg.MODEL.INIT_WEIGHTS)
        self.model.to(self.device)

        self.optim = build_optimizer(self.model, cfg.OPTIM)
        self.sched = build_lr_scheduler(self.optim, cfg.OPTIM)
        self.register_model("VLPromptLearner", self.model, self.optim, self.sched)
        self.scaler = make_scaler(self.prec, self.device)
        self.gpa = PromptAverager(gaussian_epoch_weights(src.GPA_MEAN, src.GPA_STD, cfg.OPTIM.MAX_EPOCH))

    def losses(self, image, label):
        """The total loss and the prompted logits [B, C] of one batch."""
        src = self.cfg.TRAINER.PROMPTSRC
        model = self.model
        scale = model.logit_scale.exp()
        text = model.text_features()  # [C, D], normalised
        image_features = model.image_encoder(image.type(model.dtype))
        image_features = image_features / image_features.norm(dim=-1, keepdim=True)  # [B, D]
        logits = scale * image_features @ text.t()
        with torch.no_grad():  # the frozen CLIP: its image encoder without prompts
            frozen_image = model.image_encoder(image.type(model.dtype), use_prompts=False)
            frozen_image = frozen_image / frozen_image.norm(dim=-1, keepdim=True)
            fixed = self.fixed_embeddings.to(frozen_image.dtype)
            frozen_logits = scale * frozen_image @ fixed.t()
        loss_text = F.l1_loss(text.float(), self.fixed_embeddings) * src.TEXT_LOSS_WEIGHT
        loss_image = F.l1_loss(image_features.float(), frozen_image.float()) * src.IMAGE_LOSS_WEIGHT
        loss = F.cross_entropy(logits, label) + kl_to_frozen(logits, frozen_logits) + loss_text + loss_image
        return loss, logits

    def forward_backward(self, batch):
        image, label = self.parse_batch_train(batch)
        loss, _ = optimizer_step(self, lambda: self.losses(image, label))
        if (self.batch_idx + 1) == self.num_batches:
            self.update_lr()
        return {"loss": loss.item()}

    # ----- GPA ----------------------------------------------------------------------------
    def prompts(self):
        return {name: p for name, p in self.model.named_parameters() if p.requires_grad}

    def after_epoch(self):
        self.gpa.add(self.epoch, self.prompts())
        if self.epoch + 1 == self.max_epoch:
            print("Using GPA model for final inference...")
            with torch.no_grad():
                for name, value in self.gpa.average().items():
                    param = self.model.get_parameter(name)
                    param.copy_(value.to(param.dtype))
        super().after_epoch()  # the last checkpoint then holds the GPA prompts

    # ----- checkpoints ----------------------------------------------------------------------
    def checkpoint_state(self, name):
        state = {k: v for k, v in trainable_state_dict(self.model).items() if k not in PROMPT_BUFFERS}
        return {"state_dict": state, "gpa": self.gpa.state_dict()}

    def ignored_keys_on_load(self, name):
        return PROMPT_BUFFERS

    def restore_state(self, name, checkpoint, strict=True):
        state = {k: v for k, v in checkpoint["state_dict"].items() if k not in PROMPT_BUFFERS}
        super().restore_state(name, {**checkpoint, "state_dict": state}, strict=False)
        if "gpa" in checkpoint:
            self.gpa.load_state_dict(checkpoint["gpa"])

    def before_evaluation(self, split):
        self.model.freeze_text()

    def after_evaluation(self, split):
        self.model.unfreeze_text()
