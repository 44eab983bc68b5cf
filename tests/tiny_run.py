"""The tiny run the end-to-end tests start from: train.py's arguments for a tiny CLIP (tools/tiny_clip.py)
on a miniature data set (tools/synthetic_data.py) with a short schedule, and the ways a test runs it:
in this process (`main`, `build`), as `python train.py` (`train_py`), or through a shell script (`run`
with `script_env`)."""
import os
import re
import subprocess
import sys

import train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_opts(clip_path=None, *, batch=4, shots=4, epochs=2, workers=0):
    """KEY VALUE opts of a tiny run: 32-pixel images, `workers` loader processes, and, unless None (the
    config's value then), the train batch, the shots per class and the epochs; the CLIP file last."""
    opts = ["INPUT.SIZE", "(32, 32)", "DATALOADER.NUM_WORKERS", str(workers)]
    for key, value in (("DATALOADER.TRAIN_X.BATCH_SIZE", batch), ("DATASET.NUM_SHOTS", shots),
                       ("OPTIM.MAX_EPOCH", epochs)):
        if value is not None:
            opts += [key, str(value)]
    return opts + (["MODEL.BACKBONE.PATH", clip_path] if clip_path else [])


def config_path(config):
    """configs/trainers/<config>.yaml as an absolute path ("CoOp/vit_b16_ep50_ctxv1", ".yaml" optional)."""
    return os.path.join(REPO, "configs/trainers", config if config.endswith(".yaml") else config + ".yaml")


def argv(root, out, clip_path, trainer="CoOp", config="CoOp/vit_b16_ep50_ctxv1", *opts, dataset="oxford_pets",
         seed=1, flags=(), **tiny):
    """train.py's argument list: the data set's and the trainer's configs, `flags` (e.g. --no-train),
    then the tiny opts (`tiny`: batch, shots, epochs, workers) and the test's own `opts`, which win."""
    return ["--root", root, "--seed", str(seed), "--output-dir", out, "--trainer", trainer,
            "--dataset-config-file", os.path.join(REPO, "configs/datasets", f"{dataset}.yaml"),
            "--config-file", config_path(config), *flags, *tiny_opts(clip_path, **tiny), *opts]


def parse(*args, **kwargs):
    """train.py's parsed arguments for `argv(*args, **kwargs)`."""
    return train.build_parser().parse_args(argv(*args, **kwargs))


def main(*args, **kwargs):
    """train.main on `argv(*args, **kwargs)`, in this process: the trainer, trained unless --no-train."""
    return train.main(parse(*args, **kwargs))


def build(*args, flags=(), **kwargs):
    """The trainer as train.py builds it, not trained (--no-train)."""
    return main(*args, flags=("--no-train", *flags), **kwargs)


def env(**extra):
    """A subprocess's environment: the repository importable, one torch thread (tiny models gain
    nothing from more, and a busy machine loses much), plus `extra`."""
    return {**os.environ, "PYTHONPATH": REPO, "OMP_NUM_THREADS": "1", **extra}


def script_env(data, output, shots=None, **extra):
    """The environment of scripts/<method>/*.sh: DATA, OUTPUT, SHOTS unless None (see scripts/runs.sh)."""
    return env(DATA=str(data), OUTPUT=str(output), **({} if shots is None else {"SHOTS": str(shots)}), **extra)


def run(cmd, env, code=0, stderr=False):
    """Runs cmd (a list) in the repository; asserts its exit status is `code`; returns its stdout
    (followed by its stderr if `stderr`)."""
    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    assert res.returncode == code, res.stdout[-3000:] + res.stderr[-3000:]
    return res.stdout + res.stderr if stderr else res.stdout


def train_py(*args, **kwargs):
    """`python train.py` on `argv(*args, **kwargs)` as a subprocess (exit status unchecked)."""
    return subprocess.run([sys.executable, "train.py", *argv(*args, **kwargs)], cwd=REPO, env=env(),
                          capture_output=True, text=True)


def accuracy(log_text):
    """The last "* accuracy: N%" of a log."""
    return float(re.findall(r"\* accuracy: ([\d.]+)%", log_text)[-1])
