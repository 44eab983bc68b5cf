"""Other CLIP weights: Hugging Face CLIPModel and OpenCLIP layouts give the original's features; names
resolve to the right hub files (offline, mocked or from a prepared cache); what cannot be mapped
fails with one error."""
import json
import math
import re
import os
import shutil
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from huggingface_hub.utils import EntryNotFoundError, LocalEntryNotFoundError
from safetensors.torch import save_file

import clip
import clip.hub
from engine.utils.safe_pickle import UntrustedPickleError
from tests import tiny_run
from tools.tiny_clip import save_tiny_openclip, tiny_hf_clip

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEXTS = ["a photo of a dog.", "a cat", "an extraordinarily long caption about a small red bird on a branch", "x"]


def _images(n=3, size=32, seed=0):
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _relative(a, b):
    return ((a - b).norm() / b.norm()).item()


def _features(output):
    """transformers 4 returns the projected features, 5 an output whose pooler_output they are."""
    return output if torch.is_tensor(output) else output.pooler_output


# ----- Hugging Face transformers ---------------------------------------------------------------
@pytest.mark.parametrize("activation", ["quick_gelu", "gelu"])
def test_hf_clip_features_equal_transformers(tmp_path, activation):
    # heads of 32 channels (not CLIP's 64) and 4 heads: read from config.json, not guessed from widths
    hf = tiny_hf_clip(seed=1, activation=activation, vision_width=128, vision_heads=4, text_width=64, text_heads=2,
                      embed_dim=48)
    hf.save_pretrained(str(tmp_path / "hf"))
    ours = clip.load(str(tmp_path / "hf"))
    tokens = clip.tokenize(TEXTS)
    with torch.no_grad():
        want_image = _features(hf.get_image_features(pixel_values=_images()))
        want_text = _features(hf.get_text_features(input_ids=tokens))
        got_image, got_text = ours.encode_image(_images()), ours.encode_text(tokens)
    assert got_image.shape == (3, 48) and ours.activation == activation
    assert _relative(got_image, want_image) <= 1e-5 and _relative(got_text, want_text) <= 1e-5
    assert torch.equal(ours.logit_scale, hf.logit_scale)


def test_hf_bin_file_is_read_through_weights_only(tmp_path):
    hf = tiny_hf_clip(seed=2, vision_heads=4, text_heads=2)
    folder = tmp_path / "bin"
    hf.save_pretrained(str(folder))
    state = {k: v.clone() for k, v in hf.state_dict().items()}
    os.remove(folder / "model.safetensors")
    torch.save(state, folder / "pytorch_model.bin")
    ours = clip.load("hf:local", path=str(folder))
    with torch.no_grad():
        assert _relative(ours.encode_image(_images()), _features(hf.get_image_features(pixel_values=_images()))) <= 1e-5

    class Payload:  # a pickle that would run code: weights_only refuses it
        def __reduce__(self):
            return (print, ("ran",))

    torch.save({"text_model.x": Payload()}, folder / "pytorch_model.bin")
    with pytest.raises(UntrustedPickleError, match=r"pytorch_model\.bin.*builtins\.print"):
        clip.load(str(folder))


def test_hf_file_without_config_assumes_openai_heads(tmp_path, capsys):
    hf = tiny_hf_clip(seed=3, vision_heads=2, text_heads=1)  # 64-channel heads, QuickGELU: OpenAI's configs
    save_file(hf.state_dict(), str(tmp_path / "alone.safetensors"))
    ours = clip.load(None, path=str(tmp_path / "alone.safetensors"))
    assert "without config.json: OpenAI's heads and QuickGELU assumed" in capsys.readouterr().out
    with torch.no_grad():
        assert _relative(ours.encode_text(clip.tokenize(TEXTS)), _features(hf.get_text_features(
            input_ids=clip.tokenize(TEXTS)))) <= 1e-5


# ----- OpenCLIP ----------------------------------------------------------------------------------
def _openclip_state(seed=0, width=96, text_width=64, layers=2, mlp_ratio=3, embed=48, patch=8, size=32):
    """Random weights in OpenCLIP's saved key layout (its native ViT and text towers)."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape, std=0.05):
        return torch.randn(*shape, generator=g) * std

    def ln(prefix, dim):
        return {f"{prefix}.weight": 1 + r(dim), f"{prefix}.bias": r(dim)}

    def blocks(prefix, dim):
        out = {}
        for i in range(layers):
            p = f"{prefix}.resblocks.{i}."
            out.update({p + "attn.in_proj_weight": r(3 * dim, dim, std=dim ** -0.5), p + "attn.in_proj_bias": r(3 * dim),
                        p + "attn.out_proj.weight": r(dim, dim, std=dim ** -0.5), p + "attn.out_proj.bias": r(dim),
                        p + "mlp.c_fc.weight": r(mlp_ratio * dim, dim, std=dim ** -0.5),
                        p + "mlp.c_fc.bias": r(mlp_ratio * dim),
                        p + "mlp.c_proj.weight": r(dim, mlp_ratio * dim, std=(mlp_ratio * dim) ** -0.5),
                        p + "mlp.c_proj.bias": r(dim)})
            out.update(ln(p + "ln_1", dim))
            out.update(ln(p + "ln_2", dim))
        return out

    grid = size // patch
    state = {"visual.conv1.weight": r(width, 3, patch, patch, std=0.2), "visual.class_embedding": r(width, std=0.5),
             "visual.positional_embedding": r(grid * grid + 1, width, std=0.5), "visual.proj": r(width, embed, std=0.2),
             "token_embedding.weight": r(49408, text_width, std=0.5), "positional_embedding": r(77, text_width, std=0.2),
             "text_projection": r(text_width, embed, std=0.2), "logit_scale": torch.tensor(math.log(1 / 0.07))}
    for prefix, dim in (("visual.ln_pre", width), ("visual.ln_post", width), ("ln_final", text_width)):
        state.update(ln(prefix, dim))
    state.update(blocks("visual.transformer", width))
    state.update(blocks("transformer", text_width))
    return state


def _layer_norm(x, state, key):
    return F.layer_norm(x, x.shape[-1:], state[key + ".weight"], state[key + ".bias"], eps=1e-5)


def _block(x, state, p, heads, causal):
    """One residual attention block as OpenCLIP computes it: pre-LN attention, pre-LN MLP with nn.GELU."""
    b, n, w = x.shape
    q, k, v = (_layer_norm(x, state, p + "ln_1") @ state[p + "attn.in_proj_weight"].t()
               + state[p + "attn.in_proj_bias"]).chunk(3, dim=-1)
    q, k, v = (t.reshape(b, n, heads, w // heads).transpose(1, 2) for t in (q, k, v))
    scores = q @ k.transpose(-1, -2) / math.sqrt(w // heads)
    if causal:  # OpenCLIP's text mask: -inf above the diagonal
        scores = scores + torch.full((n, n), float("-inf")).triu(1)
    attn = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, n, w)
    x = x + attn @ state[p + "attn.out_proj.weight"].t() + state[p + "attn.out_proj.bias"]
    h = F.gelu(_layer_norm(x, state, p + "ln_2") @ state[p + "mlp.c_fc.weight"].t() + state[p + "mlp.c_fc.bias"])
    return x + h @ state[p + "mlp.c_proj.weight"].t() + state[p + "mlp.c_proj.bias"]


def _openclip_image(state, images, heads, layers=2):
    patch = state["visual.conv1.weight"].shape[-1]
    x = F.conv2d(images, state["visual.conv1.weight"], stride=patch).flatten(2).transpose(1, 2)
    x = torch.cat([state["visual.class_embedding"].expand(x.shape[0], 1, -1), x], dim=1)
    x = _layer_norm(x + state["visual.positional_embedding"], state, "visual.ln_pre")
    for i in range(layers):
        x = _block(x, state, f"visual.transformer.resblocks.{i}.", heads, causal=False)
    return _layer_norm(x[:, 0], state, "visual.ln_post") @ state["visual.proj"]  # pool_type "tok"


def _openclip_text(state, tokens, heads, layers=2):
    x = state["token_embedding.weight"][tokens] + state["positional_embedding"]
    for i in range(layers):
        x = _block(x, state, f"transformer.resblocks.{i}.", heads, causal=True)
    x = _layer_norm(x, state, "ln_final")
    return x[torch.arange(len(tokens)), tokens.argmax(-1)] @ state["text_projection"]  # pool_type "argmax"


def _openclip_folder(folder, state, head_width=32, text_heads=2, **extra_cfg):
    os.makedirs(folder, exist_ok=True)
    save_file(state, os.path.join(folder, "open_clip_model.safetensors"))
    model_cfg = {"embed_dim": 48, "vision_cfg": {"image_size": 32, "layers": 2, "width": 96, "patch_size": 8,
                                                 "head_width": head_width, "mlp_ratio": 3.0},
                 "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": text_heads, "layers": 2}}
    for key, value in extra_cfg.items():
        tower, _, name = key.partition("__")
        model_cfg[tower][name] = value
    with open(os.path.join(folder, "open_clip_config.json"), "w") as f:
        json.dump({"model_cfg": model_cfg, "preprocess_cfg": {"mean": [0.5] * 3, "std": [0.5] * 3}}, f)
    return str(folder)


def test_openclip_features_equal_a_recomputation_of_its_layout(tmp_path):
    state = _openclip_state()
    folder = _openclip_folder(tmp_path / "oc", state)  # 3 vision heads of 32, 2 text heads, MLP ratio 3, GELU
    ours = clip.load(folder)
    tokens = clip.tokenize(TEXTS)
    with torch.no_grad():
        got_image, got_text = ours.encode_image(_images()), ours.encode_text(tokens)
        want_image, want_text = _openclip_image(state, _images(), heads=3), _openclip_text(state, tokens, heads=2)
    assert _relative(got_image, want_image) <= 1e-5 and _relative(got_text, want_text) <= 1e-5
    assert ours.activation == "gelu" and ours.image_mean_std == ((0.5,) * 3, (0.5,) * 3)

    # the same weights read as OpenAI's layout (QuickGELU, 64-channel heads) give other features
    shutil.copyfile(os.path.join(folder, "open_clip_model.safetensors"), tmp_path / "renamed.safetensors")
    as_openai = clip.load(None, path=str(tmp_path / "renamed.safetensors"))
    with torch.no_grad():
        assert _relative(as_openai.encode_text(tokens), want_text) > 1e-2


def test_openclip_saved_variants_load(tmp_path):
    """A training checkpoint (DDP "module." keys inside "state_dict"), the custom-text "text." layout and
    an old causal-mask buffer: the same model."""
    state = _openclip_state(seed=4)
    reference = clip.load(_openclip_folder(tmp_path / "plain", state))
    folder = tmp_path / "ckpt"
    _openclip_folder(folder, state)
    os.remove(folder / "open_clip_model.safetensors")
    text_keys = ("token_embedding", "positional_embedding", "transformer", "ln_final", "text_projection")
    custom = {("text." + k if k.startswith(text_keys) else k): v for k, v in state.items()}
    custom["attn_mask"] = torch.zeros(77, 77)
    torch.save({"epoch": 3, "state_dict": {"module." + k: v for k, v in custom.items()}}, folder / "epoch_3.pt")
    (tmp_path / "elsewhere").mkdir()
    shutil.copyfile(folder / "epoch_3.pt", tmp_path / "elsewhere/epoch_3.pt")
    with pytest.raises(ValueError, match=r"keys start with module.: an OpenCLIP training checkpoint\? Name its model"):
        clip.load("ViT-B/16", path=str(tmp_path / "elsewhere/epoch_3.pt"))  # no config beside it, and no name
    loaded = clip.load("openclip:ViT-B-16", path=str(folder / "epoch_3.pt"))
    tokens = clip.tokenize(TEXTS)
    with torch.no_grad():
        assert torch.equal(loaded.encode_text(tokens), reference.encode_text(tokens))


@pytest.mark.parametrize("options, found", [
    (dict(text_cfg__pool_type="last", text_cfg__no_causal_mask=True), "text_cfg.no_causal_mask=True, text_cfg.pool_type=last"),
    (dict(vision_cfg__pool_type="avg", vision_cfg__no_ln_pre=True), "vision_cfg.pool_type=avg, vision_cfg.no_ln_pre=True"),
    (dict(text_cfg__hf_tokenizer_name="bert-base-uncased"), "text_cfg.hf_tokenizer_name=bert-base-uncased"),
])
def test_openclip_options_we_cannot_compute_are_named(tmp_path, options, found):
    folder = _openclip_folder(tmp_path / "odd", _openclip_state(), **options)
    with pytest.raises(ValueError, match=r"Cannot map the weights of OpenCLIP .*model config " + re.escape(found)):
        clip.load(folder)


def test_openclip_file_without_config_needs_its_name(tmp_path):
    folder = tmp_path / "bare"
    save_tiny_openclip(str(folder), seed=1)
    os.remove(folder / "open_clip_config.json")
    path = str(folder / "open_clip_model.safetensors")
    with pytest.raises(ValueError, match=r"an OpenCLIP file without its open_clip_config.json: name its model"):
        clip.load("ViT-B/16", path=path)
    named = clip.load("openclip:ViT-B-16/laion2b_s34b_b88k", path=path)  # the name says GELU
    quick = clip.load("openclip:ViT-B-16-quickgelu", path=path)
    assert (named.activation, quick.activation) == ("gelu", "quick_gelu")
    assert named.visual.transformer.resblocks[0].attn.num_heads == 2  # 128 / 64


# ----- names resolved on the hub (mocked: no network here) ---------------------------------------
class FakeHub:
    """hf_hub_download over {(repo, filename): local file}; records the requests."""

    def __init__(self, files, offline=False):
        self.files, self.offline, self.calls = files, offline, []

    def __call__(self, repo_id, filename):
        self.calls.append((repo_id, filename))
        if (repo_id, filename) in self.files:
            return self.files[(repo_id, filename)]
        raise LocalEntryNotFoundError("offline") if self.offline else EntryNotFoundError(f"{filename} not in {repo_id}")


def test_openclip_names_fetch_the_zoo_files(tmp_path, monkeypatch):
    folder, model = save_tiny_openclip(str(tmp_path / "oc"), seed=2)
    repo = "laion/CLIP-ViT-B-16-laion2B-s34B-b88K"
    hub = FakeHub({(repo, "open_clip_config.json"): os.path.join(folder, "open_clip_config.json"),
                   (repo, "open_clip_model.safetensors"): os.path.join(folder, "open_clip_model.safetensors")})
    monkeypatch.setattr(clip.hub, "hf_hub_download", hub)
    loaded = clip.load("openclip:ViT-B-16/laion2b_s34b_b88k")
    assert hub.calls == [(repo, "open_clip_config.json"), (repo, "open_clip_model.safetensors")]
    with torch.no_grad():
        assert torch.equal(loaded.encode_image(_images()), model.encode_image(_images()))

    # OpenAI's weights in the zoo: QuickGELU by their tag; only a .bin file there
    openai_repo = "timm/vit_base_patch16_clip_224.openai"
    torch.save(model.state_dict(), tmp_path / "open_clip_pytorch_model.bin")
    hub.files = {(openai_repo, "open_clip_config.json"): os.path.join(folder, "open_clip_config.json"),
                 (openai_repo, "open_clip_pytorch_model.bin"): str(tmp_path / "open_clip_pytorch_model.bin")}
    hub.calls.clear()
    assert clip.load("openclip:ViT-B-16/openai").activation == "quick_gelu"
    assert hub.calls[-1] == (openai_repo, "open_clip_pytorch_model.bin")

    with pytest.raises(ValueError, match=r'Unknown OpenCLIP model "openclip:ViT-B-16/laion5b".*ViT-B-16/laion2b_s34b_b88k'
                                         r".*openclip:hf-hub:ORG/REPO"):
        clip.load("openclip:ViT-B-16/laion5b")


def test_offline_hub_names_fail_clearly(monkeypatch):
    monkeypatch.setattr(clip.hub, "hf_hub_download", FakeHub({}, offline=True))
    with pytest.raises(FileNotFoundError) as err:
        clip.load("hf:openai/clip-vit-base-patch16")
    message = str(err.value)
    for part in ("openai/clip-vit-base-patch16", "not in the Hugging Face cache", "huggingface-cli download",
                 "MODEL.BACKBONE.PATH"):
        assert part in message


def test_hf_names_fetch_config_and_weights(tmp_path, monkeypatch):
    hf = tiny_hf_clip(seed=5, vision_heads=4, text_heads=2)
    hf.save_pretrained(str(tmp_path / "hf"))
    repo = "openai/clip-vit-base-patch16"
    hub = FakeHub({(repo, "config.json"): str(tmp_path / "hf/config.json"),
                   (repo, "model.safetensors"): str(tmp_path / "hf/model.safetensors")})
    monkeypatch.setattr(clip.hub, "hf_hub_download", hub)
    loaded = clip.load(f"hf:{repo}")
    assert hub.calls == [(repo, "config.json"), (repo, "model.safetensors"), (repo, "preprocessor_config.json")]
    assert loaded.visual.transformer.resblocks[0].attn.num_heads == 4


@pytest.mark.slow
def test_train_py_reads_an_openclip_name_from_the_hub_cache(tmp_path, pets_root):
    """The user path offline: train.py with MODEL.BACKBONE.NAME openclip:ARCH/TAG, the files already in
    huggingface_hub's cache (as a first online run leaves them), HF_HUB_OFFLINE=1."""
    folder, _ = save_tiny_openclip(str(tmp_path / "oc"), seed=6)
    snapshot = tmp_path / "hub/models--laion--CLIP-ViT-B-16-laion2B-s34B-b88K/snapshots" / ("ab" * 20)
    shutil.copytree(folder, snapshot)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs/main").write_text("ab" * 20)
    env = tiny_run.env(HF_HUB_CACHE=str(tmp_path / "hub"), HF_HUB_OFFLINE="1")
    argv = tiny_run.argv(pets_root, str(tmp_path / "out"), None, "CoOp", "CoOp/vit_b16_ep50_ctxv1",
                         "MODEL.BACKBONE.NAME", "openclip:ViT-B-16/laion2b_s34b_b88k", batch=None, shots=1, epochs=1)
    res = subprocess.run([sys.executable, "train.py", *argv], cwd=REPO, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert f'Loaded CLIP weights: OpenCLIP "ViT-B-16/laion2b_s34b_b88k" from "{snapshot}/open_clip_model.safetensors" ' \
           "(activation gelu, vision_heads 2, transformer_heads 1)" in res.stdout
    assert "* accuracy: " in res.stdout


# ----- what does not map -------------------------------------------------------------------------
def test_other_families_fail_with_what_was_found(tmp_path):
    state = _openclip_state()
    siglip = {k: v for k, v in state.items() if not k.startswith("visual.")}
    siglip.update({"visual.trunk.patch_embed.proj.weight": torch.zeros(4, 3, 8, 8), "logit_bias": torch.zeros([])})
    save_file(siglip, str(tmp_path / "siglip.safetensors"))
    with pytest.raises(ValueError) as err:
        clip.load(None, path=str(tmp_path / "siglip.safetensors"))
    message = str(err.value)
    assert "found a timm image tower (visual.trunk.*" in message and "a sigmoid-loss logit_bias (SigLIP)" in message
    assert "SigLIP does not fit the prompt learners" in message and "hf:openai/clip-vit-base-patch16" in message

    folder = tmp_path / "hf_siglip"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "siglip"}))
    save_file({"vision_model.head.probe": torch.zeros(1, 1, 4)}, str(folder / "model.safetensors"))
    with pytest.raises(ValueError, match=r'a Hugging Face "siglip" model, not a CLIP .*SigLIP does not fit'):
        clip.load(str(folder))

    eva = {"visual.blocks.0.attn.q_proj.weight": torch.zeros(2, 2), "text.token_embedding.weight": torch.zeros(2, 2)}
    save_file(eva, str(tmp_path / "eva.safetensors"))
    with pytest.raises(ValueError, match=r"found EVA-CLIP's own image tower \(visual.blocks"):
        clip.load(None, path=str(tmp_path / "eva.safetensors"))

    with pytest.raises(FileNotFoundError, match=r"holds neither an OpenCLIP model .* nor a Hugging Face CLIP"):
        clip.load(str(tmp_path))


def test_unknown_names_say_what_loads():
    with pytest.raises(ValueError, match=r'Unknown CLIP model "ViT-H/14".*openclip:ARCH/TAG, hf:ORG/REPO'):
        clip.load("ViT-H/14")


def test_openclip_resnet_folder_loads_with_its_heads(tmp_path):
    folder, model = save_tiny_openclip(str(tmp_path / "rn"), kind="resnet", seed=3)
    loaded = clip.load(folder)
    assert loaded.visual.attnpool.num_heads == model.visual.attnpool.num_heads == 4  # 8 * 32 / head_width 64
    with torch.no_grad():
        assert torch.equal(loaded.encode_image(_images()), model.encode_image(_images()))
        assert torch.equal(loaded.encode_text(clip.tokenize(TEXTS)), model.encode_text(clip.tokenize(TEXTS)))


def test_trainers_say_how_to_match_the_weights_normalisation(tmp_path, capsys):
    from engine.config import get_cfg_default
    from trainers.clip_backbone import load_clip

    cfg = get_cfg_default()
    cfg.MODEL.BACKBONE.PATH = _openclip_folder(tmp_path / "oc", _openclip_state())  # trained on 0.5 / 0.5
    load_clip(cfg, "fp32", torch.device("cpu"))
    assert 'add INPUT.PIXEL_MEAN "[0.5, 0.5, 0.5]" INPUT.PIXEL_STD "[0.5, 0.5, 0.5]" to the command' in capsys.readouterr().out
    cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD = [0.5] * 3, [0.5] * 3
    load_clip(cfg, "fp32", torch.device("cpu"))
    assert "Note: these CLIP weights" not in capsys.readouterr().out


def test_linear_probe_feature_folders_of_other_clips(tmp_path):
    from engine.config import get_cfg_default
    from lpclip.features import backbone_tag

    cfg = get_cfg_default()
    cfg.MODEL.BACKBONE.NAME = "openclip:ViT-B-16/laion2b_s34b_b88k"
    assert backbone_tag(cfg) == "openclip-ViT-B-16-laion2b_s34b_b88k"
    cfg.MODEL.BACKBONE.PATH = str(tmp_path / "clip-vit-base-patch16") + "/"  # a Hugging Face folder
    assert backbone_tag(cfg) == "clip-vit-base-patch16"
