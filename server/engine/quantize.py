"""llama.cpp's ``llama_model_quantize``: the one llama.cpp call the model wing needs.

It lives here because the engine package is the only one that touches llama.cpp; the Ollama
rules around it (accepted types, progress, atomic replace) stay in ``model/quantize.py``.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path


def quantize_file(src: Path, dst: Path, ftype: int, nthread: int = 0) -> int:
    """Write ``src`` re-quantized to llama.cpp file type ``ftype`` at ``dst``; llama.cpp's return code.

    Blocks until done (the routine has no progress callback and cannot be cancelled);
    ``nthread=0`` lets llama.cpp use every core.
    """
    import llama_cpp

    llama_cpp.llama_backend_init()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = nthread
    return int(llama_cpp.llama_model_quantize(os.fsencode(src), os.fsencode(dst), ctypes.byref(params)))
