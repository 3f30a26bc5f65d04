"""The one byte-progress bar the CLI draws (``create`` uploads, ``pull``/``push`` layers).

tqdm configured as Ollama's bars read: SI byte units, drawn on stderr, kept when finished,
following the terminal's width.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from tqdm import tqdm


def byte_bar(
    desc: str,
    total: int,
    *,
    initial: int = 0,
    file: TextIO | None = None,
    bar_format: str | None = None,
    disable: bool | None = False,
) -> tqdm[Any]:
    """A bar over ``total`` bytes; ``disable=None`` hides it when ``file`` is not a terminal."""
    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1000,
        bar_format=bar_format,
        disable=disable,
        leave=True,
        file=file or sys.stderr,
        dynamic_ncols=True,
    )
