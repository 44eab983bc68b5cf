"""The generated world: rendering, captions, data sets in the split-file layout, the pretrain command."""
import json
import os
import time

import numpy as np
import pytest
import torch

import clip
import datasets  # noqa: F401  (registers the data sets)
from engine.config import get_cfg_default
from engine.data.datasets import build_dataset
from tools.world import data, pretrain
from tools.world.captions import caption, pretraining_batch, random_attributes
from tools.world.render import COLOURS, IMAGE_SIZE, SHAPES, STYLES, Attributes, render


def test_rendering_is_deterministic_under_a_seed():
    images_a, texts_a = pretraining_batch(np.random.default_rng(5), 16)
    images_b, texts_b = pretraining_batch(np.random.default_rng(5), 16)
    images_c, _ = pretraining_batch(np.random.default_rng(6), 16)
    assert images_a.shape == (16, IMAGE_SIZE, IMAGE_SIZE, 3) and images_a.dtype == np.uint8
    assert np.array_equal(images_a, images_b) and texts_a == texts_b
    assert not np.array_equal(images_a, images_c)
    ds = data.DATASETS["WorldShapes"]
    first = [px for _, _, px in data.generate(ds, "test", seed=0)]
    again = [px for _, _, px in data.generate(ds, "test", seed=0)]
    other = [px for _, _, px in data.generate(ds, "test", seed=1)]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


def test_rendering_speed_sanity():
    rng = np.random.default_rng(0)
    pretraining_batch(rng, 8)  # shape masks are cached on first use
    start = time.perf_counter()
    pretraining_batch(rng, 500)
    per_second = 500 / (time.perf_counter() - start)
    assert per_second > 250, f"{per_second:.0f} images/s (about 2,000 on an idle core)"


def test_object_pixels_carry_its_colour_and_shapes_differ():
    rng = np.random.default_rng(0)
    red = render(Attributes("circle", "red", background="white", size="large"), rng).astype(float)
    centre = red[IMAGE_SIZE // 2 - 2:IMAGE_SIZE // 2 + 2, IMAGE_SIZE // 2 - 2:IMAGE_SIZE // 2 + 2].mean((0, 1))
    assert centre[0] > centre[1] + 100 and centre[0] > centre[2] + 100  # red object
    corner = red[:3, :3].mean((0, 1))
    assert corner.min() > 190  # white background
    masks = {s: render(Attributes(s, "blue", style="sketch"), np.random.default_rng(1)) for s in SHAPES}
    assert len({m.tobytes() for m in masks.values()}) == len(SHAPES)
    with pytest.raises(ValueError, match='Unknown colour "teal". Known: red'):
        render(Attributes("circle", "teal"), rng)


def test_captions_name_only_what_is_shown():
    rng = np.random.default_rng(0)
    for _ in range(300):
        attrs = random_attributes(rng)
        text = caption(attrs, rng)
        assert text.endswith(".") and (attrs.shape in text or "shape" in text)
        if attrs.style == "sketch":
            assert not any(p in text for p in ("striped", "dotted", "checkered"))
        named_colours = [c for c in COLOURS if c in text.rstrip(".").split()]
        assert named_colours in ([], [attrs.colour])
        named_styles = [s for s in STYLES if f" {s} of" in f" {text}"]
        assert named_styles in ([], [attrs.style], ["photo", attrs.style])  # "noisy photo" holds "photo"


def make_cfg(root, name, num_shots=-1, subsample="all", seed=1):
    cfg = get_cfg_default()
    cfg.DATASET.ROOT = str(root)
    cfg.DATASET.NAME = name
    cfg.DATASET.NUM_SHOTS = num_shots
    cfg.DATASET.SUBSAMPLE_CLASSES = subsample
    cfg.SEED = seed
    return cfg


def test_world_datasets_layout_splits_and_base_new(tmp_path, capsys):
    data.write_world(str(tmp_path), ["world_shapes", "WorldObjectsSketch"])
    ds_info = data.DATASETS["WorldShapes"]
    folder = tmp_path / "world_shapes"
    split = json.loads((folder / "split_WorldShapes.json").read_text())
    assert {k: len(v) for k, v in split.items()} == {k: 8 * ds_info.counts[k] for k in ("train", "val", "test")}
    path, label, cname = split["test"][0]
    assert (folder / "images" / path).is_file() and (label, cname) == (0, "circle")

    ds = build_dataset(make_cfg(tmp_path, "WorldShapes"))
    assert ds.classnames == list(SHAPES) and len(ds.test) == 8 * ds_info.counts["test"]
    base = build_dataset(make_cfg(tmp_path, "WorldShapes", num_shots=16, subsample="base"))
    new = build_dataset(make_cfg(tmp_path, "WorldShapes", num_shots=16, subsample="new"))
    assert base.classnames == list(SHAPES[:4]) and new.classnames == list(SHAPES[4:])
    assert len(base.train_x) == 4 * 16 and len(base.val) == 4 * 4
    assert len(new.test) == 4 * ds_info.counts["test"]

    sketch = build_dataset(make_cfg(tmp_path, "WorldObjectsSketch"))
    assert sketch.val is None and sketch.train_x is sketch.test and sketch.num_classes == 64
    assert sketch.classnames[:2] == ["red circle", "red square"]

    out = capsys.readouterr().out
    data.write_world(str(tmp_path), ["WorldShapes"])  # present: not written again
    assert "WorldShapes: found in" in capsys.readouterr().out
    (tmp_path / "world_patterns").mkdir()  # a folder without its split file
    with pytest.raises(FileNotFoundError, match="split_WorldPatterns.json.*python -m tools.world.data --root"):
        build_dataset(make_cfg(tmp_path, "WorldPatterns"))
    assert "WorldShapes: wrote" in out
    with pytest.raises(ValueError, match='Unknown data set "world_cats"'):
        data.write_world(str(tmp_path), ["world_cats"])


@pytest.mark.slow
def test_pretrain_command_caches_and_loads_through_build_model(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(pretrain.CACHE_ENV, str(tmp_path / "cache"))
    argv = ["--steps", "2", "--batch-size", "8"]
    assert pretrain.main(argv) == 0
    out = capsys.readouterr().out
    path = out.strip().splitlines()[-1]
    assert path.startswith(str(tmp_path / "cache")) and os.path.isfile(path)
    assert "pretrain step [2/2]" in out and "zero-shot WorldObjects " in out and "chance 1.6%" in out

    start = time.perf_counter()
    assert pretrain.main(argv) == 0
    assert time.perf_counter() - start < 2.0
    out = capsys.readouterr().out
    assert "World CLIP found at" in out and out.strip().splitlines()[-1] == path and "pretrain step" not in out
    assert pretrain.main(argv + ["--print-path"]) == 0
    assert capsys.readouterr().out.strip() == path

    model = clip.build_model(torch.load(path, map_location="cpu"))
    assert model.visual.input_resolution == IMAGE_SIZE and model.transformer.width == 64
    assert model.encode_text(clip.tokenize(["a sketch of a red star."])).shape == (1, 64)
    with pytest.raises(ValueError, match="Unknown pretraining setting"):
        pretrain.ensure_world_clip(str(tmp_path / "x.pt"), depth=3)
