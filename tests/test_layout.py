"""The layout's import rules: engine/ imports nothing above it, the top-level folders import each other
without a cycle, and no method module imports the TextRefiner package (only its hosts do)."""
import ast
import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FOLDERS = ("engine", "clip", "datasets", "trainers", "tta", "lpclip", "tools", "bench")
SCRIPTS = ("train", "tta", "tta_ret", "caption", "parse_test_res")  # the root entry points (tta.py and the tta/ package share a node)


def python_files(folder):
    for root, _, files in os.walk(os.path.join(REPO, folder)):
        for name in sorted(files):
            if name.endswith(".py"):
                yield os.path.join(root, name)


def module_name(path):
    rel = os.path.relpath(path, REPO)[: -len(".py")].split(os.sep)
    return ".".join(rel[:-1] if rel[-1] == "__init__" else rel)


def imported_modules(path):
    """Absolute names of every module ``path`` imports (relative imports resolved), lazy ones included."""
    package = module_name(path).split(".")
    if not path.endswith("__init__.py"):
        package = package[:-1]
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            yield module
            yield from (f"{module}.{alias.name}" for alias in node.names)  # "from pkg import submodule"


def top_level(module):
    head = module.split(".")[0]
    return head if head in FOLDERS + SCRIPTS else None


def folder_graph():
    """{top-level node: {top-level nodes it imports}} over every project file but the tests."""
    graph = {node: set() for node in FOLDERS + SCRIPTS}
    files = [(f, folder) for folder in FOLDERS for f in python_files(folder)]
    files += [(os.path.join(REPO, f"{s}.py"), s) for s in SCRIPTS]
    for path, node in files:
        for module in imported_modules(path):
            target = top_level(module)
            if target is not None and target != node:
                graph[node].add(target)
    return graph


def test_engine_imports_nothing_above_it():
    assert folder_graph()["engine"] == set()


def test_no_import_cycle_between_top_level_folders():
    graph = folder_graph()

    def reaches(start, goal, seen):
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in graph[start])

    cycles = sorted(node for node in graph if reaches(node, node, {node}))
    assert cycles == [], {n: sorted(graph[n]) for n in cycles}


def test_only_the_hosts_import_the_textrefiner_package():
    # trainers/__init__.py registers the trainer; trainers/config.py adds TextRefiner's config keys
    allowed = {"trainers", "trainers.config"}
    offenders = []
    for path in python_files("trainers"):
        name = module_name(path)
        if name.startswith("trainers.textrefiner") or name in allowed:
            continue
        if any(m.startswith("trainers.textrefiner") for m in imported_modules(path)):
            offenders.append(name)
    assert offenders == []


@pytest.mark.parametrize("source, expected", [
    ("from .shared.alignment import FeatureAlignment", "trainers.shared.alignment"),
    ("from ..shared import distillation", "trainers.shared.distillation"),
])
def test_relative_imports_resolve_to_absolute_names(tmp_path, monkeypatch, source, expected):
    # the rule tests above are only as good as this resolution: a file two levels down
    folder = tmp_path / "trainers" / "textrefiner"
    folder.mkdir(parents=True)
    path = folder / "host.py" if source.startswith("from ..") else tmp_path / "trainers" / "promptkd.py"
    path.write_text(source + "\n")
    monkeypatch.setattr(sys.modules[__name__], "REPO", str(tmp_path))
    assert expected in set(imported_modules(str(path)))
