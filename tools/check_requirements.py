"""Check that every requirement installs on given Python versions, from the package index's metadata.

For each requirement of requirements-dev.txt (requirements.txt through its ``-r``) whose marker
holds on the target Python, pip's choice is found as pip makes it: the newest version allowed by
the requirement with a file for that Python (``Requires-Python`` and, for a wheel, its tags on
x86_64 Linux); a wheel among its files is taken before the source distribution. A requirement
passes when that file is a wheel, or a source distribution without native code (no C, C++,
Cython, Fortran, CUDA or Rust sources, no Cargo/CMake/Meson build). Nothing is installed; only
the index pages are read, and a source distribution is downloaded when it is the choice.

usage: python -m tools.check_requirements 3.13 3.14 [--requirements requirements-dev.txt]
                                          [--index-url https://pypi.org/simple]
Exit status 1, with one line per failing requirement and Python version, when one does not install.
"""
import argparse
import io
import json
import os
import sys
import tarfile
import urllib.request
import zipfile
from concurrent.futures import ThreadPoolExecutor

from packaging import tags
from packaging.requirements import Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import InvalidSdistFilename, InvalidWheelFilename, canonicalize_name
from packaging.utils import parse_sdist_filename, parse_wheel_filename

NATIVE_SUFFIXES = (".c", ".cc", ".cpp", ".cxx", ".pyx", ".f", ".f90", ".cu", ".rs")
NATIVE_BUILD_FILES = ("Cargo.toml", "CMakeLists.txt", "meson.build")
PLATFORMS = [f"manylinux_2_{minor}_x86_64" for minor in range(40, 4, -1)]
PLATFORMS += ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64", "linux_x86_64"]
SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"


def read_requirements(path):
    """Requirements of a pip requirements file, following ``-r`` includes."""
    found = []
    with open(path) as f:
        for line in f:
            line = line.split(" #")[0].strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("-r "):
                found += read_requirements(os.path.join(os.path.dirname(path), line[3:].strip()))
            elif line.startswith("-"):
                raise ValueError(f"{path}: option line {line!r} is not understood by this check")
            else:
                found.append(Requirement(line))
    return found


def supported_tags(python):
    """Wheel tags a CPython ``python`` ("3.13") on x86_64 Linux installs."""
    version = tuple(int(part) for part in python.split("."))
    abi = f"cp{version[0]}{version[1]}"
    return set(tags.cpython_tags(version, abis=[abi], platforms=PLATFORMS)) | set(
        tags.compatible_tags(version, interpreter=abi, platforms=PLATFORMS)
    )


def marker_holds(requirement, python):
    if requirement.marker is None:
        return True
    env = {"python_version": python, "python_full_version": f"{python}.0", "implementation_name": "cpython",
           "platform_python_implementation": "CPython", "sys_platform": "linux", "platform_system": "Linux",
           "platform_machine": "x86_64", "os_name": "posix"}
    return requirement.marker.evaluate(env)


def candidates(requirement, files, python):
    """{version: [(kind, file)]} of the index's files pip may take for ``python``."""
    wanted = supported_tags(python)
    found = {}
    for file in files:
        if file.get("yanked"):
            continue
        try:
            if file.get("requires-python") and not SpecifierSet(file["requires-python"]).contains(f"{python}.0"):
                continue
        except InvalidSpecifier:
            continue
        name = file["filename"]
        try:
            if name.endswith(".whl"):
                _, version, _, file_tags = parse_wheel_filename(name)
                kind = "wheel" if file_tags & wanted else None
            else:
                _, version = parse_sdist_filename(name)
                kind = "sdist"
        except (InvalidWheelFilename, InvalidSdistFilename):
            continue
        if kind and not version.is_prerelease and requirement.specifier.contains(version):
            found.setdefault(version, []).append((kind, file))
    return found


def native_files(names):
    """Names in a source distribution that need a compiler to build."""
    return [n for n in names if n.lower().endswith(NATIVE_SUFFIXES) or os.path.basename(n) in NATIVE_BUILD_FILES]


def archive_names(data, filename):
    if filename.endswith(".zip"):
        return zipfile.ZipFile(io.BytesIO(data)).namelist()
    return tarfile.open(fileobj=io.BytesIO(data)).getnames()


def check(requirement, files, python, download):
    """(installs, what pip takes or why it cannot) for ``requirement`` on ``python``."""
    found = candidates(requirement, files, python)
    if not found:
        return False, f"no wheel for CPython {python} on x86_64 Linux and no source distribution match {requirement}"
    version = max(found)
    kinds = dict(found[version])
    if "wheel" in kinds:
        return True, f"{version}: {kinds['wheel']['filename']}"
    sdist = kinds["sdist"]
    native = native_files(archive_names(download(sdist["url"]), sdist["filename"]))
    if native:
        return False, (f"{version} has no wheel for CPython {python}; its source distribution needs "
                       f"a compiler ({', '.join(sorted(native)[:3])})")
    return True, f"{version}: {sdist['filename']} (source without native code)"


def fetch(url, accept=None):
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read()


def index_files(index_url, name):
    """The index's files of package ``name`` (PEP 691 JSON: filename, url, requires-python, yanked)."""
    url = f"{index_url.rstrip('/')}/{canonicalize_name(name)}/"
    try:
        return json.loads(fetch(url, SIMPLE_JSON))["files"]
    except (OSError, ValueError, KeyError) as err:
        raise SystemExit(f"check_requirements: cannot read the index page of {name} ({url}): {err}") from None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pythons", nargs="+", help="target Python versions, e.g. 3.13 3.14")
    parser.add_argument("--requirements", default="requirements-dev.txt")
    parser.add_argument("--index-url", default="https://pypi.org/simple")
    args = parser.parse_args(argv)
    requirements = read_requirements(args.requirements)
    with ThreadPoolExecutor(8) as pool:
        pages = dict(zip([r.name for r in requirements],
                         pool.map(lambda r: index_files(args.index_url, r.name), requirements)))
    failures = []
    for python in args.pythons:
        for requirement in requirements:
            if not marker_holds(requirement, python):
                print(f"skip {requirement.name} on Python {python} (marker: {requirement.marker})")
                continue
            installs, detail = check(requirement, pages[requirement.name], python, fetch)
            line = f"{'ok  ' if installs else 'FAIL'} {requirement.name} on Python {python}: {detail}"
            print(line)
            if not installs:
                failures.append(line)
    if failures:
        print(f"{len(failures)} requirement(s) do not install:\n" + "\n".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
