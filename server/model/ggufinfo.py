"""GGUF metadata: the KV table and tensor infos, read without touching tensor data.

The whole header is parsed from a read-only memory map with ``struct`` and ``numpy.frombuffer``.
``gguf.GGUFReader`` is not used for this: it builds a numpy view for every element of every
array, which took 2.7 s on the 98 MB SmolLM2 file (a 49k-token vocab plus 49k merges) and
scales with the vocabulary, while this reader needs ~0.1 s. The ``gguf`` package still supplies
the tensor-type names and block sizes.

Layout (little-endian unless the version reads byte-swapped, as in big-endian files)::

    "GGUF" u32:version u64:n_tensors u64:n_kv
    n_kv    x (string:key  u32:value_type  value)
    n_tensors x (string:name  u32:n_dims  u64[n_dims]:shape  u32:ggml_type  u64:offset)
    padding to general.alignment (default 32), then tensor data

A file is rejected with ``NotGGUFError`` when its first four bytes are not the magic, and with
``CorruptGGUFError`` when the header is cut short or a tensor reaches past the end of the file
(the check Ollama's decoder makes, so a half-uploaded blob is caught before llama.cpp sees it).

Errors::

    GGUFError (ValueError)
     ├── NotGGUFError      not a GGUF file at all
     └── CorruptGGUFError  truncated or malformed header, or tensor data past EOF
"""

from __future__ import annotations

import math
import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

GGUF_MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32

# llama_ftype values and the names Ollama prints for them (fs/ggml/type.go FileType.String).
# 4-6 and 33-35 were removed from GGUF files and have no name.
FILE_TYPE_NAMES: dict[int, str] = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    19: "IQ2_XXS",
    20: "IQ2_XS",
    21: "Q2_K_S",
    22: "IQ3_XS",
    23: "IQ3_XXS",
    24: "IQ1_S",
    25: "IQ4_NL",
    26: "IQ3_S",
    27: "IQ3_M",
    28: "IQ2_S",
    29: "IQ2_M",
    30: "IQ4_XS",
    31: "IQ1_M",
    32: "BF16",
    36: "TQ1_0",
    37: "TQ2_0",
    38: "MXFP4_MOE",
    39: "NVFP4",
    40: "Q1_0",
}
FILE_TYPE_IDS: dict[str, int] = {name: value for value, name in FILE_TYPE_NAMES.items()}

# GGUF value types (gguf.GGUFValueType) → struct format of the scalar.
_SCALAR_FORMATS: dict[int, str] = {
    0: "B",
    1: "b",
    2: "H",
    3: "h",
    4: "I",
    5: "i",
    6: "f",
    7: "?",
    10: "Q",
    11: "q",
    12: "d",
}
_TYPE_NAMES: dict[int, str] = {
    0: "uint8",
    1: "int8",
    2: "uint16",
    3: "int16",
    4: "uint32",
    5: "int32",
    6: "float32",
    7: "bool",
    8: "string",
    9: "array",
    10: "uint64",
    11: "int64",
    12: "float64",
}
_STRING, _ARRAY, _FLOAT32 = 8, 9, 6
_MAX_DIMS = 4


class GGUFError(ValueError):
    """Base class: the file could not be read as GGUF metadata."""


class NotGGUFError(GGUFError):
    """Raised when a file does not start with the GGUF magic (Ollama's wording)."""

    def __init__(self, message: str = "supplied file was not in GGUF format") -> None:
        super().__init__(message)


class CorruptGGUFError(GGUFError):
    """Raised when a GGUF header is truncated or malformed, or tensor data runs past EOF."""


@dataclass(frozen=True, slots=True)
class TensorInfo:
    """One entry of the tensor table; ``shape`` is in file order (ne0 first), as Ollama shows it."""

    name: str
    type_name: str
    shape: tuple[int, ...]
    offset: int = 0
    type_id: int = 0

    @property
    def n_elements(self) -> int:
        return math.prod(self.shape)

    @property
    def n_bytes(self) -> int | None:
        """Size of the tensor data, or None for a tensor type this gguf package does not know."""
        try:
            block, size = GGML_QUANT_SIZES[GGMLQuantizationType(self.type_id)]
        except (ValueError, KeyError):
            return None
        return self.n_elements // block * size


@dataclass(frozen=True, slots=True)
class FimTokens:
    """Fill-in-the-middle tokens found in a vocabulary.

    ``prefix``/``suffix``/``middle`` are the texts to write into a prompt (a CodeLlama ``▁<PRE>``
    becomes ``<PRE>``: the template writes the space itself). ``order`` is ``psm`` (prefix
    token, code before the cursor, suffix token, code after it, middle token) or ``spm``
    (Codestral: suffix token and code after the cursor first, then the prefix; no middle token).
    ``stop`` lists end-of-fill texts present in the vocabulary.
    """

    prefix: str
    suffix: str
    middle: str | None
    order: Literal["psm", "spm"]
    family: str
    stop: tuple[str, ...] = ()


@dataclass(slots=True)
class GGUFInfo:
    """Parsed header of a GGUF file. ``kv`` holds plain Python values, arrays as lists."""

    path: Path
    version: int
    kv: dict[str, object]
    kv_types: dict[str, str]
    tensors: list[TensorInfo]
    data_offset: int
    file_size: int

    def _arch_uint(self, key: str) -> int:
        value = self.kv.get(f"{self.architecture}.{key}")
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    def _str(self, key: str) -> str | None:
        value = self.kv.get(key)
        return value if isinstance(value, str) else None

    @property
    def architecture(self) -> str:
        return self._str("general.architecture") or "unknown"

    @property
    def kind(self) -> str:
        return self._str("general.type") or "model"

    @property
    def file_type(self) -> str:
        """Ollama's quantization name for ``general.file_type``; "unknown" when absent or unnamed.

        Ollama maps a stored 0 to "unknown" as well (it treats 0 as "missing"); here 0 is "F32",
        so all-F32 GGUFs can be quantized.
        """
        value = self.kv.get("general.file_type")
        if isinstance(value, int) and not isinstance(value, bool):
            return FILE_TYPE_NAMES.get(value, "unknown")
        return "unknown"

    @property
    def parameter_count(self) -> int:
        """Sum of tensor element counts. Ollama always overwrites general.parameter_count with it."""
        return sum(t.n_elements for t in self.tensors)

    @property
    def context_length(self) -> int:
        return self._arch_uint("context_length")

    @property
    def embedding_length(self) -> int:
        return self._arch_uint("embedding_length")

    @property
    def block_count(self) -> int:
        return self._arch_uint("block_count")

    @property
    def chat_template(self) -> str | None:
        return self._str("tokenizer.chat_template") or None

    @property
    def tokens(self) -> list[str]:
        value = self.kv.get("tokenizer.ggml.tokens")
        return value if isinstance(value, list) else []

    @property
    def is_adapter(self) -> bool:
        return self.kind == "adapter"

    @property
    def is_projector(self) -> bool:
        """Multimodal projector (mmproj/clip), stored by Ollama as a separate "projector" layer."""
        if self.kind in ("projector", "mmproj"):
            return True
        if self.block_count == 0 and self._arch_uint("vision.block_count") > 0:
            return True
        encoders = (self.kv.get(f"{self.architecture}.has_{part}_encoder") for part in ("vision", "audio"))
        return self.architecture == "clip" and self.block_count == 0 and any(v is True for v in encoders)


class _Cursor:
    """Bounds-checked sequential reader over the memory map."""

    def __init__(self, buf: mmap.mmap, endian: str) -> None:
        self.buf = buf
        self.pos = 0
        self.size = len(buf)
        self.endian = endian
        self.structs = {t: struct.Struct(endian + f) for t, f in _SCALAR_FORMATS.items()}
        self.u32 = self.structs[4]
        self.u64 = self.structs[10]

    def need(self, n: int, what: str) -> None:
        if n < 0 or self.pos + n > self.size:
            raise CorruptGGUFError(
                f"GGUF file is truncated or corrupt: {what} at offset {self.pos} needs {n} bytes, "
                f"file has {self.size}"
            )

    def scalar(self, vtype: int, what: str) -> object:
        st = self.structs[vtype]
        self.need(st.size, what)
        (value,) = st.unpack_from(self.buf, self.pos)
        self.pos += st.size
        return value

    def uint32(self, what: str) -> int:
        self.need(4, what)
        (value,) = self.u32.unpack_from(self.buf, self.pos)
        self.pos += 4
        return int(value)

    def uint64(self, what: str) -> int:
        self.need(8, what)
        (value,) = self.u64.unpack_from(self.buf, self.pos)
        self.pos += 8
        return int(value)

    def string(self, what: str) -> str:
        n = self.uint64(what)
        self.need(n, what)
        text = self.buf[self.pos : self.pos + n].decode("utf-8", "replace")
        self.pos += n
        return text

    def strings(self, count: int, what: str) -> list[str]:
        # Hot loop for vocabularies and merges (hundreds of thousands of entries).
        self.need(count * 8, what)
        buf, pos, size, unpack = self.buf, self.pos, self.size, self.u64.unpack_from
        out: list[str] = []
        append = out.append
        for _ in range(count):
            if pos + 8 > size:
                self.pos = pos
                self.need(8, what)
            (n,) = unpack(buf, pos)
            end = pos + 8 + n
            if end > size:
                self.pos = pos + 8
                self.need(n, what)
            append(buf[pos + 8 : end].decode("utf-8", "replace"))
            pos = end
        self.pos = pos
        return out

    def array(self, what: str) -> tuple[list[object], str]:
        itype = self.uint32(what)
        count = self.uint64(what)
        if itype == _STRING:
            return self.strings(count, what), "array[string]"
        if itype == _ARRAY:
            self.need(count * 12, what)
            return [self.array(what)[0] for _ in range(count)], "array[array]"
        fmt = _SCALAR_FORMATS.get(itype)
        if fmt is None:
            raise CorruptGGUFError(f"GGUF file is corrupt: {what} has invalid array type {itype}")
        dtype = np.dtype(self.endian + fmt)
        self.need(count * dtype.itemsize, what)
        values = np.frombuffer(self.buf, dtype=dtype, count=count, offset=self.pos).tolist()
        self.pos += count * dtype.itemsize
        return values, f"array[{_TYPE_NAMES[itype]}]"

    def value(self, vtype: int, what: str) -> tuple[object, str]:
        if vtype == _STRING:
            return self.string(what), "string"
        if vtype == _ARRAY:
            return self.array(what)
        if vtype not in _SCALAR_FORMATS:
            raise CorruptGGUFError(f"GGUF file is corrupt: {what} has invalid value type {vtype}")
        value = self.scalar(vtype, what)
        if vtype == _FLOAT32:
            value = _f32(value)  # type: ignore[arg-type]
        return value, _TYPE_NAMES[vtype]


def _f32(value: float) -> float:
    """The shortest decimal that round-trips as float32 (1e-05, not 9.999999747378752e-06).

    Go's JSON encoder writes float32 values this way, so /api/show shows the same numbers.
    """
    return float(str(np.float32(value)))


def _check_magic(path: Path) -> int:
    with path.open("rb") as f:
        head = f.read(4)
        size = os.fstat(f.fileno()).st_size
    if head != GGUF_MAGIC:
        raise NotGGUFError()
    return size


def is_gguf(path: str | os.PathLike[str]) -> bool:
    """Cheap magic-bytes check (Ollama's content-type detection for blobs without an extension)."""
    try:
        with Path(path).open("rb") as f:
            return f.read(4) == GGUF_MAGIC
    except OSError:
        return False


def read_gguf(path: str | os.PathLike[str]) -> GGUFInfo:
    """Parse the KV table and tensor infos of a GGUF file; tensor data is never read."""
    path = Path(path)
    size = _check_magic(path)
    if size < 24:
        raise CorruptGGUFError(f"GGUF file is truncated: {size} bytes is shorter than the header")
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        return _parse(path, buf)


def _parse(path: Path, buf: mmap.mmap) -> GGUFInfo:
    (version,) = struct.unpack_from("<I", buf, 4)
    endian = "<"
    if version & 0xFFFF == 0:  # a byte-swapped small number: big-endian file
        endian = ">"
        (version,) = struct.unpack_from(">I", buf, 4)
    if version not in (2, 3):
        raise CorruptGGUFError(f"unsupported GGUF version {version} (only 2 and 3 are supported)")
    cur = _Cursor(buf, endian)
    cur.pos = 8
    n_tensors = cur.uint64("tensor count")
    n_kv = cur.uint64("metadata count")
    if n_kv > cur.size or n_tensors > cur.size:
        raise CorruptGGUFError(f"GGUF file is corrupt: implausible counts ({n_kv} keys, {n_tensors} tensors)")

    kv: dict[str, object] = {}
    kv_types: dict[str, str] = {}
    for i in range(n_kv):
        key = cur.string(f"metadata key #{i}")
        vtype = cur.uint32(f"type of {key!r}")
        kv[key], kv_types[key] = cur.value(vtype, f"value of {key!r}")

    tensors: list[TensorInfo] = []
    for i in range(n_tensors):
        name = cur.string(f"tensor name #{i}")
        n_dims = cur.uint32(f"dimensions of tensor {name!r}")
        if n_dims > _MAX_DIMS:
            raise CorruptGGUFError(f"tensor {name!r} dimensions {n_dims} exceeds maximum {_MAX_DIMS}")
        shape = tuple(cur.uint64(f"shape of tensor {name!r}") for _ in range(n_dims))
        type_id = cur.uint32(f"type of tensor {name!r}")
        offset = cur.uint64(f"offset of tensor {name!r}")
        try:
            type_name = GGMLQuantizationType(type_id).name
        except ValueError:
            type_name = f"type_{type_id}"
        tensors.append(TensorInfo(name, type_name, shape, offset, type_id))

    alignment = kv.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0:
        raise CorruptGGUFError(f"invalid GGUF alignment: {alignment}")
    data_offset = -(-cur.pos // alignment) * alignment
    for t in tensors:
        n_bytes = t.n_bytes
        if n_bytes is None:
            continue
        end = data_offset + t.offset + n_bytes
        if end > cur.size:
            raise CorruptGGUFError(f"tensor {t.name!r} offset+size ({end}) exceeds file size ({cur.size})")
    return GGUFInfo(path, version, kv, kv_types, tensors, data_offset, cur.size)


def human_number(n: int) -> str:
    """Ollama's format.HumanNumber: 134515008 → "134.52M", 8030261248 → "8.0B", 1500 → "2K".

    Whole quotients drop the decimals; otherwise billions get one decimal and millions two.
    Rounding is Go's %f rounding of the exact binary value, which Python's format shares.
    """
    if n >= 1_000_000_000:
        x = float(n) / 1e9
        return f"{x:.0f}B" if x == math.floor(x) else f"{x:.1f}B"
    if n >= 1_000_000:
        x = float(n) / 1e6
        return f"{x:.0f}M" if x == math.floor(x) else f"{x:.2f}M"
    if n >= 1_000:
        return f"{float(n) / 1e3:.0f}K"
    return str(n)


def model_info(info: GGUFInfo, verbose: bool = False) -> dict[str, object]:
    """The ``model_info`` object of /api/show, keys sorted as Go's encoder writes a map.

    Ollama decodes the GGUF with a maximum array size of 0 unless ``verbose``, so every
    non-empty array comes out as null and an empty one as []. general.name and the Jinja chat
    template are dropped, and general.parameter_count is the tensor element sum.
    """
    out: dict[str, object] = {}
    for key, value in info.kv.items():
        if key in ("general.name", "tokenizer.chat_template"):
            continue
        if isinstance(value, list):
            if not verbose:
                value = None if value else []
            elif info.kv_types.get(key) == "array[float32]":
                value = [_f32(v) for v in value]
        out[key] = value
    out["general.parameter_count"] = info.parameter_count
    return dict(sorted(out.items()))


# prefix text → (suffix text, middle text or None, order, family). Texts as they appear in the
# vocabulary; "▁" (SentencePiece space) is stripped when building the prompt texts.
_FIM_STYLES: dict[str, tuple[str, str | None, Literal["psm", "spm"], str]] = {
    "<|fim_prefix|>": ("<|fim_suffix|>", "<|fim_middle|>", "psm", "qwen"),
    "<fim_prefix>": ("<fim_suffix>", "<fim_middle>", "psm", "starcoder"),
    "<fim-prefix>": ("<fim-suffix>", "<fim-middle>", "psm", "santacoder"),
    "<｜fim▁begin｜>": ("<｜fim▁hole｜>", "<｜fim▁end｜>", "psm", "deepseek"),
    "▁<PRE>": ("▁<SUF>", "▁<MID>", "psm", "codellama"),
    "<PRE>": ("<SUF>", "<MID>", "psm", "codellama"),
    "[PREFIX]": ("[SUFFIX]", None, "spm", "codestral"),
    "<|code_prefix|>": ("<|code_suffix|>", "<|code_middle|>", "psm", "glm"),
    "<|prefix|>": ("<|suffix|>", "<|middle|>", "psm", "falcon"),
}
# Texts that end a fill when the model emits them, in the order they are reported.
_FIM_STOP_TEXTS = (
    "<|endoftext|>",
    "<|fim_pad|>",
    "<|file_sep|>",
    "<|file_separator|>",
    "<fim_pad>",
    "<file_sep>",
    "<|EOT|>",
    "<｜end▁of▁sentence｜>",
    "▁<EOT>",
    "<EOT>",
)
_FIM_ID_KEYS = (
    ("tokenizer.ggml.fim_pre_token_id", "tokenizer.ggml.fim_suf_token_id", "tokenizer.ggml.fim_mid_token_id"),
    ("tokenizer.ggml.prefix_token_id", "tokenizer.ggml.suffix_token_id", "tokenizer.ggml.middle_token_id"),
)


def _prompt_text(token: str) -> str:
    return token.removeprefix("▁") if token.startswith("▁<") else token


def fim_tokens(info: GGUFInfo) -> FimTokens | None:
    """Find the FIM tokens: first from the token-id keys llama.cpp writes, else by vocab texts."""
    tokens = info.tokens
    if not tokens:
        return None
    vocab = set(tokens)

    def token_at(key: str) -> str | None:
        idx = info.kv.get(key)
        if isinstance(idx, int) and not isinstance(idx, bool) and 0 <= idx < len(tokens):
            return tokens[idx]
        return None

    found: tuple[str, str, str | None, Literal["psm", "spm"], str] | None = None
    for pre_key, suf_key, mid_key in _FIM_ID_KEYS:
        pre, suf, mid = token_at(pre_key), token_at(suf_key), token_at(mid_key)
        if pre is not None and suf is not None:
            _, _, order, family = _FIM_STYLES.get(pre, ("", None, "psm", "generic"))
            if mid is not None or order == "spm":
                found = (pre, suf, mid, order, family)
                break
    if found is None:
        for pre, (suf, mid, order, family) in _FIM_STYLES.items():
            if pre in vocab and suf in vocab and (mid is None or mid in vocab):
                if mid is None and "[MIDDLE]" in vocab:
                    mid = "[MIDDLE]"
                found = (pre, suf, mid, order, family)
                break
    if found is None:
        return None
    pre, suf, mid, order, family = found
    if family == "qwen" and "<|file_separator|>" in vocab:
        family = "codegemma"
    stops: list[str] = []
    for text in _FIM_STOP_TEXTS:
        if text in vocab and _prompt_text(text) not in stops:
            stops.append(_prompt_text(text))
    return FimTokens(
        prefix=_prompt_text(pre),
        suffix=_prompt_text(suf),
        middle=_prompt_text(mid) if mid is not None else None,
        order=order,
        family=family,
        stop=tuple(stops),
    )
