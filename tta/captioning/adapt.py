"""RLCF test-time adaptation of the captioner's mapper, one image at a time.

Per image, ``steps`` times: K candidates by beam search (num_beams = K, all K kept) -> rewards
2.5 * max(cos, 0) under the frozen reward CLIP minus their mean over K -> one AdamW step on
mean_k(reward_k * mean token CE of candidate k). Then the caption by beam search 5, and the mapper
and the optimizer go back to their state before the image.

The reference's loss ignores token id 0 while OPT pads with id 1, so its means count the pads of
the shorter candidates; here the pads are masked (each candidate's CE is the mean over its own
tokens, BOS included as in the reference).
"""
import copy

import torch

import clip
from tta.captioning.generate import generate


def pad_right(tokenizer, captions, device):
    """Token ids [K, T] (BOS + caption, right-padded with the tokenizer's pad id) and their mask [K, T]."""
    ids = [tokenizer(c).input_ids for c in captions]
    length = max(len(i) for i in ids)
    tokens = torch.full((len(ids), length), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(ids), length), dtype=torch.long)
    for row, i in enumerate(ids):
        tokens[row, : len(i)] = torch.tensor(i)
        mask[row, : len(i)] = 1
    return tokens.to(device), mask.to(device)


def caption_ce(captioner, tokenizer, clip_embedding, captions):
    """Mean token CE [K] of each caption given the prefix of ``clip_embedding`` [1, D] (one batched forward)."""
    tokens, mask = pad_right(tokenizer, captions, clip_embedding.device)
    prefix = captioner.prefix(clip_embedding).expand(len(captions), -1, -1)  # [K, L, W]
    ce = captioner.token_ce(prefix, tokens, mask)  # [K, T], 0 at pads
    return ce.sum(dim=1) / mask.sum(dim=1)


def reward_loss(captioner, tokenizer, clip_embedding, captions, rewards):
    """mean_k(reward_k * mean token CE of caption k); ``rewards`` [K] carry no graph."""
    return (rewards * caption_ce(captioner, tokenizer, clip_embedding, captions)).mean()


class CaptionAdapter:
    """Episodic RLCF on the mapper: ``caption(clip_embedding, image)`` adapts, captions, and resets."""

    def __init__(self, captioner, tokenizer, reward, lr, steps=4, sample_k=6, weight_decay=0.0, final_beams=5,
                 max_new_tokens=50, nucleus=False):
        self.captioner, self.tokenizer, self.reward = captioner, tokenizer, reward
        self.steps, self.sample_k, self.final_beams = steps, sample_k, final_beams
        self.max_new_tokens, self.nucleus = max_new_tokens, nucleus
        # AdamW's eps as the reference's (1e-6); only the mapper is handed to it
        self.optimizer = torch.optim.AdamW(captioner.clip_project.parameters(), lr=lr, eps=1e-6, weight_decay=weight_decay)
        self.initial_mapper = copy.deepcopy(captioner.clip_project.state_dict())
        self.initial_optimizer = copy.deepcopy(self.optimizer.state_dict())

    def candidates(self, clip_embedding):
        prefix = self.captioner.prefix(clip_embedding)
        return generate(self.captioner, self.tokenizer, prefix, num_beams=self.sample_k, num_captions=self.sample_k,
                        max_new_tokens=self.max_new_tokens, nucleus=self.nucleus)

    @torch.no_grad()
    def rewards(self, captions):
        """CLIPScores of the K captions for the image set on the reward, minus their mean [K]."""
        device = next(self.reward.models[0].parameters()).device
        self.reward.set_class_features(clip.tokenize(captions, truncate=True).to(device))
        return self.reward.rewards(torch.arange(len(captions), device=device))

    def step(self, clip_embedding, captions, rewards):
        """One AdamW step of the mapper on fixed candidates; returns the loss."""
        self.optimizer.zero_grad(set_to_none=True)
        loss = reward_loss(self.captioner, self.tokenizer, clip_embedding, captions, rewards.to(clip_embedding.device))
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def caption(self, clip_embedding, image):
        """clip_embedding [1, D] (as the captioner takes it), image [1, 3, H, W] for the reward CLIP -> caption (lower case)."""
        self.reward.set_image_features(image)
        for _ in range(self.steps):
            with torch.no_grad():
                captions = self.candidates(clip_embedding)
            self.step(clip_embedding, captions, self.rewards(captions))
        with torch.no_grad():
            prefix = self.captioner.prefix(clip_embedding)
            final = generate(self.captioner, self.tokenizer, prefix, num_beams=self.final_beams, num_captions=1,
                             max_new_tokens=self.max_new_tokens)[0]
        self.reset()
        return final.lower()  # the reference's results are lower case

    @torch.no_grad()
    def reset(self):
        self.captioner.clip_project.load_state_dict(self.initial_mapper)
        self.optimizer.load_state_dict(self.initial_optimizer)
