"""The client-side subcommands: each talks to the server over HTTP only."""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path
from typing import Any

from tqdm import tqdm

from llamita.server.client import Client
from llamita.server.model.modelfile import ModelfileError, parse
from llamita.server.model.modelfile_plan import to_create_request

from .fmt import human_bytes, human_time, parse_time, table
from .progress import byte_bar


class CommandError(Exception):
    """A user-facing failure of a subcommand (bad Modelfile, missing file...)."""


def _sha256(path: Path, bar: tqdm) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            bar.update(len(chunk))
    return "sha256:" + h.hexdigest()


def _bar(desc: str, total: int) -> tqdm[Any]:
    return byte_bar(desc, total, disable=None)


def create(client: Client, args: argparse.Namespace) -> int:
    """Parse the Modelfile, upload its files as blobs, then stream ``/api/create``."""
    path = Path(args.file) if args.file else Path("Modelfile")
    if path.is_file():
        text: str | bytes = path.read_bytes()
    elif args.file:
        raise CommandError(f"open {args.file}: no such file or directory")
    else:
        text = "FROM .\n"
    try:
        plan = to_create_request(parse(text), path.resolve().parent)
    except ModelfileError as e:
        raise CommandError(str(e)) from e

    digests: dict[Path, str] = {}
    for local in [*plan.files.values(), *plan.adapters.values(), *plan.draft_files.values()]:
        size = local.stat().st_size
        with _bar(f"gathering model components {local.name}", size) as bar:
            digests[local] = _sha256(local, bar)
        with _bar(f"copying file {digests[local][:19]}", size) as bar:
            client.create_blob(digests[local], local, bar.update)

    body: dict[str, Any] = plan.with_digests(digests)
    body["model"] = args.model
    if args.quantize:
        body["quantize"] = args.quantize
    bar: tqdm | None = None
    for event in client.create(body):
        status = event.get("status", "")
        if "total" in event:
            if bar is None:
                bar = _bar(status, event["total"])
            bar.n = event.get("completed", 0)
            bar.refresh()
            continue
        if bar is not None:
            bar.close()
            bar = None
        print(status)
    return 0


def _section(title: str, rows: list[tuple[str, str]]) -> str:
    if not rows:
        return ""
    width = max(len(k) for k, _ in rows)
    body = "\n".join(f"    {k.ljust(width)}    {v}".rstrip() for k, v in rows)
    return f"  {title}\n{body}\n\n"


def show(client: Client, args: argparse.Namespace) -> int:
    info = client.show(args.model, verbose=args.verbose)
    for flag in ("license", "modelfile", "parameters", "system", "template"):
        if getattr(args, flag):
            print(info.get(flag, ""))
            return 0
    details = info.get("details", {})
    model_info = info.get("model_info", {})
    arch = model_info.get("general.architecture", details.get("family", ""))
    rows = [("architecture", arch), ("parameters", details.get("parameter_size", ""))]
    for key, label in (("context_length", "context length"), ("embedding_length", "embedding length")):
        if f"{arch}.{key}" in model_info:
            rows.append((label, str(model_info[f"{arch}.{key}"])))
    rows.append(("quantization", details.get("quantization_level", "")))
    out = _section("Model", rows)
    out += _section("Capabilities", [(c, "") for c in info.get("capabilities", [])])
    params = [tuple(line.split(None, 1)) for line in info.get("parameters", "").splitlines() if line.strip()]
    out += _section("Parameters", [(p[0], p[1] if len(p) > 1 else "") for p in params])
    if info.get("system"):
        out += _section("System", [(line, "") for line in info["system"].splitlines()[:2]])
    if info.get("license"):
        out += _section("License", [(line, "") for line in info["license"].splitlines()[:2]])
    if args.verbose:
        meta = [(k, str(v)) for k, v in sorted(model_info.items())]
        out += _section("Metadata", meta)
    print(out.rstrip("\n") + "\n")
    return 0


def list_models(client: Client, args: argparse.Namespace) -> int:
    rows = []
    prefix = args.prefix.lower()
    for m in client.list():
        if prefix and not m["name"].lower().startswith(prefix):
            continue
        rows.append(
            [m["name"], m["digest"][:12], human_bytes(m["size"]), human_time(parse_time(m["modified_at"]))]
        )
    print(table(["NAME", "ID", "SIZE", "MODIFIED"], rows))
    return 0


def copy(client: Client, args: argparse.Namespace) -> int:
    client.copy(args.source, args.destination)
    print(f"copied '{args.source}' to '{args.destination}'")
    return 0


def remove(client: Client, args: argparse.Namespace) -> int:
    for name in args.models:
        client.delete(name)
        print(f"deleted '{name}'")
    return 0
