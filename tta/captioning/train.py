"""Training the mapper on cached CLIP features (OPT frozen), as the reference's train.py.

ClipCap trains on the normalised image embedding of each caption's image, CapDec on the caption's
own normalised text embedding plus Gaussian noise (variance 0.016), re-normalised. Targets: the
caption's OPT tokens (BOS first, no end token, as the reference), truncated to
min(mean + 10 std, max) of the caption lengths; CE averaged over the batch's real tokens. AdamW
(eps 1e-6, weight decay 0), linear warm-up then linear decay to 0 per update; the reference steps
its scheduler before each update, so update i (from 1) runs at lr * min(i / warmup, ...): kept.
"""
import math

import torch
import torch.nn.functional as F

from engine.checkpoint.rng import capture_rng_state, restore_rng_state

NOISE_VARIANCE = 0.016


def capdec_noise(x, variance, generator=None):
    """x [B, D] (normalised) + N(0, variance) noise, re-normalised; x itself for variance <= 0."""
    if variance <= 0:
        return x
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return F.normalize(x + math.sqrt(variance) * noise, dim=-1)


def warmup_then_linear(warmup, total):
    """The factor of update i (i from 1): i / warmup, then (total - i) / (total - warmup), >= 0."""
    def factor(i):
        return i / max(1, warmup) if i < warmup else max(0.0, (total - i) / max(1, total - warmup))
    return factor


class CaptionTokens:
    """Every caption's token ids, and the reference's training length."""

    def __init__(self, tokenizer, captions):
        self.ids = [tokenizer(c).input_ids for c in captions]
        self.pad_id = tokenizer.pad_token_id
        lengths = torch.tensor([len(i) for i in self.ids], dtype=torch.float)
        std = float(lengths.std()) if len(self.ids) > 1 else 0.0
        self.max_len = min(int(float(lengths.mean()) + 10 * std), int(lengths.max()))

    def batch(self, index):
        """tokens [B, max_len] (right-padded with the pad id), mask [B, max_len]."""
        tokens = torch.full((len(index), self.max_len), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(index), self.max_len), dtype=torch.long)
        for row, i in enumerate(index):
            ids = self.ids[int(i)][: self.max_len]
            tokens[row, : len(ids)] = torch.tensor(ids)
            mask[row, : len(ids)] = 1
        return tokens, mask


class MapperTraining:
    """One training run of the mapper: ``run_epoch()`` per epoch, in the reference's order of batches.

    Its position (``epoch`` epochs done, ``batch`` batches of the next one done) and everything the
    rest of the run depends on are in ``checkpoint()``; ``restore(checkpoint)`` continues from there
    exactly (same batches, same CapDec noise, same updates, same losses).
    """

    def __init__(self, captioner, tokenizer, features, use_image_embedding=False, noise_variance=NOISE_VARIANCE,
                 lr=2e-5, batch_size=40, epochs=10, warmup_steps=5000, seed=0):
        self.captioner = captioner
        self.device = captioner.clip_project.linear.weight.device
        source = features.image[features.image_index] if use_image_embedding else features.text  # [N_cap, D]
        self.prefixes = F.normalize(source.float(), dim=-1)
        self.noise_variance = 0.0 if use_image_embedding else noise_variance
        self.tokens = CaptionTokens(tokenizer, features.captions)
        self.batch_size = batch_size
        self.steps_per_epoch = len(self.prefixes) // batch_size  # drop_last, as the reference
        if self.steps_per_epoch == 0:
            raise ValueError(f"{len(self.prefixes)} captions make no batch of {batch_size}: lower --bs")
        self.generator = torch.Generator().manual_seed(seed)  # the shuffling and the CapDec noise
        self.optimizer = torch.optim.AdamW(captioner.clip_project.parameters(), lr=lr, eps=1e-6, weight_decay=0.0)
        factor = warmup_then_linear(warmup_steps, epochs * self.steps_per_epoch)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: factor(s + 1))
        self.epoch, self.batch = 0, 0
        self.order = None  # the running epoch's caption order [N_cap]
        self.loss_sum = 0.0  # of the running epoch's batches so far
        self.losses = []  # mean batch loss of every finished epoch

    def loss(self, prefixes, tokens, mask):
        ce = self.captioner.token_ce(self.captioner.prefix(prefixes), tokens, mask)  # [B, T]
        return ce.sum() / mask.sum()

    def step(self, index):
        """One update on the captions ``index`` [B]; returns its loss."""
        prefixes = capdec_noise(self.prefixes[index], self.noise_variance, self.generator).to(self.device)
        tokens, mask = (t.to(self.device) for t in self.tokens.batch(index))
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss(prefixes, tokens, mask)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        return float(loss.detach())

    def run_epoch(self, after_batch=None):
        """One epoch over shuffled captions (its rest, after a mid-epoch restore); returns the mean batch loss.

        ``after_batch()`` runs after every update but the epoch's last (mid-epoch checkpoints)."""
        self.captioner.train()
        if self.batch == 0:
            self.order = torch.randperm(len(self.prefixes), generator=self.generator)
            self.loss_sum = 0.0
        while self.batch < self.steps_per_epoch:
            self.loss_sum += self.step(self.order[self.batch * self.batch_size : (self.batch + 1) * self.batch_size])
            self.batch += 1
            if after_batch is not None and self.batch < self.steps_per_epoch:
                after_batch()
        self.captioner.eval()
        self.losses.append(self.loss_sum / self.steps_per_epoch)
        self.epoch, self.batch, self.order = self.epoch + 1, 0, None
        return self.losses[-1]

    def checkpoint(self):
        """The run's state as tensors and plain values (loads with ``weights_only``)."""
        return {"state_dict": self.captioner.mapper_state(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "epoch": self.epoch, "batch": self.batch,
                "order": self.order, "loss_sum": self.loss_sum, "losses": list(self.losses),
                "generator": self.generator.get_state(), "rng_state": capture_rng_state()}

    def restore(self, checkpoint):
        """Continue from ``checkpoint()``'s state (the mapper weights are loaded by the caller)."""
        if checkpoint["batch"] and len(checkpoint["order"]) != len(self.prefixes):
            raise ValueError(f"the checkpoint's epoch runs over {len(checkpoint['order'])} captions, the features "
                             f"have {len(self.prefixes)}: it belongs to other --data")
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        self.epoch, self.batch = int(checkpoint["epoch"]), int(checkpoint["batch"])
        self.order, self.loss_sum = checkpoint["order"], float(checkpoint["loss_sum"])
        self.losses = [float(x) for x in checkpoint["losses"]]
        self.generator.set_state(checkpoint["generator"])
        restore_rng_state(checkpoint["rng_state"])
