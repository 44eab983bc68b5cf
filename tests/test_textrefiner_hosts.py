"""TextRefiner on the IVLP, MaPLe and PromptSRC hosts: the losses against a recomputation written
here, the host choice, the shape of every host adapter (a subclass of its host only), and the
user path through the scripts (base2new train -> test -> table)."""
import os
import re
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from tests import tiny_run
import train
from engine import TRAINER_REGISTRY
from tools.synthetic_data import make_dataset
from trainers.prompt_trainer import PromptTrainer
from trainers.textrefiner import trainer as textrefiner_trainer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# host -> (its TextRefiner config, opts fitting the 2-block tiny CLIP, fp32)
HOSTS = {
    "IVLP": ("ivlp_vit_b16_c2_ep5_batch4_2+2ctx", ["TRAINER.IVLP.PROMPT_DEPTH_VISION", "2",
                                                   "TRAINER.IVLP.PROMPT_DEPTH_TEXT", "2", "TRAINER.IVLP.PREC", "fp32"]),
    "MaPLe": ("maple_vit_b16_c2_ep5_batch4_2ctx", ["TRAINER.MAPLE.PROMPT_DEPTH", "2", "TRAINER.MAPLE.PREC", "fp32"]),
    "PromptSRC": ("promptsrc_vit_b16_c2_ep20_batch4_4+4ctx", [
        "TRAINER.PROMPTSRC.PROMPT_DEPTH_VISION", "2", "TRAINER.PROMPTSRC.PROMPT_DEPTH_TEXT", "2",
        "TRAINER.PROMPTSRC.PREC", "fp32", "TRAINER.PROMPTSRC.GPA_MEAN", "1"]),
}


def _trainer(root, out, clip_path, host):
    config, opts = HOSTS[host]
    return tiny_run.build(root, out, clip_path, "TextRefiner", f"TextRefiner/{config}", "DATASET.SUBSAMPLE_CLASSES",
                          "base", *opts, shots=2, epochs=1)


@pytest.mark.parametrize("host", sorted(HOSTS))
def test_refiner_losses_on_host(tmp_path, pets_root, tiny_vit_path, host):
    trainer = _trainer(pets_root, str(tmp_path / host), tiny_vit_path, host)
    assert type(trainer).__name__ == f"TextRefiner{host}"
    trainer.set_model_mode("train")
    model, memory = trainer.model, trainer.memory
    gen = torch.Generator().manual_seed(2)
    images, labels = torch.randn(4, 3, 32, 32, generator=gen), torch.tensor([0, 2, 1, 2])
    cache = memory.get_cache().clone()

    loss, parts = trainer.losses(images, labels)

    with torch.no_grad():  # train mode: BN uses the batch statistics, as in the step
        scale = model.logit_scale.exp()
        glob, tokens, attn = model.encode_image(images, return_local=True)  # [4, 32], [4, 17, 32], [4, 16]
        v = F.normalize(glob, dim=-1)
        t = model.text_features()  # [3, 32], normalised
        z = model.mid_image_trans(tokens)
        idx = torch.cat([torch.zeros(4, 1, dtype=torch.long), attn.topk(5, dim=-1).indices + 1], dim=1)
        local = torch.cat([torch.gather(z, 1, idx.unsqueeze(-1).expand(4, 6, 32)), z.mean(1, keepdim=True)], 1)
        read = (t @ cache.t()).softmax(dim=1) @ cache
        refined = 0.2 * memory.extractor(torch.cat([t, read], dim=-1)) + t
        logits = scale * v @ refined.t()
        ce = F.cross_entropy(logits, labels)
        sem = F.cross_entropy(scale * local.reshape(-1, 32) @ t.t(), labels.repeat_interleave(7))
        reg = (F.normalize(refined, dim=-1) - t).abs().mean()
        expected = ce + sem / 50 + 20 * reg
        if host == "PromptSRC":  # its own constraints stay, on the refined logits and the host's text
            frozen = F.normalize(model.encode_image(images, use_prompts=False), dim=-1)
            frozen_logits = scale * frozen @ trainer.fixed_embeddings.t()
            kl = F.kl_div(logits.log_softmax(1), frozen_logits.log_softmax(1), reduction="sum", log_target=True)
            expected = expected + kl / 12 + 25 * (t - trainer.fixed_embeddings).abs().mean() + 10 * (v - frozen).abs().mean()
    torch.testing.assert_close(parts["global"], ce)
    torch.testing.assert_close(parts["local"], sem / 50)
    torch.testing.assert_close(parts["feature"], 20 * reg)
    torch.testing.assert_close(loss.detach(), expected)
    assert not torch.equal(memory.get_cache(), cache)  # written after the read

    loss.backward()
    assert memory.extractor.weight.grad is not None and model.mid_image_trans.conv1[0].weight.grad is not None
    assert model.prompt_learner.ctx.grad is not None
    assert trainer.get_model_names()[1] == "Memory"


@pytest.mark.parametrize("host", sorted(textrefiner_trainer.HOSTS))
def test_host_adapter_subclasses_its_host_only(host):
    # TextRefiner<Host> -> <Host> -> ... -> PromptTrainer: one base, the registered host trainer;
    # nothing else in the MRO comes from the TextRefiner package (no mixin, no adapter on an adapter)
    adapter = textrefiner_trainer.HOSTS[host]
    host_trainer = TRAINER_REGISTRY.get(host)
    assert adapter.__name__ == f"TextRefiner{host}"
    assert adapter.__bases__ == (host_trainer,)
    assert adapter.__mro__[1:] == host_trainer.__mro__
    assert [c for c in adapter.__mro__ if c.__module__.startswith("trainers.textrefiner")] == [adapter]
    # the host's own chain to PromptTrainer stays as shallow as today's (PromptSRC on IVLP, CoCoOp / KgCoOp on CoOp)
    assert adapter.__mro__.index(PromptTrainer) <= 3


def test_unknown_host_lists_the_supported_ones(tmp_path, pets_root, tiny_vit_path):
    argv = ["--root", pets_root, "--output-dir", str(tmp_path / "x"), "--trainer", "TextRefiner",
            "--dataset-config-file", os.path.join(REPO, "configs/datasets/oxford_pets.yaml"),
            "TRAINER.TF.HOST", "VPT", "MODEL.BACKBONE.PATH", tiny_vit_path]
    with pytest.raises(ValueError, match='"VPT" is not supported; available hosts: CoOp, PromptKD, IVLP, MaPLe, PromptSRC'):
        train.main(train.build_parser().parse_args(argv))
    env = dict(os.environ, HOST="VPT")
    res = subprocess.run(["bash", "scripts/textrefiner/base2new_train.sh", "dtd", "1"], cwd=REPO, env=env,
                         capture_output=True, text=True)
    assert res.returncode == 2 and 'Unknown HOST "VPT": TextRefiner runs on CoOp, PromptKD, IVLP, MaPLe' in res.stderr


@pytest.mark.parametrize("method, trainer, cfg", [("maple", "MaPLe", "vit_b16_c2_ep5_batch4_2ctx"),
                                                  ("ivlp", "IVLP", "vit_b16_c2_ep5_batch4_2+2ctx")])
def test_baseline_test_script_reads_the_reference_folder(tmp_path, method, trainer, cfg):
    env = dict(os.environ, OUTPUT=str(tmp_path))
    res = subprocess.run(["bash", f"scripts/{method}/base2new_test.sh", "dtd", "1"], cwd=REPO, env=env,
                         capture_output=True, text=True)
    folder = tmp_path / f"base2new/train_base/dtd/shots_16/{trainer}/{cfg}/seed1"
    assert res.returncode == 1
    assert f"No trained model at {folder}: run scripts/{method}/base2new_train.sh dtd 1 first" in res.stderr


@pytest.mark.slow
def test_hosts_through_the_scripts(tmp_path, tiny_vit_path):
    """TextRefiner on each new host: train -> test -> one side-by-side table (the MaPLe and IVLP
    scripts call the same two runs.sh functions with their own trainer)."""
    data = tmp_path / "data"
    make_dataset("OxfordPets", str(data), num_classes=6, images_per_class=6, seed=0)
    env = tiny_run.script_env(data, tmp_path / "output", 2)
    tiny = tiny_run.tiny_opts(tiny_vit_path, shots=None, epochs=1)
    for host, (_, opts) in HOSTS.items():
        run_env = dict(env, HOST=host)
        tiny_run.run(["bash", "scripts/textrefiner/base2new_train.sh", "oxford_pets", "1", *tiny, *opts], run_env)
        out = tiny_run.run(["bash", "scripts/textrefiner/base2new_test.sh", "oxford_pets", "1", *tiny, *opts], run_env)
        assert "--load-epoch 1" in out  # the last epoch
    base = tmp_path / "output/base2new/train_base/oxford_pets/shots_2"
    assert {"MultiModalPromptLearner", "Memory", "log.txt"} <= set(
        os.listdir(base / "TextRefiner/maple_vit_b16_c2_ep5_batch4_2ctx/seed1"))
    table = tiny_run.run([sys.executable, "parse_test_res.py", "--base2new", str(tmp_path / "output/base2new")], env)
    methods = ["TextRefiner/ivlp_vit_b16_c2_ep5_batch4_2+2ctx", "TextRefiner/maple_vit_b16_c2_ep5_batch4_2ctx",
               "TextRefiner/promptsrc_vit_b16_c2_ep20_batch4_4+4ctx"]
    side = table[table.index("Side by side"):]
    assert all(f"shots_2/{m}" in side for m in methods)
    row = next(line for line in side.splitlines() if line.startswith("oxford_pets"))
    assert len(re.findall(r"[\d.]+ / [\d.]+ / [\d.]+", row)) == 3
