"""Resumable download state on disk, in Ollama's own file layout.

::

    blobs/sha256-<hex>-partial      the blob's bytes, each part written at its offset
    blobs/sha256-<hex>-partial-<N>  part N's state, one JSON line:
                                    {"N":0,"Offset":0,"Size":104857600,"Completed":52428800}

A part covers ``[Offset, Offset+Size)``; ``Completed`` counts the bytes from ``Offset`` that
are on disk.  The state file is only replaced after the data it describes has been
fsynced, and it is replaced atomically, so after a ``kill -9`` or a power cut the state
never claims more than the disk holds (the final sha256 check catches anything else).
The names are Ollama's, so either program can resume the other's partial download.  They
are neither hidden nor ``.tmp-``, so :meth:`Store.clean_temporary` keeps them across
restarts, and :meth:`Store.prune` only looks at full ``sha256-<hex>`` names.

Example: a 250 MB blob with the default sizing (16 parts, clamped to 100 MB-1 GB) is
planned as parts of 100, 100 and 50 MB.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

MB = 1000 * 1000
DEFAULT_PARTS = 16
MIN_PART = 100 * MB
MAX_PART = 1000 * MB

_PART_SUFFIX = re.compile(r"-partial-(\d+)$")


@dataclass
class Part:
    """One byte range of a blob and how much of it is already on disk."""

    n: int
    offset: int
    size: int
    completed: int = 0

    @property
    def start(self) -> int:
        """The next byte to fetch."""
        return self.offset + self.completed

    @property
    def end(self) -> int:
        """One past the last byte of the range."""
        return self.offset + self.size

    @property
    def done(self) -> bool:
        return self.completed >= self.size

    def to_json(self) -> bytes:
        """Go's json.Encoder output for Ollama's part struct (field order, trailing newline)."""
        doc = {"N": self.n, "Offset": self.offset, "Size": self.size, "Completed": self.completed}
        return (json.dumps(doc, separators=(",", ":")) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> Part:
        doc = json.loads(data)
        fields = [doc.get(key) for key in ("N", "Offset", "Size", "Completed")]
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in fields):
            raise ValueError("bad part state")
        return cls(*fields)


def plan(
    total: int, parts: int = DEFAULT_PARTS, min_size: int = MIN_PART, max_size: int = MAX_PART
) -> list[Part]:
    """Ollama's split: ``total / parts`` bytes each, clamped to ``[min_size, max_size]``."""
    size = min(max(total // parts, min_size), max_size)
    size = max(size, 1)
    out: list[Part] = []
    offset = 0
    while offset < total:
        length = min(size, total - offset)
        out.append(Part(len(out), offset, length))
        offset += length
    return out


def partial_path(blob: Path) -> Path:
    return blob.with_name(blob.name + "-partial")


def part_path(blob: Path, n: int) -> Path:
    return blob.with_name(f"{blob.name}-partial-{n}")


def part_files(blob: Path) -> list[Path]:
    """The state files of ``blob``'s partial download, in no particular order."""
    return [p for p in blob.parent.glob(blob.name + "-partial-*") if _PART_SUFFIX.search(p.name)]


def load(blob: Path, total: int) -> list[Part] | None:
    """The saved parts of a partial download of ``total`` bytes, or None if there is none.

    State that does not describe exactly ``[0, total)`` (another size, a gap, a torn or
    foreign file, data file shorter than claimed) is treated as absent: the caller starts
    over rather than trusting it.
    """
    files = part_files(blob)
    data = partial_path(blob)
    if not files or not data.is_file():
        return None
    parts: list[Part] = []
    try:
        for path in files:
            part = Part.from_json(path.read_bytes())
            match = _PART_SUFFIX.search(path.name)
            if match is None or int(match.group(1)) != part.n or part.completed > part.size:
                return None
            parts.append(part)
        on_disk = data.stat().st_size
    except (OSError, ValueError):
        return None
    parts.sort(key=lambda p: p.offset)
    expected = 0
    for i, part in enumerate(parts):
        if part.n != i or part.offset != expected or part.size <= 0:
            return None
        expected = part.end
    if expected != total or any(p.start > on_disk for p in parts):
        return None
    return parts


def save(blob: Path, part: Part) -> None:
    """Replace part ``part.n``'s state atomically (the caller has fsynced the data first)."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=blob.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(part.to_json())
        os.replace(tmp, part_path(blob, part.n))
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def discard(blob: Path) -> None:
    """Forget a partial download: its data file and every part state file."""
    for path in [partial_path(blob), *part_files(blob)]:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def bytes_on_disk(blob: Path) -> int:
    """Disk space the partial data file already occupies (allocated blocks, not its length)."""
    try:
        return partial_path(blob).stat().st_blocks * 512
    except OSError:
        return 0
