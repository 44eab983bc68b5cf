"""TPT / RLCF test-time adaptation parts against straightforward recomputations (tiny CLIPs, fp32)."""
import copy
import math

import numpy as np
import pytest
import torch
from PIL import Image

import clip
from engine.data.transforms import CenterCrop, Compose, Normalize, Resize, ToTensor
from tools.tiny_clip import tiny_clip_model
from tta.classification.adapt import Adapter, marginal_entropy, reward_loss, select_confident
from tta.classification.policy import PromptPolicy, VisualPolicy
from tta.core.rewards import CLIPReward, normalised_weights
from tta.classification.views import CLIP_MEAN, CLIP_STD, ViewBuilder

NAMES = ["cat", "golden retriever", "sea_lion", "tench", "red fox"]
N_VIEWS, P = 8, 0.25  # 2 selected views


@pytest.fixture(scope="module")
def views():
    return torch.randn(N_VIEWS, 3, 32, 32, generator=torch.Generator().manual_seed(1))


_MODELS = {}


def _model(key, **kwargs):
    """A fresh copy of a tiny CLIP (each is built once: building costs more than copying)."""
    if key not in _MODELS:
        _MODELS[key] = tiny_clip_model("vit", **kwargs)
    return copy.deepcopy(_MODELS[key])


def student():
    return _model("student", seed=0)


def teacher(seed=3):
    return _model(f"teacher{seed}", seed=seed, embed_dim=48, vision_layers=3, text_layers=3)


def unit(x):
    return x / x.norm(dim=-1, keepdim=True)


def reference_text_features(model, ctx, names=NAMES):
    """CLIP's text tower on "a photo of a {name}." with the 4 context embeddings replaced by ``ctx``."""
    tokens = clip.tokenize([f"a photo of a {n.replace('_', ' ')}." for n in names])
    x = model.token_embedding(tokens)
    x = torch.cat([x[:, :1], ctx.unsqueeze(0).expand(len(names), -1, -1), x[:, 5:]], dim=1)
    x = model.transformer(x + model.positional_embedding)
    x = model.ln_final(x)[torch.arange(len(names)), tokens.argmax(dim=-1)] @ model.text_projection
    return unit(x)


def reference_adamw_step(param, grad, lr, wd, eps=1e-8):
    """The first AdamW update: bias-corrected moments are g and g^2."""
    return param * (1 - lr * wd) - lr * grad / (grad.abs() + eps)


def reference_rlcf_loss(logits, teacher_model, views, names, k=3):
    tokens = clip.tokenize([f"a photo of a {n.replace('_', ' ')}." for n in names])
    with torch.no_grad():
        text = unit(teacher_model.encode_text(tokens))
        image = unit(teacher_model.encode_image(views))
    losses = []
    for v in range(logits.shape[0]):
        top = logits[v].topk(k).indices
        scores = torch.stack([torch.clamp(2.5 * (image[v] @ text[c]), min=0) for c in top])
        advantage = scores - scores.mean()
        for j, c in enumerate(top):
            losses.append(advantage[j] * -logits[v].log_softmax(-1)[c])
    return torch.stack(losses).mean()


def prompt_policy(model, **kw):
    policy = PromptPolicy(model, 4, "a photo of a", **kw)
    policy.start_dataset(NAMES)
    return policy


def make_adapter(policy, steps, lr, wd, reward=None):
    optimizer = torch.optim.AdamW(policy.trainable_parameters(), lr, weight_decay=wd)
    return Adapter(policy, optimizer, steps, P, reward)


def test_selection_and_marginal_entropy():
    logits = torch.randn(10, 6, generator=torch.Generator().manual_seed(0)) * 3
    probs = logits.softmax(-1)
    entropy = -(probs * probs.log()).sum(-1)
    idx = select_confident(logits, 0.3)
    assert idx.tolist() == sorted(range(10), key=lambda i: entropy[i].item())[:3]
    mean = probs[idx].mean(0)
    assert torch.allclose(marginal_entropy(logits[idx]), -(mean * mean.log()).sum(), atol=1e-6)


def test_tpt_one_update_equals_recomputation(views):
    model = student()
    policy = prompt_policy(model)
    ctx0 = policy.learner.ctx.detach().clone()
    make_adapter(policy, steps=1, lr=5e-3, wd=0.01).adapt(views)

    with torch.no_grad():
        image = unit(model.encode_image(views))
    ctx = ctx0.clone().requires_grad_(True)
    logits = model.logit_scale.exp() * image @ reference_text_features(model, ctx).t()
    probs = logits.softmax(-1)
    entropy = -(probs * logits.log_softmax(-1)).sum(-1)
    keep = entropy.argsort()[:2]
    mean = probs[keep].mean(0)
    loss = -(mean * mean.log()).sum()
    (grad,) = torch.autograd.grad(loss, ctx)
    expected = reference_adamw_step(ctx0, grad, 5e-3, 0.01)
    assert not torch.allclose(policy.learner.ctx, ctx0)
    assert torch.allclose(policy.learner.ctx, expected, atol=1e-6)


@pytest.mark.parametrize("class_chunk", [0, 2])
def test_rlcf_loss_and_update_equal_recomputation(views, class_chunk):
    model, reward_model = student(), teacher()
    policy = prompt_policy(model, class_chunk=class_chunk)
    reward = CLIPReward([reward_model], sample_k=3)
    reward.set_class_features(policy.learner.tokenized_prompts)
    ctx0 = policy.learner.ctx.detach().clone()
    make_adapter(policy, steps=1, lr=7e-3, wd=5e-4, reward=reward).adapt(views)

    with torch.no_grad():
        image = unit(model.encode_image(views))
    ctx = ctx0.clone().requires_grad_(True)
    logits = model.logit_scale.exp() * image @ reference_text_features(model, ctx).t()
    keep = select_confident(logits.detach(), P)
    loss = reference_rlcf_loss(logits[keep], reward_model, views[keep], NAMES)
    reward.set_image_features(views[keep])
    assert torch.allclose(reward_loss(logits[keep], reward), loss, atol=1e-6)
    (grad,) = torch.autograd.grad(loss, ctx)
    assert torch.allclose(policy.learner.ctx, reference_adamw_step(ctx0, grad, 7e-3, 5e-4), atol=1e-6)


def test_rewards_baseline_clamp_and_weights():
    reward = CLIPReward([teacher()], sample_k=3)
    reward.class_features = [unit(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.6, 0.8]]))]
    reward.image_features = [unit(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))]
    index = torch.tensor([0, 1, 2, 3, 1, 2])
    scores = reward.clip_score(index)
    assert torch.allclose(scores, torch.tensor([2.5, 0.0, 0.0, 2.0, 2.5, 0.0]))  # negative cosines clamp to 0
    r = reward.rewards(index).reshape(2, 3)
    assert torch.allclose(r.sum(dim=1), torch.zeros(2), atol=1e-6)  # per-view baseline
    assert torch.allclose(r[0], torch.tensor([2.5, 0, 0]) - 2.5 / 3)

    assert normalised_weights(["ViT-L/14@336px", "RN50x64", "ViT-L/14"]) == [0.56, 0.17, 0.28]
    with pytest.raises(ValueError, match="--reward_weights"):
        normalised_weights(["my_clip.pt"])
    multi = CLIPReward([teacher(), teacher(seed=4)], weights=normalised_weights(["a", "b"], [10, 5]), sample_k=3)
    tokens = clip.tokenize([f"a photo of a {n}." for n in NAMES])
    multi.set_class_features(tokens)
    imgs = torch.randn(2, 3, 32, 32)
    multi.set_image_features(imgs)
    singles = []
    for m in multi.models:
        one = CLIPReward([m], sample_k=3)
        one.set_class_features(tokens)
        one.set_image_features(imgs)
        singles.append(one.clip_score(index))
    assert torch.allclose(multi.clip_score(index), 0.67 * singles[0] + 0.33 * singles[1], atol=1e-6)


def _other_views(views):
    return views.flip(0) * 0.5 + 0.1


def test_episodic_reset_is_exact_for_prompts(views):
    model = student()
    policy = prompt_policy(model)
    reward = CLIPReward([teacher()], sample_k=3)
    reward.set_class_features(policy.learner.tokenized_prompts)
    adapter = make_adapter(policy, steps=3, lr=7e-3, wd=5e-4, reward=reward)
    initial = policy.learner.ctx.detach().clone()
    adapter.predict(views)
    after_first = adapter.predict(_other_views(views))
    ctx_after_two = policy.learner.ctx.detach().clone()
    policy.reset()
    assert torch.equal(policy.learner.ctx, initial)

    fresh = prompt_policy(student())
    fresh_reward = CLIPReward([teacher()], sample_k=3)
    fresh_reward.set_class_features(fresh.learner.tokenized_prompts)
    alone = make_adapter(fresh, steps=3, lr=7e-3, wd=5e-4, reward=fresh_reward).predict(_other_views(views))
    assert torch.equal(after_first, alone)
    assert torch.equal(ctx_after_two, fresh.learner.ctx)


def test_image_encoder_run_reset_freezing_and_momentum(views):
    model, reward_model = student(), teacher()
    text_before = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("visual.")}
    teacher_before = {k: v.clone() for k, v in reward_model.state_dict().items()}
    policy = VisualPolicy(model, "a_photo_of_a", momentum_update=True, momentum=0.5, update_freq=2)
    reward = CLIPReward([reward_model], sample_k=3)
    reward.set_class_features(policy.start_dataset(NAMES))
    adapter = make_adapter(policy, steps=2, lr=1e-3, wd=5e-4, reward=reward)
    original = {k: v.clone() for k, v in model.visual.state_dict().items()}

    adapter.predict(views)
    assert any(not torch.equal(v, original[k]) for k, v in model.visual.state_dict().items())  # adapted
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in text_before.items())  # text tower frozen
    assert all(torch.equal(v, reward_model.state_dict()[k]) for k, v in teacher_before.items())
    assert all(torch.equal(policy.episodic.point[k], original[k]) for k in original)  # 1 image < update_freq
    ema_expected = {k: 0.5 * original[k] + 0.5 * v for k, v in model.visual.state_dict().items()}
    assert all(torch.allclose(policy.episodic.ema[k], ema_expected[k]) for k in original)
    policy.reset()
    assert all(torch.equal(v, original[k]) for k, v in model.visual.state_dict().items())
    adapter.predict(_other_views(views))  # the second image moves the reset point to the EMA
    assert all(torch.equal(policy.episodic.point[k], policy.episodic.ema[k]) for k in original)
    assert any(not torch.equal(policy.episodic.point[k], original[k]) for k in original)


def test_image_encoder_reset_is_exact_without_momentum(views):
    def run(images):
        model = student()
        policy = VisualPolicy(model, "a_photo_of_a")
        reward = CLIPReward([teacher()], sample_k=3)
        reward.set_class_features(policy.start_dataset(NAMES))
        adapter = make_adapter(policy, steps=2, lr=1e-3, wd=5e-4, reward=reward)
        return [adapter.predict(v) for v in images][-1]

    assert torch.equal(run([views, _other_views(views)]), run([_other_views(views)]))


def test_zero_steps_is_zero_shot(views):
    model = student()
    policy = prompt_policy(model)
    logits = Adapter(policy, None, 0, P).predict(views)
    with torch.no_grad():
        image = unit(model.encode_image(views[:1]))
        text = reference_text_features(model, policy.learner.ctx)
    assert torch.allclose(logits, model.logit_scale.exp() * image @ text.t(), atol=1e-5)


def test_views_deterministic_per_image_and_original_first():
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (40, 30, 3), dtype=np.uint8))
    for augmix in (False, True):
        builder = ViewBuilder(32, 6, use_augmix=augmix, seed=5)
        torch.manual_seed(0)
        np.random.seed(0)
        first = builder(img, 3)
        torch.manual_seed(123)  # the global RNG state does not matter
        np.random.seed(123)
        assert first.shape == (6, 3, 32, 32) and torch.equal(builder(img, 3), first)
        assert not torch.equal(builder(img, 4)[1:], first[1:])  # another image index, other draws
        assert not torch.equal(ViewBuilder(32, 6, use_augmix=augmix, seed=6)(img, 3)[1:], first[1:])
        original = Compose([Resize(32, interpolation="bicubic"), CenterCrop(32), ToTensor(),
                            Normalize(CLIP_MEAN, CLIP_STD)])(img)
        assert torch.equal(first[0], original)  # view 0: the torch transforms' values exactly
    hard = ViewBuilder(32, 4, hard_aug=True, seed=5)
    assert torch.equal(hard(img, 0), hard(img, 0)) and hard(img, 0).shape == (4, 3, 32, 32)
    plain, mixed = ViewBuilder(32, 6, seed=5)(img, 3), ViewBuilder(32, 6, use_augmix=True, seed=5)(img, 3)
    assert not torch.equal(plain[1:], mixed[1:])
    assert math.isfinite(mixed.abs().max().item())


def test_class_chunks_give_the_same_updates_over_steps(views):
    ctxs = []
    for chunk in (0, 2):
        policy = prompt_policy(student(), class_chunk=chunk)
        reward = CLIPReward([teacher()], sample_k=3)
        reward.set_class_features(policy.learner.tokenized_prompts)
        make_adapter(policy, steps=3, lr=7e-3, wd=5e-4, reward=reward).adapt(views)
        ctxs.append(policy.learner.ctx.detach())
    assert torch.allclose(ctxs[0], ctxs[1], atol=1e-6)


def test_image_encoder_one_update_equals_recomputation(views):
    model, reward_model = student(), teacher()
    ref = copy.deepcopy(model)
    policy = VisualPolicy(model, "a photo of a")
    reward = CLIPReward([reward_model], sample_k=3)
    reward.set_class_features(policy.start_dataset(NAMES))
    # plain SGD: the update is then -lr * gradient, so the gradient itself is compared
    optimizer = torch.optim.SGD(policy.trainable_parameters(), lr=0.1)
    Adapter(policy, optimizer, 1, P, reward).adapt(views)

    tokens = clip.tokenize([f"a photo of a {n.replace('_', ' ')}." for n in NAMES])
    with torch.no_grad():
        text = unit(ref.encode_text(tokens))
        keep = select_confident(ref.logit_scale.exp() * unit(ref.visual(views)) @ text.t(), P)
    logits = ref.logit_scale.exp() * unit(ref.visual(views[keep])) @ text.t()
    loss = reference_rlcf_loss(logits, reward_model, views[keep], NAMES)
    params = dict(ref.visual.named_parameters())
    grads = torch.autograd.grad(loss, list(params.values()))
    adapted = dict(model.visual.named_parameters())
    assert any(g.abs().max() > 0 for g in grads)
    for (name, p), g in zip(params.items(), grads):
        assert torch.allclose(adapted[name], p - 0.1 * g, atol=1e-6), name


def test_results_table_in_rlcf_layout():
    from tta.classification.results import results_table

    results = [("K", "ImageNetSketch", 40.0, 60.0), ("I", "ImageNet", 70.0, 90.0), ("A", "ImageNetA", 50.0, 70.0),
               ("DTD", "DescribableTextures", 30.0, 50.0), ("Pets", "OxfordPets", 80.0, 95.0)]
    head, _, row = results_table("rlcf-prompt", results).splitlines()
    assert head == "| method | I | A | K | OOD avg | DTD | Pets | fine-grained avg |"
    assert row == "| rlcf-prompt | 70.00 | 50.00 | 40.00 | 45.00 | 30.00 | 80.00 | 55.00 |"


@pytest.mark.parametrize("visual", [False, True])
def test_autocast_path_runs_chunked_and_visual(views, visual):
    """PREC amp's code path (autocast; bfloat16 on CPU): fp16/bf16 activations meet fp32 gradients."""
    model = student()
    policy = VisualPolicy(model, "a photo of a") if visual else prompt_policy(model, class_chunk=2)
    reward = CLIPReward([teacher()], sample_k=3)
    reward.set_class_features(policy.start_dataset(NAMES) if visual else policy.learner.tokenized_prompts)
    before = [p.detach().clone() for p in policy.trainable_parameters()]
    optimizer = torch.optim.AdamW(policy.trainable_parameters(), 1e-3, weight_decay=5e-4)
    logits = Adapter(policy, optimizer, 2, P, reward, amp=True).predict(views)
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()
    assert any(not torch.equal(b, p) for b, p in zip(before, policy.trainable_parameters()))


def test_views_loader_shards_the_seeded_order_among_processes(monkeypatch):
    import tta.classification.data as tta_data

    class IndexOnly(torch.utils.data.Dataset):  # item i -> i (no image is read)
        def __init__(self, items, builder):
            self.items = items

        def __len__(self):
            return len(self.items)

        def __getitem__(self, index):
            return index

    monkeypatch.setattr(tta_data, "ViewsDataset", IndexOnly)
    items = list(range(11))
    order = [int(i) for i in tta_data.views_loader(items, None, 0, seed=3)]
    assert sorted(order) == items and order != items  # shuffled, each image once
    shards = [[int(i) for i in tta_data.views_loader(items, None, 0, 3, num_replicas=3, rank=r)] for r in range(3)]
    assert shards == [order[r::3] for r in range(3)]  # every image once over the ranks, none dropped


def resnet_student():
    return _model_of_kind("resnet_student", "resnet", seed=1)  # with seed 0 its candidates all score 0 here: no gradient


def _model_of_kind(key, kind, **kwargs):
    if key not in _MODELS:
        _MODELS[key] = tiny_clip_model(kind, **kwargs)
    return copy.deepcopy(_MODELS[key])


def _batchnorm_state(visual):
    return {k: v.clone() for k, v in visual.state_dict().items() if "running_" in k or "num_batches" in k}


def test_resnet_encoder_adapts_in_train_mode_as_the_reference(views):
    """One update: BatchNorm with the batch statistics of the views, selection from that same forward
    over all views (tune_cls_rl.py: model.train() around the tuning), then the prediction in eval mode
    with the running statistics that forward updated."""
    model, reward_model = resnet_student(), teacher()
    ref = copy.deepcopy(model)
    policy = VisualPolicy(model, "a photo of a")
    reward = CLIPReward([reward_model], sample_k=3)
    reward.set_class_features(policy.start_dataset(NAMES))
    optimizer = torch.optim.SGD(policy.trainable_parameters(), lr=0.1)  # the update is -lr * gradient
    adapter = Adapter(policy, optimizer, 1, P, reward)
    prediction = adapter.predict(views)

    tokens = clip.tokenize([f"a photo of a {n.replace('_', ' ')}." for n in NAMES])
    with torch.no_grad():
        text = unit(ref.encode_text(tokens))
    ref.visual.train()
    logits = ref.logit_scale.exp() * unit(ref.visual(views)) @ text.t()  # [N, C], batch statistics of all views
    keep = select_confident(logits.detach(), P)
    loss = reference_rlcf_loss(logits[keep], reward_model, views[keep], NAMES)
    params = dict(ref.visual.named_parameters())
    grads = torch.autograd.grad(loss, list(params.values()))
    adapted = dict(model.visual.named_parameters())
    assert any(g.abs().max() > 0 for g in grads)
    for (name, p), g in zip(params.items(), grads):
        assert torch.allclose(adapted[name], p - 0.1 * g, atol=1e-6), name
    for name, value in _batchnorm_state(ref.visual).items():  # running statistics of that one forward
        assert torch.allclose(model.visual.state_dict()[name], value, atol=1e-6), name
    with torch.no_grad():
        for name, p in params.items():
            p.sub_(0.1 * grads[list(params).index(name)])
        ref.visual.eval()
        expected = ref.logit_scale.exp() * unit(ref.visual(views[:1])) @ text.t()
    assert not model.visual.training
    assert torch.allclose(prediction, expected, atol=1e-5)


def test_resnet_reset_restores_the_running_statistics_exactly(views):
    model = resnet_student()
    policy = VisualPolicy(model, "a_photo_of_a")
    reward = CLIPReward([teacher()], sample_k=3)
    reward.set_class_features(policy.start_dataset(NAMES))
    original = {k: v.clone() for k, v in model.visual.state_dict().items()}
    statistics = _batchnorm_state(model.visual)
    make_adapter(policy, steps=2, lr=1e-3, wd=5e-4, reward=reward).adapt(views)
    moved = _batchnorm_state(model.visual)
    assert all(not torch.equal(moved[k], v) for k, v in statistics.items() if "running_" in k)
    assert all(moved[k].item() == v.item() + 2 for k, v in statistics.items() if "num_batches" in k)  # 2 forwards
    policy.reset()
    assert all(torch.equal(v, original[k]) for k, v in model.visual.state_dict().items())


def test_resnet_bn_mode_eval_keeps_the_running_statistics(views):
    model = resnet_student()
    policy = VisualPolicy(model, "a_photo_of_a", bn_mode="eval")
    reward = CLIPReward([teacher()], sample_k=3)
    reward.set_class_features(policy.start_dataset(NAMES))
    statistics = _batchnorm_state(model.visual)
    make_adapter(policy, steps=2, lr=1e-3, wd=5e-4, reward=reward).adapt(views)
    assert all(torch.equal(model.visual.state_dict()[k], v) for k, v in statistics.items())
    with pytest.raises(ValueError, match='bn_mode must be one of'):
        VisualPolicy(resnet_student(), "a_photo_of_a", bn_mode="frozen")
