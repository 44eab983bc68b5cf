"""The README's two commands, CI calling the test one, and what scripts/install.sh installs.

scripts/install.sh runs here against a stand-in interpreter that records its calls, so no
package is installed.
"""
import os
import re
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme_commands():
    """Commands of the README's first block, which must come right after its title."""
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    match = re.match(r"# [^\n]+\n\n```bash\n(.*?)```", text, re.S)
    assert match, "README.md must start with its title and then one bash block"
    return [line.split("#")[0].strip() for line in match.group(1).splitlines() if line.strip()]


def test_readme_starts_with_the_demo_and_test_commands_and_ci_runs_the_test_one():
    demo, test = readme_commands()  # exactly two
    assert (demo, test) == ("bash scripts/demo.sh", "bash scripts/test.sh")
    with open(os.path.join(ROOT, ".ci", "run")) as f:
        ci_lines = [line.strip() for line in f]
    assert test in ci_lines
    with open(os.path.join(ROOT, "scripts", "demo.sh")) as f:
        demo_lines = [line.strip() for line in f]
    assert "bash scripts/install.sh" in demo_lines and "bash scripts/textrefiner/demo.sh \"$@\"" in demo_lines


STAND_IN = """#!/usr/bin/env bash
# a Python that records what it is asked; FAKE_TORCH: the installed torch version ("" = none)
echo "$*" >> "$CALLS"
case "$*" in
    *"import torch; print"*) [ -n "$FAKE_TORCH" ] && echo "$FAKE_TORCH" && exit 0; exit 1 ;;
    *"import sys, torch"*) [ "$FAKE_TORCH" != "1.13.1" ]; exit ;;
    *"pip install torch==2.13.0"*) exit "${FAIL_PINNED:-0}" ;;
esac
exit 0
"""


@pytest.fixture
def run_install(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").write_text(STAND_IN)
    (bin_dir / "python").chmod(0o755)

    def run(fake_torch, cuda, args=(), fail_pinned=0):
        (bin_dir / "nvidia-smi").write_text(f"#!/usr/bin/env bash\nexit {0 if cuda else 1}\n")
        (bin_dir / "nvidia-smi").chmod(0o755)
        calls = tmp_path / "calls.txt"
        calls.write_text("")
        env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", PYTHON=str(bin_dir / "python"),
                   CALLS=str(calls), FAKE_TORCH=fake_torch, FAIL_PINNED=str(fail_pinned))
        proc = subprocess.run(["bash", "scripts/install.sh", *args], cwd=ROOT, env=env, capture_output=True, text=True)
        pips = [line for line in calls.read_text().splitlines() if line.startswith("-m pip")]
        return proc, pips

    return run


def test_install_keeps_an_installed_torch(run_install):
    proc, pips = run_install("2.13.0+cpu", cuda=True)
    assert proc.returncode == 0 and "keeping torch 2.13.0+cpu" in proc.stdout
    assert pips == ["-m pip install --quiet -r requirements.txt"]
    proc, pips = run_install("2.5.1", cuda=False, args=["--dev"])
    assert pips == ["-m pip install --quiet -r requirements-dev.txt"]


def test_install_takes_cpu_torch_without_cuda_and_pypi_torch_with_it(run_install):
    _, pips = run_install("", cuda=False)
    assert pips == ["-m pip install torch==2.13.0", "-m pip install --quiet -r requirements.txt"]
    _, pips = run_install("", cuda=False, fail_pinned=1)  # no local CPU wheel: PyTorch's CPU index
    assert pips[1] == "-m pip install torch --index-url https://download.pytorch.org/whl/cpu"
    _, pips = run_install("", cuda=True)
    assert pips == ["-m pip install torch>=2.1", "-m pip install --quiet -r requirements.txt"]


def test_install_refuses_an_old_torch_and_unknown_arguments(run_install):
    proc, pips = run_install("1.13.1", cuda=False)
    assert proc.returncode == 1 and pips == []
    assert "torch 1.13.1 is installed; this framework needs torch>=2.1" in proc.stderr
    proc, _ = run_install("2.13.0", cuda=False, args=["--cuda"])
    assert proc.returncode == 2 and "usage: bash scripts/install.sh [--dev]" in proc.stderr
