"""RLCF captioning TTA: generation, rewards, one step against a recomputation, the exact reset."""
import copy

import torch

import clip
from tools.tiny_clip import tiny_clip_model
from tta.captioning.adapt import CaptionAdapter, caption_ce
from tta.captioning.generate import clean_up, end_of_caption_id, generate
from tta.core.rewards import CLIPReward
from tests.captioning_fixtures import CLIP_DIM, tiny_captioner, tiny_opt_folder  # noqa: F401

CANDIDATES = ["a red circle on the left.", "a star", "a blue heart at the top", "a green dotted square"]


def make_adapter(folder, k=4, lr=1e-3, steps=2):
    captioner, tokenizer = tiny_captioner(folder)
    reward = CLIPReward([tiny_clip_model("vit", seed=3)], sample_k=k, process_batch=False)
    return CaptionAdapter(captioner, tokenizer, reward, lr=lr, steps=steps, sample_k=k, max_new_tokens=6)


def test_greedy_generation_equals_an_argmax_loop(tiny_opt_folder):
    captioner, tokenizer = tiny_captioner(tiny_opt_folder)
    prefix = captioner.prefix(torch.randn(1, CLIP_DIM, generator=torch.Generator().manual_seed(5)))
    ids = [tokenizer.bos_token_id]
    with torch.no_grad():  # no cache: the whole sequence each time
        for _ in range(8):
            embeds = torch.cat([prefix, captioner.llm.get_input_embeddings()(torch.tensor([ids]))], dim=1)
            ids.append(int(captioner.llm(inputs_embeds=embeds).logits[0, -1].argmax()))
            if ids[-1] == end_of_caption_id(tokenizer):
                break
    expected = clean_up(tokenizer.decode(ids[1:], skip_special_tokens=True)).strip()
    assert generate(captioner, tokenizer, prefix, num_beams=1, max_new_tokens=8) == [expected]
    beams = generate(captioner, tokenizer, prefix, num_beams=4, num_captions=4, max_new_tokens=8)
    assert len(beams) == 4 and all(isinstance(b, str) and "\n" not in b for b in beams)


def test_clean_up_as_the_reference_decoding():
    assert clean_up("a dog , a cat . it is n't 's") == "a dog, a cat. it isn't's"


def test_rewards_are_centred_clipscores(tiny_opt_folder):
    adapter = make_adapter(tiny_opt_folder)
    image = torch.randn(1, 3, 32, 32)
    adapter.reward.set_image_features(image)
    model = adapter.reward.models[0]
    with torch.no_grad():
        img = model.encode_image(image)
        txt = model.encode_text(clip.tokenize(CANDIDATES))
    cos = torch.nn.functional.cosine_similarity(img, txt)
    score = (2.5 * cos).clamp(min=0)
    torch.testing.assert_close(adapter.rewards(CANDIDATES), score - score.mean(), rtol=1e-5, atol=1e-6)


def test_one_step_equals_a_recomputation(tiny_opt_folder):
    adapter = make_adapter(tiny_opt_folder, lr=1e-3)
    x = torch.randn(1, CLIP_DIM, generator=torch.Generator().manual_seed(2))
    rewards = torch.tensor([0.3, -0.1, 0.05, -0.25])
    mapper = copy.deepcopy(adapter.captioner.clip_project)
    llm, tokenizer = adapter.captioner.llm, adapter.tokenizer
    # each candidate alone, unpadded: mean over its own tokens of -log p(token | prefix, tokens before)
    per_caption = []
    for text in CANDIDATES:
        ids = torch.tensor([tokenizer(text).input_ids])
        embeds = torch.cat([mapper(x), llm.get_input_embeddings()(ids)], dim=1)
        log_probs = llm(inputs_embeds=embeds).logits.log_softmax(dim=-1)[0]
        n = ids.shape[1]
        per_caption.append(-log_probs[3 : 3 + n].gather(1, ids[0][:, None]).mean())
    expected = (rewards * torch.stack(per_caption)).mean()
    expected.backward()

    loss = adapter.step(x, CANDIDATES, rewards)
    torch.testing.assert_close(loss, expected.detach(), rtol=1e-5, atol=1e-6)
    for (name, new), old in zip(adapter.captioner.clip_project.named_parameters(), mapper.parameters()):
        # the batched, padded gradient equals the per-caption one up to float rounding ...
        scale = old.grad.abs().max().item()
        torch.testing.assert_close(new.grad, old.grad, rtol=1e-4, atol=1e-5 * scale, msg=name)
        # ... and the update is AdamW's first step on it (weight decay 0): p - lr * g / (|g| + eps). The
        # step is taken on the adapter's own gradient: where |g| is near eps, a rounding-sized change of g
        # moves g / (|g| + eps) by up to its whole range, so the recomputed gradient cannot stand in for it
        g = new.grad
        torch.testing.assert_close(new, old - 1e-3 * g / (g.abs() + 1e-6), rtol=1e-5, atol=1e-6, msg=name)
    assert all(p.grad is None for p in adapter.captioner.llm.parameters())


def test_padding_is_masked(tiny_opt_folder):
    captioner, tokenizer = tiny_captioner(tiny_opt_folder)
    x = torch.randn(1, CLIP_DIM)
    batched = caption_ce(captioner, tokenizer, x, CANDIDATES)
    alone = torch.cat([caption_ce(captioner, tokenizer, x, [c]) for c in CANDIDATES])
    torch.testing.assert_close(batched, alone, rtol=1e-5, atol=1e-6)


def test_reset_is_exact(tiny_opt_folder):
    adapter = make_adapter(tiny_opt_folder, lr=1e-2)
    before = copy.deepcopy(adapter.captioner.clip_project.state_dict())
    x, image = torch.randn(1, CLIP_DIM), torch.randn(1, 3, 32, 32)
    first = adapter.caption(x, image)
    assert all(torch.equal(v, before[k]) for k, v in adapter.captioner.clip_project.state_dict().items())
    assert adapter.optimizer.state_dict()["state"] == {}
    assert adapter.caption(x, image) == first
    # the steps did change the mapper before the reset
    captions = adapter.candidates(x)
    adapter.step(x, captions, adapter.rewards(captions) + 1.0)
    assert any(not torch.equal(v, before[k]) for k, v in adapter.captioner.clip_project.state_dict().items())
