"""tools/check_requirements.py on made-up index pages (offline): pip's choice and its verdict."""
import io
import tarfile

import pytest
from packaging.requirements import Requirement

from tools import check_requirements as cr


def wheel(name, requires_python=None, yanked=False):
    return {"filename": name, "url": f"https://files/{name}", "requires-python": requires_python, "yanked": yanked}


def sdist_bytes(names):
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as tar:
        for name in names:
            info = tarfile.TarInfo(name)
            tar.addfile(info, io.BytesIO(b""))
    return data.getvalue()


def downloads(archives):
    return lambda url: archives[url.rsplit("/", 1)[1]]


def test_a_compatible_wheel_passes_and_names_the_file():
    files = [wheel("pkg-1.0-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
             wheel("pkg-1.0-cp312-cp312-manylinux_2_17_x86_64.whl"), wheel("pkg-1.0.tar.gz")]
    installs, detail = cr.check(Requirement("pkg"), files, "3.13", downloads({}))
    assert installs and detail == "1.0: pkg-1.0-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    # pure-Python and abi3 wheels install on later versions too
    for name in ("pkg-2.0-py3-none-any.whl", "pkg-2.0-cp39-abi3-manylinux_2_28_x86_64.whl"):
        assert cr.check(Requirement("pkg"), [wheel(name)], "3.14", downloads({})) == (True, f"2.0: {name}")


def test_newest_version_with_only_a_native_sdist_fails_naming_the_build_files():
    # as instant-clip-tokenizer: wheels up to 3.12; pip takes the newest version with a file for 3.13
    files = [wheel("tok-0.1.1-cp312-cp312-manylinux_2_17_x86_64.whl"), wheel("tok-0.1.0.tar.gz")]
    archives = {"tok-0.1.0.tar.gz": sdist_bytes(["tok-0.1.0/Cargo.toml", "tok-0.1.0/src/lib.rs", "tok-0.1.0/PKG-INFO"])}
    installs, detail = cr.check(Requirement("tok"), files, "3.13", downloads(archives))
    assert not installs
    assert detail == ("0.1.0 has no wheel for CPython 3.13; its source distribution needs a compiler "
                      "(tok-0.1.0/Cargo.toml, tok-0.1.0/src/lib.rs)")
    assert cr.check(Requirement("tok"), files, "3.12", downloads(archives))[0]


def test_a_pure_python_sdist_passes():
    archives = {"openai-clip-1.0.1.tar.gz": sdist_bytes(["openai-clip-1.0.1/setup.py", "openai-clip-1.0.1/clip/model.py"])}
    files = [wheel("openai-clip-1.0.tar.gz"), wheel("openai-clip-1.0.1.tar.gz")]
    installs, detail = cr.check(Requirement("openai-clip==1.0.1"), files, "3.14", downloads(archives))
    assert installs and detail == "1.0.1: openai-clip-1.0.1.tar.gz (source without native code)"


def test_requires_python_yanked_and_specifier_narrow_the_choice():
    files = [wheel("pkg-3.0-py3-none-any.whl", requires_python=">=3.15"),
             wheel("pkg-2.5-py3-none-any.whl", yanked=True),
             wheel("pkg-2.0-py3-none-any.whl", requires_python=">=3.10"),
             wheel("pkg-1.0-py3-none-any.whl")]
    assert cr.check(Requirement("pkg"), files, "3.13", downloads({}))[1].startswith("2.0:")
    assert cr.check(Requirement("pkg<2"), files, "3.13", downloads({}))[1].startswith("1.0:")
    installs, detail = cr.check(Requirement("pkg>3"), files, "3.13", downloads({}))
    assert not installs and detail == "no wheel for CPython 3.13 on x86_64 Linux and no source distribution match pkg>3"


def test_requirement_files_follow_includes_and_markers(tmp_path):
    (tmp_path / "base.txt").write_text("# runtime\nnumpy>=1.0\nopenai-clip==1.0.1  # vocabulary\n")
    (tmp_path / "dev.txt").write_text('-r base.txt\npytest\nfast; python_version < "3.13"\n')
    requirements = cr.read_requirements(str(tmp_path / "dev.txt"))
    assert [str(r) for r in requirements] == ["numpy>=1.0", "openai-clip==1.0.1", "pytest", 'fast; python_version < "3.13"']
    assert cr.marker_holds(requirements[3], "3.12") and not cr.marker_holds(requirements[3], "3.13")
    (tmp_path / "bad.txt").write_text("--index-url https://example.org\n")
    with pytest.raises(ValueError, match="option line '--index-url https://example.org'"):
        cr.read_requirements(str(tmp_path / "bad.txt"))


def test_project_requirements_keep_the_rust_tokenizer_off_python_313():
    requirements = {r.name: r for r in cr.read_requirements("requirements-dev.txt")}
    assert {"openai-clip", "ftfy", "regex", "matplotlib", "pytest"} <= set(requirements)
    assert cr.marker_holds(requirements["instant-clip-tokenizer"], "3.12")
    assert not cr.marker_holds(requirements["instant-clip-tokenizer"], "3.13")


def test_main_names_the_failing_requirement_and_exits_1(tmp_path, monkeypatch, capsys):
    (tmp_path / "req.txt").write_text("pure\ntok\n")
    pages = {"pure": [wheel("pure-1.0-py3-none-any.whl")],
             "tok": [wheel("tok-0.1.1-cp312-cp312-manylinux_2_17_x86_64.whl"), wheel("tok-0.1.0.tar.gz")]}
    archives = {"tok-0.1.0.tar.gz": sdist_bytes(["tok-0.1.0/ext.c"])}

    def fetch(url, accept=None):
        name = url.rstrip("/").rsplit("/", 1)[1]
        if accept == cr.SIMPLE_JSON:
            return cr.json.dumps({"files": pages[name]}).encode()
        return archives[name]

    monkeypatch.setattr(cr, "fetch", fetch)
    assert cr.main(["3.12", "3.13", "--requirements", str(tmp_path / "req.txt")]) == 1
    out, err = capsys.readouterr()
    assert "ok   tok on Python 3.12: 0.1.1: tok-0.1.1-cp312-cp312-manylinux_2_17_x86_64.whl" in out
    assert err.splitlines() == ["1 requirement(s) do not install:",
                                "FAIL tok on Python 3.13: 0.1.0 has no wheel for CPython 3.13; its source "
                                "distribution needs a compiler (tok-0.1.0/ext.c)"]
    (tmp_path / "req.txt").write_text("pure\n")
    assert cr.main(["3.13", "--requirements", str(tmp_path / "req.txt")]) == 0


def test_an_unreadable_index_page_is_named():
    with pytest.raises(SystemExit, match=r"cannot read the index page of pkg \(file:///nonexistent-index/pkg/\)"):
        cr.index_files("file:///nonexistent-index", "pkg")
