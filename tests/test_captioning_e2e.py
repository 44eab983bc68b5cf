"""caption.py end to end on miniature COCO / Flickr30k / NoCaps layouts with tiny CLIPs and a tiny OPT."""
import json
import os

import pytest

from engine.rerun import RunConflict
from tta.captioning.cli import main
from tests.captioning_fixtures import tiny_opt_folder, write_caption_layouts  # noqa: F401

TINY = ["--prefix_length", "4", "--prefix_length_clip", "4", "--num_layers", "2"]


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    return write_caption_layouts(tmp_path_factory.mktemp("captions"))


@pytest.fixture(scope="module")
def trained(layouts, tiny_opt_folder, tiny_vit_path, tmp_path_factory):
    """Features of the miniature COCO train set and a CapDec mapper trained on them (2 epochs)."""
    out = tmp_path_factory.mktemp("runs")
    features = str(out / "features.safetensors")
    coco = os.path.join(layouts, "coco2014")
    main(["extract", "--annotations", os.path.join(coco, "coco_karpathy_train.json"), "--images_root", coco,
          "--clip_model_type", tiny_vit_path, "--out", features])
    main(["train", "--data", features, "--out_dir", str(out / "capdec"), "--cap_model", "CapDec", "--llm_config_dir",
          tiny_opt_folder, "--clip_model_type", tiny_vit_path, "--lr", "1e-3", "--bs", "4", "--epochs", "2",
          "--warmup_steps", "1", *TINY])
    return out


def run_tta(trained, layouts, opt, clip, teacher, annotations, images_root, output, *extra):
    main(["tta", "--checkpoint", str(trained / "capdec" / "ckpt-latest.safetensors"), "--annotations", annotations,
          "--images_root", images_root, "--llm_config_dir", opt, "--clip_model_type", clip, "--reward_arch", teacher,
          "--clipscore_arch", clip, "--output", output, "--sample_k", "3", "--tta_steps", "1", "--tta_lr", "1e-4", *TINY, *extra])
    with open(os.path.join(output, "results.json")) as f:
        return json.load(f)


@pytest.mark.slow
def test_train_then_tta_on_flickr_with_all_metrics(trained, layouts, tiny_opt_folder, tiny_vit_path, tiny_teacher_path):
    losses = json.load(open(trained / "capdec" / "loss_per_epoch.json"))["train"]
    assert len(losses) == 2
    flickr = os.path.join(layouts, "flickr30k")
    out = str(trained / "c2f")
    results = run_tta(trained, layouts, tiny_opt_folder, tiny_vit_path, tiny_teacher_path,
                      os.path.join(flickr, "annotations", "flickr30k_test.json"), flickr, out)
    assert results["images"] == 3
    assert set(results["metrics"]) == {"BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr",
                                       "CLIPScore", "RefCLIPScore"}
    captions = json.load(open(os.path.join(out, "captions.json")))
    assert sorted(captions) == ["1000.jpg", "1001.jpg", "1002.jpg"]
    assert json.load(open(os.path.join(out, "run.json")))["status"] == "finished"


@pytest.mark.slow
def test_zero_tta_on_coco_nocaps_split_and_reruns(trained, layouts, tiny_opt_folder, tiny_vit_path, tiny_teacher_path, capsys):
    coco = os.path.join(layouts, "coco2014")
    out = str(trained / "coco_zero")
    args = (trained, layouts, tiny_opt_folder, tiny_vit_path, tiny_teacher_path,
            os.path.join(coco, "coco_karpathy_test.json"), coco, out)
    results = run_tta(*args, "--tta_steps", "0", "--no_coco_metrics")
    assert set(results["metrics"]) == {"CLIPScore", "RefCLIPScore"} and results["images"] == 3
    run_tta(*args, "--tta_steps", "0", "--no_coco_metrics")  # the same run again: kept
    assert "is finished" in capsys.readouterr().out
    with pytest.raises(RunConflict, match="tta_steps"):
        run_tta(*args, "--tta_steps", "2", "--no_coco_metrics")

    nocaps = os.path.join(layouts, "nocaps")
    main(["split_nocaps", os.path.join(nocaps, "nocaps_val_4500_captions.json")])
    assert sorted(f for f in os.listdir(nocaps) if f.endswith(".json")) == [
        "nocaps_val_1_in-domain.json", "nocaps_val_1_in-domain_clipscore.json", "nocaps_val_1_out-domain.json",
        "nocaps_val_1_out-domain_clipscore.json", "nocaps_val_2_near-domain.json", "nocaps_val_2_near-domain_clipscore.json",
        "nocaps_val_4500_captions.json"]
    results = run_tta(trained, layouts, tiny_opt_folder, tiny_vit_path, tiny_teacher_path,
                      os.path.join(nocaps, "nocaps_val_2_near-domain.json"), os.path.join(nocaps, "val"),
                      str(trained / "c2n_near"), "--no_coco_metrics")
    assert results["images"] == 2


def test_user_errors_name_the_fix(layouts, tmp_path):
    coco = os.path.join(layouts, "coco2014")
    with pytest.raises(FileNotFoundError, match=r"not under --images_root .*first: .*COCO_val2014_000000000100.jpg"):
        main(["tta", "--checkpoint", "x", "--annotations", os.path.join(coco, "coco_karpathy_test.json"),
              "--images_root", str(tmp_path), "--output", str(tmp_path / "o")])
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": []}')
    with pytest.raises(ValueError, match="must be a non-empty JSON list"):
        main(["tta", "--checkpoint", "x", "--annotations", str(bad), "--images_root", coco, "--output", str(tmp_path / "o")])
    with pytest.raises(ValueError, match="add --use_image_embedding"):
        main(["train", "--data", "x", "--out_dir", str(tmp_path / "t"), "--cap_model", "CLIPCap"])
