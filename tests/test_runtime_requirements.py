"""Everything a README command imports is installed by the install step.

The entry points are the Python commands that README.md, docs/ and the shell scripts run
(``python train.py``, ``python -m tools.world.pretrain``, ...) plus every module of bench/,
lpclip/ and tools/world/. From each, the imports are followed through the project's own modules
(the whole file: imports inside functions run too, e.g. matplotlib when a plot is asked for);
every third-party module reached must come from a distribution that requirements.txt names
(requirements-dev.txt for the CI tools). The demo's matplotlib was once installed by the test
tools only, so the tests passed while `bash scripts/demo.sh` failed on a fresh machine.
"""
import ast
import importlib.metadata
import os
import re
import sys

from packaging.utils import canonicalize_name

from tools.check_requirements import read_requirements

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMAND_FILES = ("README.md", "docs", "scripts", "bench", "lpclip", ".ci")
ALWAYS = ("bench", "lpclip", os.path.join("tools", "world"))
DEV_ONLY = {"tools.check_requirements"}  # CI's tool (README: Install and tests); requirements-dev.txt installs its imports
# imported where installed, with a fallback where not (named with the reason)
OPTIONAL = {"instant_clip_tokenizer": "clip/tokenizer.py's faster backend, pure Python without it"}
PYTHON_COMMAND = re.compile(r"python3?\s+(?:-m\s+([A-Za-z_][\w.]*)|([\w./-]+\.py))")


def module_file(name):
    """The project's file of module ``name`` (a.b -> a/b.py or a/b/__init__.py), or None."""
    base = os.path.join(REPO, *name.split("."))
    for path in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(path):
            return path
    return None


def command_files():
    """README.md, and the Markdown pages and shell scripts (.ci/run too) under the other COMMAND_FILES."""
    for entry in COMMAND_FILES:
        path = os.path.join(REPO, entry)
        if os.path.isfile(path):
            yield path
        for folder, _, names in os.walk(path):
            yield from (os.path.join(folder, n) for n in names if n.endswith((".md", ".sh")) or n == "run")


def command_modules():
    """Module names of the Python commands the docs and scripts run that are files of the project."""
    found = set()
    for path in command_files():
        with open(path) as f:
            for module, script in PYTHON_COMMAND.findall(f.read()):
                name = module or script[:-3].lstrip("./").replace("/", ".")
                if module_file(name):
                    found.add(name)
    return found


def always_modules():
    return {f"{folder.replace(os.sep, '.')}.{name[:-3]}" for folder in ALWAYS
            for name in os.listdir(os.path.join(REPO, folder)) if name.endswith(".py") and name != "__init__.py"}


def imports_of(name):
    """(project modules, third-party top-level names) that module ``name``'s file imports."""
    path = module_file(name)
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    local, external = set(), set()
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(p for p in [*parent, base] if p)
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]  # a name may be a submodule
        else:
            continue
        for target in targets:
            top = target.split(".")[0]
            if module_file(top):
                parts = target.split(".")
                local.update(".".join(parts[:i]) for i in range(1, len(parts) + 1) if module_file(".".join(parts[:i])))
            elif node.__class__ is ast.Import or not getattr(node, "level", 0):
                external.add(top)
    return local, external


def third_party_imports(entry_points):
    """{top-level module: a project module that imports it} reachable from ``entry_points``."""
    seen, todo, found = set(), list(entry_points), {}
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        local, external = imports_of(name)
        todo.extend(local - seen)
        for top in external - set(sys.stdlib_module_names) - {"__future__"}:
            found.setdefault(top, name)
    return found


def uncovered(entry_points, requirements_file):
    """Third-party imports of ``entry_points`` that no requirement of ``requirements_file`` installs."""
    required = {canonicalize_name(r.name) for r in read_requirements(os.path.join(REPO, requirements_file))}
    providers = importlib.metadata.packages_distributions()
    problems = []
    for top, importer in sorted(third_party_imports(entry_points).items()):
        if top in OPTIONAL:
            continue
        dists = {canonicalize_name(d) for d in providers.get(top, [])}
        if not dists & required:
            what = f"installed from {sorted(dists)}" if dists else "not installed here"
            problems.append(f"`import {top}` (from {importer}) is {what}, which {requirements_file} does not name")
    return problems


def test_commands_are_found():
    commands = command_modules()
    assert {"train", "tta", "parse_test_res", "tools.world.pretrain", "tools.world.data", "lpclip.linear_probe",
            "bench.gpu_check", "datasets.split_files", "tools.check_requirements"} <= commands, commands


def test_every_runtime_import_of_a_command_is_in_requirements_txt():
    entry_points = (command_modules() | always_modules()) - DEV_ONLY
    reached = third_party_imports(entry_points)
    assert {"torch", "numpy", "PIL", "yacs", "matplotlib", "safetensors"} <= set(reached), sorted(reached)
    assert uncovered(entry_points, "requirements.txt") == []


def test_ci_tools_imports_are_in_requirements_dev_txt():
    assert uncovered(DEV_ONLY, "requirements-dev.txt") == []


def test_a_command_importing_an_unlisted_package_is_caught(tmp_path):
    """What the check reports for a requirement that is missing (matplotlib taken out of requirements.txt)."""
    with open(os.path.join(REPO, "requirements.txt")) as f:
        lines = [line for line in f if line.strip() != "matplotlib"]
    (tmp_path / "requirements.txt").write_text("".join(lines))
    problems = uncovered({"parse_test_res"}, str(tmp_path / "requirements.txt"))
    assert len(problems) == 1 and problems[0].startswith("`import matplotlib` (from tools.base2new_plot)"), problems
