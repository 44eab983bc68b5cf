"""The README is a short map: the files it names exist, every relative link of it and of docs/ resolves
(to a file, and #anchors to a heading there), every docs page is linked and opens with what it covers."""
import glob
import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(REPO, "README.md")
DOCS = sorted(glob.glob(os.path.join(REPO, "docs", "*.md")))
MAP_HEADING = "## Where is what"
# what a newcomer looks for first; each has a row of the map
MAP_TOPICS = ("the training step", "the LR schedule", "a method's loss", "how TextRefiner plugs in", "configs", "outputs")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
PATH_SUFFIXES = (".py", ".sh", ".yaml", ".md", ".safetensors")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def prose_lines(text):
    """The lines outside fenced code blocks."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def slug(heading):
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path):
    """The anchors of every heading of a Markdown file (a repeated one gets -1, -2, ... as on GitHub)."""
    seen, found = {}, set()
    for line in prose_lines(read(path)):
        match = re.match(r"#{1,6} (.+)", line)
        if match:
            base = slug(match.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
    return found


def broken_links(path):
    """'page: target (why)' for each relative link of ``path`` that does not resolve."""
    problems = []
    for line in prose_lines(read(path)):
        for target in LINK.findall(line):
            if re.match(r"[a-z]+:", target):  # https:, mailto:
                continue
            file_part, _, anchor = target.partition("#")
            linked = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
            where = f"{os.path.relpath(path, REPO)}: {target}"
            if not os.path.isfile(linked):
                problems.append(f"{where} (no such file)")
            elif anchor and anchor not in anchors(linked):
                problems.append(f"{where} (no heading with that anchor)")
    return problems


def map_section():
    text = read(README)
    start = text.index(MAP_HEADING)
    end = text.find("\n## ", start + len(MAP_HEADING))
    return text[start:end if end >= 0 else None]


def named_paths(section):
    """Repository paths the map names: backticked paths and the first column of its folder list."""
    paths = set()
    for token in re.findall(r"`([^`\s]+)`", section):
        if ("/" in token or token.endswith(PATH_SUFFIXES)) and not token.startswith("output/"):
            paths.add(token)
    for line in section.splitlines():
        match = re.match(r" {4}(\S+)\s", line)
        if match:
            paths.add(match.group(1))
    return paths


def exists(path):
    """Whether ``path`` (``<placeholder>`` parts matching anything) names something in the repository."""
    pattern = re.sub(r"<[^>]+>", "*", path)
    return bool(glob.glob(os.path.join(REPO, pattern)))


def test_every_relative_link_of_the_readme_and_docs_resolves():
    problems = [problem for page in [README, *DOCS] for problem in broken_links(page)]
    assert problems == []


def test_the_link_check_reports_a_missing_file_and_a_missing_anchor(tmp_path):
    (tmp_path / "other.md").write_text("# Title\n\n## Less memory: TRAIN.GRAD_ACCUM\n")
    page = tmp_path / "page.md"
    page.write_text("[a](other.md#less-memory-traingrad_accum) [b](other.md#nope) [c](gone.md) [d](#title)\n"
                    "```\n[e](inside-code.md)\n```\n# Title\n[f](https://example.org/x.md)\n")
    assert [p.split(": ", 1)[1] for p in broken_links(str(page))] == [
        "other.md#nope (no heading with that anchor)", "gone.md (no such file)"]


def test_the_map_comes_first_names_the_topics_and_only_files_that_exist():
    headings = [line for line in prose_lines(read(README)) if line.startswith("## ")]
    assert headings[0] == MAP_HEADING
    section = map_section()
    assert [topic for topic in MAP_TOPICS if topic not in section] == []
    paths = named_paths(section)
    assert {"engine/trainer.py", "trainers/prompt_trainer.py", "engine/optim/lr_scheduler.py",
            "trainers/textrefiner/plugin.py", "configs/trainers/<TRAINER>/<cfg>.yaml", "scripts/runs.sh"} <= paths
    assert sorted(p for p in paths if not exists(p)) == []


def undefined_names(section):
    """'name (row)' for each code name of a map row (`Class`, `function`, `Class.method`) that no
    Python file of that row defines (def, class, a module-level NAME = or a registered "Name")."""
    problems = []
    for row in (line for line in section.splitlines() if line.startswith("| ")):
        tokens = re.findall(r"`([^`\s]+)`", row)
        sources = "".join(read(os.path.join(REPO, t)) for t in tokens if t.endswith(".py") and exists(t))
        for token in tokens:
            if (not re.fullmatch(r"[A-Za-z_]\w*(\.\w+)?", token) or token.split(".")[0].isupper()
                    or token.endswith((*PATH_SUFFIXES, ".json", ".txt"))):
                continue  # a path, a file name or a config key
            name = token.split(".")[-1]
            if not re.search(rf'(def|class) {name}\b|^{name} =|"{name}"', sources, re.M):
                problems.append(f"{token} ({row.split('|')[1].strip()})")
    return problems


def test_the_code_names_of_the_map_are_defined_in_the_files_of_their_row():
    section = map_section()
    assert {"TrainerX.run_epoch", "PromptTrainer.forward_backward", "refined_ce"} <= set(re.findall(r"`([^`]+)`", section))
    assert undefined_names(section) == []
    assert undefined_names("| step | `trainers/coop.py`: `CoOp.losses`, `CoOp.no_such_hook` |") == ["CoOp.no_such_hook (step)"]


def test_readme_is_short_names_the_fast_subset_and_links_every_docs_page():
    text = read(README)
    assert len(text.splitlines()) <= 220
    assert 'bash scripts/test.sh -m "not slow"' in text
    linked = {os.path.normpath(os.path.join(REPO, t.partition("#")[0])) for t in LINK.findall(text)}
    assert [os.path.relpath(p, REPO) for p in DOCS if p not in linked] == []


def test_each_docs_page_opens_with_a_title_and_what_it_covers():
    for page in DOCS:
        lines = read(page).splitlines()
        assert lines[0].startswith("# ") and lines[1] == "", page
        assert lines[2] and not lines[2].startswith(("#", "```", "|", "-", " ")), page
