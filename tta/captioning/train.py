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
    """One training run of the mapper: ``run_epoch()`` per epoch, in the reference's order of batches."""

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
        self.generator = torch.Generator().manual_seed(seed)
        self.optimizer = torch.optim.AdamW(captioner.clip_project.parameters(), lr=lr, eps=1e-6, weight_decay=0.0)
        factor = warmup_then_linear(warmup_steps, epochs * self.steps_per_epoch)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: factor(s + 1))

    def loss(self, prefixes, tokens, mask):
        ce = self.captioner.token_ce(self.captioner.prefix(prefixes), tokens, mask)  # [B, T]
        return ce.sum() / mask.sum()

    def run_epoch(self):
        """One epoch over shuffled captions; returns the mean batch loss."""
        self.captioner.train()
        order = torch.randperm(len(self.prefixes), generator=self.generator)
        total = 0.0
        for step in range(self.steps_per_epoch):
            index = order[step * self.batch_size : (step + 1) * self.batch_size]
            prefixes = capdec_noise(self.prefixes[index], self.noise_variance, self.generator).to(self.device)
            tokens, mask = (t.to(self.device) for t in self.tokens.batch(index))
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.loss(prefixes, tokens, mask)
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            total += float(loss.detach())
        self.captioner.eval()
        return total / self.steps_per_epoch
