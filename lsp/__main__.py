"""``llamita lsp`` / ``python -m llamita.lsp``: start the language server (stdio, or ``--tcp PORT``).

Logs go to stderr: stdout is the protocol channel in stdio mode.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from . import config


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="llamita lsp",
        description="Language server: FIM inline completions and review diagnostics from an "
        "Ollama-compatible server (OLLAMA_HOST, or the serverUrl setting).",
        epilog="environment:\n" + "\n".join(f"  {name:<22} {meaning}" for name, meaning in config.describe()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--stdio", action="store_true", help="talk over stdin/stdout (the default)")
    p.add_argument("--tcp", type=int, metavar="PORT", help="listen on a TCP port instead (for debugging)")
    p.add_argument("--host", default="127.0.0.1", help="address for --tcp (default 127.0.0.1)")
    p.add_argument("--log-level", default="WARNING", help="stderr log level (default WARNING)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=args.log_level.upper(), format="%(name)s: %(message)s")
    from .features import create_server  # imported here: pygls is not needed for --help

    server = create_server()
    if args.tcp is not None:
        server.start_tcp(args.host, args.tcp)
    else:
        server.start_io()
    return 0


if __name__ == "__main__":
    sys.exit(main())
