"""scripts/rlcf/*caption* end to end on the miniature layouts (tiny CLIPs and OPT through the environment)."""
import json
import os
import subprocess
import sys

import pytest

from tests.captioning_fixtures import tiny_opt_folder, write_caption_layouts  # noqa: F401

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--prefix_length", "4", "--prefix_length_clip", "4", "--num_layers", "2"]


def bash(script, env, *args):
    done = subprocess.run(["bash", f"scripts/rlcf/{script}", *args], cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_caption_scripts(tmp_path, tiny_opt_folder, tiny_vit_path, tiny_teacher_path):
    data = write_caption_layouts(tmp_path / "data")
    out = tmp_path / "output"
    env = dict(os.environ, DATA=data, OUTPUT=str(out), LLM=tiny_opt_folder, CLIP_ARCH=tiny_vit_path,
               REWARD_ARCH=tiny_teacher_path, CLIPSCORE_ARCH=tiny_vit_path, COCO_METRICS="0",
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    small = ["--epochs", "1", "--bs", "4", "--lr", "1e-3", "--warmup_steps", "1", *TINY]
    bash("train_capdec_coco.sh", env, *small)
    bash("train_clipcap_coco.sh", env, *small)
    assert (out / "capdec_opt125m_transformer_coco_01" / "ckpt-latest.safetensors").is_file()
    assert (out / "clipcap_opt125m_transformer_coco_01" / "ckpt-latest.safetensors").is_file()
    tta = [*TINY, "--tta_steps", "1", "--sample_k", "2"]
    bash("tta_clipcap_c2f.sh", env, *tta)
    bash("tta_capdec_c2n.sh", env, *tta)
    bash("eval_caption.sh", env, "capdec", "flickr", *TINY)
    runs = sorted(os.listdir(out / "capdec_opt125m_transformer_coco_01"))
    assert runs == ["c2n_val_1_in-domain_tta_01", "c2n_val_1_out-domain_tta_01", "c2n_val_2_near-domain_tta_01",
                    "ckpt-latest.safetensors", "clip_project", "coco2flickr_test_01", "loss_per_epoch.json", "run.json"]
    for run in (out / "clipcap_opt125m_transformer_coco_01" / "coco2flickr30k_tta_01", out / "capdec_opt125m_transformer_coco_01" / "coco2flickr_test_01"):
        results = json.load(open(run / "results.json"))
        assert results["images"] == 3 and set(results["metrics"]) == {"CLIPScore", "RefCLIPScore"}
