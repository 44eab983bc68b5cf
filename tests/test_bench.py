"""Every benchmark imports and runs: each bench/ script's smallest mode (its SMALLEST arguments:
tiny shapes, one repeat) end to end, as a user runs it, so that a benchmark cannot rot unnoticed."""
import importlib
import os
import re
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODULES = sorted(name[:-3] for name in os.listdir(os.path.join(REPO, "bench"))
                 if name.endswith(".py") and name != "__init__.py")
# what each benchmark's smallest run must print (its result lines)
PRINTS = {
    "bench_caption_tta": [r"one K-beam generation: \d+\.\d+ s", r"ratio TTA / \(steps x generation\): \d+\.\d+"],
    "bench_cocoop_eval": [r"ratio TextRefiner on CoCoOp / CoCoOp: \d+\.\d+"],
    "bench_eval_cache": [r"evaluation phase ratio without / with cache: \d+\.\d+ ± \d+\.\d+",
                         r"projected for a 25000-image test split: evaluation phase ratio at least -?\d+\.\d+"],
    "bench_quickgelu": [r"QuickGELU share of the eager forward -?\d+\.\d%",
                        r"features bit-identical True, CoOp logits bit-identical True"],
    "bench_retrieval": [rf"^{d}: gallery \d+, 2 steps, .* ratio \d+\.\d+ \+- \d+\.\d+" for d in ("image2text", "text2image")],
    "bench_text_cache": [rf"^{m} +\d+ prompts: without cache \d+\.\d+ s, with cache \d+\.\d+ ms, ratio \d+\.\d+ ± \d+\.\d+"
                         for m in ("ZeroshotCLIP", "ZeroshotCLIP2", "KgCoOp", "TaskRes", "PromptSRC")],
    "bench_textrefiner": [r"train step, batch 8: ours \d+\.\d+ s", r"speed-up x\d+\.\d+",
                          r"eval, batch 32, 8 classes: ours \d+\.\d+ img/s"],
    "bench_tokenizer": [r"world captions +python +20 captions: cold", r"made-up words +python +20 captions: cold"],
    "bench_tta": [rf'^{case} +\{{.*"s/image' for case in ("views", "tpt", "rlcf-prompt", "rlcf-tune",
                                                            "memory-1000", "memory-1000-chunked")],
    "gpu_check": [r"PASS +CoOp fp32 tiny CLIP", r"all \d+ checks passed"],
}


def test_every_benchmark_is_listed():
    scripts = [name for name in MODULES if hasattr(importlib.import_module(f"bench.{name}"), "main")]
    assert sorted(scripts) == sorted(PRINTS), "a benchmark without its expected output here, or one that is gone"


@pytest.mark.slow
@pytest.mark.parametrize("name", MODULES)
def test_benchmark_imports_and_its_smallest_mode_runs(name):
    module = importlib.import_module(f"bench.{name}")
    if not hasattr(module, "main"):
        return  # a helper of the benchmarks: that it imports is the check
    assert isinstance(getattr(module, "SMALLEST", None), list), (
        f"bench/{name}.py has no SMALLEST: give it the arguments of its smallest mode (tiny shapes, one repeat)")
    res = subprocess.run([sys.executable, os.path.join("bench", f"{name}.py"), *module.SMALLEST], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    for pattern in PRINTS[name]:
        assert re.search(pattern, res.stdout, re.MULTILINE), (pattern, res.stdout[-2000:])
