"""The source trees ``bench/quality.py`` cuts holes from: real code nobody here wrote or tuned prompts on.

Python is the running interpreter's standard library. JavaScript and Go come from packages installed for
the purpose, pinned so every run asks the same questions:

- **javascript**: ``lodash-es`` from npm (``npm pack``, the tarball extracted: no ``node_modules``);
- **go**: ``spf13/cobra`` from Debian's ``golang-github-spf13-cobra-dev`` (``apt-get download`` +
  ``dpkg -x``: a download into the current directory, no install and no root).

They land in the gitignored ``bench/.sources/<package>-<version>/``. ``make quality-sources`` (a
prerequisite of ``make test`` that may fail offline) runs this script; the benchmark names a missing tree.

Usage: ``.venv/bin/python bench/quality_sources.py [--dest DIR]``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

SOURCES = Path(__file__).resolve().parent / ".sources"


class MissingTree(RuntimeError):
    """A tree that is not fetched yet; the message says how to fetch it."""


@dataclass(frozen=True)
class Tree:
    language: str  # the LSP language id, also sent in didOpen
    extension: str
    package: str
    version: str
    fetcher: str  # "stdlib", "npm" or "apt"
    subdir: str  # where the sources lie inside the extracted package
    min_size: int  # smaller files are mostly re-exports (lodash's one-liners)
    max_size: int = 200_000

    @property
    def label(self) -> str:
        return f"{self.package}@{self.version}"

    def root(self, base: Path = SOURCES) -> Path:
        """The extracted package; the stdlib is where the interpreter keeps it."""
        if self.fetcher == "stdlib":
            return Path(sysconfig.get_paths()["stdlib"])
        return base / f"{self.package}-{self.version}"

    def source_dir(self, base: Path = SOURCES) -> Path:
        return self.root(base) / self.subdir if self.subdir else self.root(base)


TREES: dict[str, Tree] = {
    "python": Tree("python", ".py", "python-stdlib", sysconfig.get_python_version(), "stdlib", "", 2_000),
    "javascript": Tree("javascript", ".js", "lodash-es", "4.17.21", "npm", "package", 1_000),
    "go": Tree(
        "go",
        ".go",
        "golang-github-spf13-cobra-dev",
        "1.6.1-1",
        "apt",
        "usr/share/gocode/src/github.com/spf13/cobra",
        1_500,
    ),
}
LANGUAGES = tuple(TREES)


def files(language: str, base: Path = SOURCES) -> list[Path]:
    """The tree's source files in a stable order; raises :class:`MissingTree` when it is not fetched."""
    tree = TREES[language]
    directory = tree.source_dir(base)
    if not directory.is_dir():
        raise MissingTree(f"{language}: {tree.label} is not in {directory} (run `make quality-sources`)")
    recurse = tree.fetcher != "stdlib"  # the stdlib's top level is plenty, and skips its test suite
    found = directory.rglob(f"*{tree.extension}") if recurse else directory.glob(f"*{tree.extension}")
    picked = sorted(p for p in found if tree.min_size < p.stat().st_size < tree.max_size)
    if not picked:
        raise MissingTree(f"{language}: no {tree.extension} files in {directory}")
    return picked


def _npm(tree: Tree, work: Path, dest: Path) -> None:
    spec = f"{tree.package}@{tree.version}"
    subprocess.run(
        ["npm", "pack", spec, "--silent", "--pack-destination", str(work)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    (tarball,) = work.glob("*.tgz")
    with tarfile.open(tarball) as tar:
        tar.extractall(dest, filter="data")


def _apt(tree: Tree, work: Path, dest: Path) -> None:
    subprocess.run(["apt-get", "download", f"{tree.package}={tree.version}"], cwd=work, check=True)
    (deb,) = work.glob("*.deb")
    subprocess.run(["dpkg-deb", "-x", str(deb), str(dest)], check=True)


def fetch(tree: Tree, base: Path = SOURCES) -> Path:
    """Download and extract ``tree`` into ``base`` unless it is there; all or nothing (a temp dir)."""
    root = tree.root(base)
    if tree.fetcher == "stdlib" or root.is_dir():
        return root
    base.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=base, prefix=".fetch-") as tmp:
        work, dest = Path(tmp) / "download", Path(tmp) / "tree"
        work.mkdir()
        {"npm": _npm, "apt": _apt}[tree.fetcher](tree, work, dest)
        dest.rename(root)
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--dest", type=Path, default=SOURCES)
    args = parser.parse_args(argv)
    failed = 0
    for language, tree in TREES.items():
        try:
            fetch(tree, args.dest)
            count = len(files(language, args.dest))
            print(f"{language:<11} {tree.label:<40} {count:>4} files in {tree.source_dir(args.dest)}")
        except (OSError, subprocess.CalledProcessError, MissingTree, ValueError) as e:
            failed += 1
            print(f"{language:<11} {tree.label:<40} not fetched: {e}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
