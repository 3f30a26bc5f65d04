"""``llamita``: Ollama's command line, as a client of the HTTP API (except ``serve``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from llamita.server import __version__, config
from llamita.server.client import Client, ResponseError, ServerUnreachable

from . import commands, ps, run, usage
from . import transfer as registry


class CobraParser(argparse.ArgumentParser):
    """A subcommand parser that lets flags and positionals mix, as Cobra does for every Ollama
    command (``run m hello --verbose world``); plain argparse would bind the empty prompt at
    ``m`` and reject the words after a flag."""

    _intermixing = False

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        if self._intermixing:  # parse_known_intermixed_args calls back into this method
            return super().parse_known_args(args, namespace)
        self._intermixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


def _parser() -> argparse.ArgumentParser:
    env_help = "\n".join(f"  {k:<26} {v}" for k, v in config.describe())
    parser = argparse.ArgumentParser(
        prog="llamita",
        description="Large language model runner for editors (Ollama-compatible).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--version", action="store_true", help="show version information")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CobraParser)

    sub.add_parser(
        "serve",
        aliases=["start"],
        help="start the server",
        epilog="Environment variables:\n" + env_help,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )

    p = sub.add_parser("create", help="create a model from a Modelfile")
    p.add_argument("model")
    p.add_argument("-f", "--file", help='name of the Modelfile (default "Modelfile")')
    p.add_argument("-q", "--quantize", help="quantize model to this level (e.g. q4_K_M)")

    p = sub.add_parser("show", help="show information for a model")
    p.add_argument("model")
    for flag in ("license", "modelfile", "parameters", "system", "template"):
        p.add_argument(f"--{flag}", action="store_true", help=f"show {flag} of a model")
    p.add_argument("-v", "--verbose", action="store_true", help="show detailed model information")

    for alias in (["list", "ls"],):
        p = sub.add_parser(alias[0], aliases=alias[1:], help="list models")
        p.add_argument("prefix", nargs="?", default="")

    for name, (_, help_text) in DELEGATED.items():
        sub.add_parser(name, help=help_text, add_help=False)

    p = sub.add_parser("cp", help="copy a model")
    p.add_argument("source")
    p.add_argument("destination")

    p = sub.add_parser("rm", help="remove a model")
    p.add_argument("models", nargs="+")

    run.add_parser(sub)
    ps.add_parsers(sub)
    usage.add_parser(sub)
    registry.add_parsers(sub)
    return parser


# Subcommands that belong to the editor-side tools: their modules parse their own arguments,
# and the server package never imports them (``lsp/`` talks HTTP only).
DELEGATED = {
    "pr": ("llamita.lsp.tools.pr", "describe the current branch as a pull request"),
    "review": ("llamita.lsp.tools.review", "review staged changes, a branch or files (pre-commit hook)"),
    "lsp": ("llamita.lsp.__main__", "language server for editors (stdio; --tcp PORT for debugging)"),
}


def _delegate(argv: Sequence[str]) -> int | None:
    if argv and argv[0] in DELEGATED:
        import importlib

        module = importlib.import_module(DELEGATED[argv[0]][0])
        return int(module.main(list(argv[1:])))
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    delegated = _delegate(argv)
    if delegated is not None:
        return delegated
    parser = _parser()
    args = parser.parse_args(argv)
    if args.version:
        print(f"llamita version is {__version__}")
        return 0
    if args.command in ("serve", "start"):
        from .serve import serve

        return serve()
    handlers: dict[str, Callable[[Client, argparse.Namespace], int]] = {
        "create": commands.create,
        "show": commands.show,
        "list": commands.list_models,
        "ls": commands.list_models,
        "cp": commands.copy,
        "rm": commands.remove,
        "run": run.run,
        "ps": ps.ps,
        "stop": ps.stop,
        "pull": registry.pull,
        "push": registry.push,
        "usage": usage.usage,
    }
    handler = handlers.get(args.command or "")
    if handler is None:
        parser.print_help()
        return 0
    try:
        with Client() as client:
            return handler(client, args)
    except ServerUnreachable as e:
        print(
            f"Error: could not connect to a llamita server at {e}, run 'llamita serve' to start it",
            file=sys.stderr,
        )
    except ResponseError as e:
        print(f"Error: {e}", file=sys.stderr)
    except (commands.CommandError, OSError) as e:
        print(f"Error: {e}", file=sys.stderr)
    except KeyboardInterrupt:
        return 130
    return 1


if __name__ == "__main__":
    sys.exit(main())
