"""The adapted student ("policy"): a CoOp prompt over frozen CLIP, or CLIP's whole image encoder.

Both expose the same small interface to the adaptation loop:
  start_dataset(classnames)  build what is fixed per data set; returns the class prompts [C, 77]
  set_views(views)           the views [N, 3, H, W] of the current test image
  logits(idx)                logits [len(idx), C] of views ``idx`` in the current state
  forward_backward(idx, select, loss_fn, scale)  loss_fn(logits of views idx) and its backward;
                             idx None (the first update): the views are chosen first by
                             select(logits [N, C] of all views), and the chosen idx is returned
  predict()                  logits [1, C] of view 0 (the original image)
  reset() / after_image()    episodic reset (a tensor copy) / the optional momentum update
"""
import os

import torch
from torch import nn

import clip
from engine.config import CfgNode
from engine.utils import load_checkpoint
from trainers.coop import PromptLearner, TextEncoder

from tta.core.episodic import ResetPoint
from tta.core.rewards import TEXT_CHUNK, unit

BN_MODES = ("train", "eval")


def coop_checkpoint_file(path):
    """The CoOp checkpoint file ``--load`` names: the file itself (prompt_learner/model.pth.tar-N, or the
    released coop_16shots_nctx4_... file), or for a train.py output folder the file named in
    prompt_learner/checkpoint."""
    if not os.path.isdir(path):
        return path
    folder = os.path.join(path, "prompt_learner") if os.path.isdir(os.path.join(path, "prompt_learner")) else path
    pointer = os.path.join(folder, "checkpoint")
    if not os.path.isfile(pointer):
        raise FileNotFoundError(
            f'--load "{path}" is a folder without prompt_learner/checkpoint: name the CoOp checkpoint file itself'
        )
    with open(pointer) as f:
        return os.path.join(folder, f.readline().strip())


def load_coop_context(path, n_ctx, ctx_dim):
    """The generic context [n_ctx, d] of a CoOp checkpoint (ours or the reference's; see coop_checkpoint_file)."""
    path = coop_checkpoint_file(path)
    checkpoint = load_checkpoint(path, map_location="cpu")
    state = checkpoint.get("state_dict", checkpoint)
    ctx = state.get("ctx") if isinstance(state, dict) else None
    if ctx is None:
        raise ValueError(f'--load "{path}" holds no "ctx": it is not a CoOp prompt_learner checkpoint')
    if tuple(ctx.shape) != (n_ctx, ctx_dim):
        raise ValueError(
            f'--load "{path}" holds a context of shape {tuple(ctx.shape)}, but the student needs ({n_ctx}, {ctx_dim}): '
            "use a generic-context CoOp checkpoint (CSC False) with as many tokens as --ctx_init / --n_ctx and "
            "the same CLIP backbone"
        )
    print(f"Use pre-trained soft prompt (CoOp) as initialization {path}")
    return ctx.float()


class PromptPolicy:
    """CoOp's prompt learner (4 tokens "a photo of a", or a CoOp context) over a frozen CLIP.

    The image encoder is frozen, so the normalised features of all views are computed once
    per image; each step only re-runs the text encoder on the current context.
    ``class_chunk`` > 0 bounds the memory of 1000-class sets: the text features are
    computed without a graph, the loss gradient w.r.t. them is taken, then the text
    encoder is re-run ``class_chunk`` classes at a time to push that gradient to the
    context (the same gradient, one extra text forward from the second step on).
    """

    def __init__(self, clip_model, n_ctx, ctx_init, init_ctx=None, class_chunk=0):
        self.clip_model = clip_model.requires_grad_(False)
        self.text_encoder = TextEncoder(clip_model)
        self.logit_scale = clip_model.logit_scale.detach().exp()
        self.prompt_cfg = CfgNode(dict(N_CTX=n_ctx, CTX_INIT=ctx_init or "", CSC=False, CLASS_TOKEN_POSITION="end"))
        self.init_ctx = init_ctx
        self.class_chunk = class_chunk
        self.learner = None
        self.image_features = None

    def start_dataset(self, classnames):
        size = self.clip_model.visual.input_resolution
        self.learner = PromptLearner(self.prompt_cfg, (size, size), classnames, self.clip_model)
        if self.init_ctx is not None:
            with torch.no_grad():
                self.learner.ctx.copy_(self.init_ctx)
        self.initial_ctx = self.learner.ctx.detach().clone()
        with torch.no_grad():
            self.initial_text = self.text_features()  # for selection and zero-shot: once per data set
        self.adapted = False
        return self.learner.tokenized_prompts

    def trainable_parameters(self):
        return [self.learner.ctx]

    @torch.no_grad()
    def reset(self):
        self.learner.ctx.copy_(self.initial_ctx)
        self.adapted = False

    def after_image(self):
        pass

    @torch.no_grad()
    def set_views(self, views):
        self.image_features = unit(self.clip_model.visual(views.type(self.clip_model.dtype)))  # [N, D]

    def text_features(self, rows=slice(None)):
        """Normalised text features [C, D] (of classes ``rows``) from the current context."""
        learner = self.learner
        prefix = learner.shared_prefix()  # [1 + n_ctx, width]
        features = self.text_encoder.forward_shared_prefix(
            prefix, learner.token_suffix[rows], learner.tokenized_prompts[rows]
        )
        return unit(features)

    def logits(self, idx):
        text = self.text_features() if self.adapted else self.initial_text
        return self.logit_scale * self.image_features[idx] @ text.t()

    def forward_backward(self, idx, select, loss_fn, scale):
        if idx is None:
            with torch.no_grad():
                idx = select(self.logits(slice(None)))
        first_step, self.adapted = not self.adapted, True
        n_cls = self.learner.n_cls
        if self.class_chunk <= 0 or n_cls <= self.class_chunk:
            scale(loss_fn(self.logits(idx))).backward()
            return idx
        with torch.no_grad():  # at the first step the context is the initial one
            text = self.initial_text.clone() if first_step else self.text_features()
        text.requires_grad_(True)
        loss = loss_fn(self.logit_scale * self.image_features[idx] @ text.t())
        scale(loss).backward()  # gradient w.r.t. the text features only
        for start in range(0, n_cls, self.class_chunk):
            rows = slice(start, start + self.class_chunk)
            features = self.text_features(rows)
            features.backward(text.grad[rows].to(features.dtype))  # autocast: fp16 features, fp32 grad
        return idx

    @torch.no_grad()
    def predict(self):
        return self.logits(slice(0, 1))


class VisualPolicy:
    """CLIP's whole image encoder adapted against fixed class text features (RLCF's image-encoder run).

    The class prompts are ``f"{prefix} {name}."`` with the prefix taken verbatim (the
    reference passes "a_photo_of_a" here, underscores included). The reset point (tta/core/episodic.py) is a
    saved copy of the encoder's state (weights and BatchNorm statistics); with momentum on,
    an EMA of the adapted state is kept across images and every ``update_freq`` images the
    reset point becomes (1 - update_w) * original + update_w * EMA.

    ``bn_mode`` "train" (the reference's): the encoder adapts in train mode, so a ResNet's
    BatchNorm normalises with the statistics of the views in each forward and updates its
    running statistics (used by the prediction; the next image's reset restores them); the
    views are then selected from the first update's own forward over all views, as there.
    "eval": BatchNorm uses its running statistics throughout. A ViT has no BatchNorm: both
    modes are the same there.
    """

    def __init__(self, clip_model, prefix, momentum_update=False, momentum=0.9998, update_freq=64, update_w=1.0,
                 bn_mode="train"):
        if bn_mode not in BN_MODES:
            raise ValueError(f'bn_mode must be one of {BN_MODES}, got "{bn_mode}"')
        self.clip_model = clip_model.requires_grad_(False)
        self.visual = clip_model.visual.requires_grad_(True)
        self.logit_scale = clip_model.logit_scale.detach().exp()
        self.prefix = prefix
        self.momentum_update = momentum_update
        self.momentum = momentum
        self.update_freq = update_freq
        self.update_w = update_w
        with torch.no_grad():
            self.original = {k: v.clone() for k, v in self.visual.state_dict().items()}
        self.train_mode = bn_mode == "train"
        # batch statistics make a view's logits depend on the other views in its forward
        self.batch_statistics = self.train_mode and any(
            isinstance(m, nn.modules.batchnorm._BatchNorm) for m in self.visual.modules())
        self.class_features = None

    def start_dataset(self, classnames):
        prompts = [f"{self.prefix} {name.replace('_', ' ')}." for name in classnames]
        tokenized = clip.tokenize(prompts).to(self.logit_scale.device)
        with torch.no_grad():
            text = torch.cat([self.clip_model.encode_text(t) for t in tokenized.split(TEXT_CHUNK)])
            self.class_features = unit(text)  # [C, D]
            self.state = self.visual.state_dict()  # live views of the weights
            for k, v in self.state.items():
                v.copy_(self.original[k])
        self.episodic = ResetPoint(self.state, self.momentum_update, self.momentum, self.update_freq, self.update_w)
        return tokenized

    def trainable_parameters(self):
        return self.visual.parameters()

    def reset(self):
        self.episodic.reset()

    def after_image(self):
        self.episodic.after_episode()

    def set_views(self, views):
        self.views = views

    def logits(self, idx):
        features = unit(self.visual(self.views[idx].type(self.clip_model.dtype)))
        return self.logit_scale * features @ self.class_features.t()

    def forward_backward(self, idx, select, loss_fn, scale):
        self.visual.train(self.train_mode)
        try:
            if idx is None and self.batch_statistics:  # the reference: select within the first update's forward
                logits = self.logits(slice(None))  # [N, C], BatchNorm over all N views
                idx = select(logits.detach())
                logits = logits[idx]
            else:
                if idx is None:  # without batch statistics the same logits, without a graph over all views
                    with torch.no_grad():
                        idx = select(self.logits(slice(None)))
                logits = self.logits(idx)
            scale(loss_fn(logits)).backward()
        finally:
            self.visual.eval()
        return idx

    @torch.no_grad()
    def predict(self):
        return self.logits(slice(0, 1))
