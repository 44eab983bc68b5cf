"""CLIP weights loader: both file formats, checksums, download and every error a user can hit."""
import hashlib
import os
import shutil
import sys
import urllib.error

import pytest
import torch

import clip
import clip.download as download
from tools import tiny_clip
from tools.tiny_clip import save_tiny_clip, tiny_clip_model


def _outputs(model):
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    tokens = clip.tokenize(["a photo of a dog.", "a cat"])
    with torch.no_grad():
        return model.encode_image(images), model.encode_text(tokens)


@pytest.mark.parametrize("kind", ["vit", "resnet"])
@pytest.mark.parametrize("fmt", ["state_dict", "torchscript"])
def test_saved_tiny_clip_loads_back_identically(tmp_path, kind, fmt):
    path = save_tiny_clip(str(tmp_path / f"{kind}.pt"), kind=kind, fmt=fmt, seed=4)
    loaded = clip.load("ViT-B/16", path=path, device="cpu")
    assert not loaded.training and loaded.dtype == torch.float32
    expected = _outputs(tiny_clip_model(kind, seed=4))
    for got, want in zip(_outputs(loaded), expected):
        assert torch.equal(got, want)


def test_cli_writes_torchscript_archive_with_openai_keys(tmp_path, monkeypatch, capsys):
    out = tmp_path / "cli" / "tiny.pt"
    monkeypatch.setattr(sys, "argv", ["tiny_clip", "--out", str(out), "--format", "torchscript", "--seed", "2"])
    tiny_clip.main()
    assert "Wrote a tiny vit CLIP (torchscript)" in capsys.readouterr().out
    state = torch.jit.load(str(out), map_location="cpu").state_dict()
    assert set(state) == set(tiny_clip_model("vit", seed=2).state_dict())


def test_load_state_dict_accepts_wrapped_state_dict(tmp_path):
    model = tiny_clip_model("vit", seed=1)
    path = tmp_path / "wrapped.pth"
    torch.save({"state_dict": model.state_dict()}, path)
    state = clip.load_state_dict(str(path))
    assert torch.equal(state["visual.proj"], model.visual.proj)


def test_non_checkpoint_files_are_refused(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not weights")
    with pytest.raises(RuntimeError, match="notes.txt.* is neither .*TorchScript archive nor a state-dict file"):
        clip.load_state_dict(str(text))
    other = tmp_path / "other.pth"
    torch.save({"weight": torch.zeros(2)}, other)
    with pytest.raises(ValueError, match="Cannot map the weights of .*other.pth.*holds no token_embedding.weight"):
        clip.load(None, path=str(other))


def test_missing_path_names_the_file_and_config_key(tmp_path):
    missing = str(tmp_path / "nowhere.pt")
    with pytest.raises(FileNotFoundError) as err:
        clip.load("ViT-B/16", path=missing)
    assert missing in str(err.value) and "MODEL.BACKBONE.PATH" in str(err.value)


def test_unknown_name_lists_the_models(tmp_path):
    with pytest.raises(ValueError) as err:
        clip.resolve_model_file("ViT-H/99", cache_dir=str(tmp_path))
    assert "ViT-H/99" in str(err.value)
    assert all(name in str(err.value) for name in clip.available_models())


def test_model_table():
    assert clip.available_models() == [
        "RN50", "RN101", "RN50x4", "RN50x16", "RN50x64", "ViT-B/32", "ViT-B/16", "ViT-L/14", "ViT-L/14@336px"
    ]
    for url in clip.MODELS.values():
        sha = url.split("/")[-2]
        assert url.startswith("https://openaipublic.azureedge.net/clip/models/") and len(sha) == 64
        int(sha, 16)


def test_default_cache_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CLIP_CACHE_DIR", str(tmp_path))
    assert clip.default_cache_dir() == str(tmp_path)
    monkeypatch.delenv("CLIP_CACHE_DIR")
    assert clip.default_cache_dir() == os.path.expanduser("~/.cache/clip")


def test_cached_file_with_wrong_checksum_is_reported(tmp_path):
    bad = tmp_path / "ViT-B-16.pt"
    bad.write_bytes(b"truncated download")
    actual = hashlib.sha256(b"truncated download").hexdigest()
    expected = clip.MODELS["ViT-B/16"].split("/")[-2]
    with pytest.raises(RuntimeError) as err:
        clip.resolve_model_file("ViT-B/16", cache_dir=str(tmp_path))
    message = str(err.value)
    assert str(bad) in message and actual in message and expected in message and "Delete it" in message


def test_offline_download_gives_one_clear_error(tmp_path, monkeypatch):
    def offline(url, target):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(download, "download_url", offline)
    cache = tmp_path / "cache"
    with pytest.raises(FileNotFoundError) as err:
        clip.load("RN50", cache_dir=str(cache))
    message = str(err.value)
    url = clip.MODELS["RN50"]
    for part in ("RN50.pt", str(cache), url, url.split("/")[-2], "MODEL.BACKBONE.PATH"):
        assert part in message, part
    assert os.listdir(cache) == []


def test_download_lands_in_cache_and_is_verified(tmp_path, monkeypatch):
    source = save_tiny_clip(str(tmp_path / "release.pt"), kind="vit", fmt="torchscript", seed=5)
    with open(source, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    monkeypatch.setitem(download.MODELS, "Tiny", f"https://example.invalid/clip/{sha}/Tiny.pt")
    calls = []

    def fake_download(url, target):
        calls.append(url)
        shutil.copyfile(source, target)

    monkeypatch.setattr(download, "download_url", fake_download)
    cache = tmp_path / "cache"
    model = clip.load("Tiny", cache_dir=str(cache))
    assert os.listdir(cache) == ["Tiny.pt"] and len(calls) == 1
    clip.load("Tiny", cache_dir=str(cache))  # cached: no second download
    assert len(calls) == 1
    for got, want in zip(_outputs(model), _outputs(tiny_clip_model("vit", seed=5))):
        assert torch.equal(got, want)


def test_download_url_is_atomic(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(b"weights" * 1000)
    target = tmp_path / "cache" / "copy.bin"
    target.parent.mkdir()
    download.download_url(source.as_uri(), str(target))  # file:// goes through the same urllib path
    assert target.read_bytes() == source.read_bytes()
    with pytest.raises(urllib.error.URLError):
        download.download_url((tmp_path / "absent.bin").as_uri(), str(tmp_path / "cache" / "absent.bin"))
    assert sorted(os.listdir(target.parent)) == ["copy.bin"]  # no partial file left behind


def test_freshly_downloaded_corrupt_file_is_reported(tmp_path, monkeypatch):
    def error_page(url, target):
        with open(target, "wb") as f:
            f.write(b"<html>proxy error</html>")

    monkeypatch.setattr(download, "download_url", error_page)
    with pytest.raises(RuntimeError, match="RN101.pt.* is corrupt"):
        clip.resolve_model_file("RN101", cache_dir=str(tmp_path))


def test_load_state_dict_of_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="gone.pt"):
        clip.load_state_dict(str(tmp_path / "gone.pt"))
