"""``llamita run``: a one-shot answer or the interactive chat REPL, the way Ollama's CLI does them.

Ollama answers a one-shot prompt through ``/api/generate`` and runs the REPL over ``/api/chat``
(keeping the conversation client-side); before an interactive session it sends an empty
generate request so the model loads while the user types.  Everything here goes through
:class:`~llamita.server.client.Client`, and the REPL reads lines from an injectable function,
so tests can drive it with scripted input and a fake client.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, TextIO

from llamita.server.client import ResponseError
from llamita.server.gocompat.json import marshal
from llamita.server.gocompat.time import parse_duration

from .commands import CommandError
from .repl import Repl
from .session import (
    RunClient,
    Session,
    format_field,
    infer_think,
    keep_alive_json,
    load_model,
    stream_generate,
)
from .term import Console, WordWrapper, isatty, terminal_input
from .transfer import pull_model

# pflag gives --think a "no option" default: a bare --think means true and the next word stays
# a prompt word; a value must be attached with "=".  argparse matches an option string exactly
# before splitting on "=", so each accepted "--think=value" is registered as its own option.
THINK_FLAGS: dict[str, bool | str] = {
    "--think": True,
    "--think=": True,
    "--think=true": True,
    "--think=false": False,
    "--think=low": "low",
    "--think=medium": "medium",
    "--think=high": "high",
    "--think=max": "max",
}


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``run`` with Ollama's flags (``--truncate``/``--dimensions`` are left out)."""
    p = sub.add_parser("run", help="run a model")
    p.add_argument("model")
    p.add_argument("prompt", nargs="*", help="prompt (piped stdin is prepended)")
    p.add_argument("--keepalive", default="", help="duration to keep a model loaded (e.g. 5m)")
    p.add_argument("--verbose", action="store_true", help="show timings for response")
    p.add_argument("--insecure", action="store_true", help="use an insecure registry")
    p.add_argument(
        "--nowordwrap", action="store_true", help="don't wrap words to the next line automatically"
    )
    p.add_argument("--format", default="", help="response format (e.g. json)")
    for flag, value in THINK_FLAGS.items():
        p.add_argument(
            flag,
            dest="think",
            action="store_const",
            const=value,
            default=None,
            help="enable thinking mode: --think[=true|false|low|medium|high|max]"
            if flag == "--think"
            else argparse.SUPPRESS,
        )
    p.add_argument("--hidethinking", action="store_true", help="hide thinking output (if provided)")


def _read_stdin(stdin: TextIO) -> str:
    buffer = getattr(stdin, "buffer", None)
    if buffer is not None:
        return buffer.read().decode("utf-8", errors="replace")
    return stdin.read()


def _print_loaded(session: Session, console: Console) -> None:
    """A model created with MESSAGE lines shows that conversation before the first prompt."""
    for message in session.loaded_messages:
        if message.get("role") == "user":
            console.say(f">>> {message.get('content', '')}")
        elif message.get("role") == "assistant":
            WordWrapper(console, session.word_wrap).write(message.get("content", ""))
            console.write("\n\n")


def _embed(client: RunClient, session: Session, console: Console) -> int:
    if not session.prompt:
        raise CommandError(
            f'embedding models require input text. Usage: llamita run {session.model} "your text here"'
        )
    body: dict[str, Any] = {"model": session.model, "input": session.prompt}
    if session.keep_alive is not None:
        body["keep_alive"] = keep_alive_json(session.keep_alive)
    embeddings = client.embed(body).get("embeddings") or []
    if not embeddings:
        raise CommandError("no embeddings returned")
    console.say(marshal(embeddings[0]))
    return 0


def run(
    client: RunClient,
    args: argparse.Namespace,
    *,
    stdin: TextIO | None = None,
    console: Console | None = None,
    input_fn: Callable[[str], str] | None = None,
) -> int:
    """Ollama's RunHandler: one-shot when there is a prompt or a pipe, else the REPL."""
    stdin = stdin if stdin is not None else sys.stdin
    console = console or Console()
    session = Session(
        model=args.model,
        word_wrap=not args.nowordwrap,
        format=args.format,
        think=args.think,
        hide_thinking=args.hidethinking,
        verbose=args.verbose,
    )
    format_field(session.format)  # reject a bad --format before loading anything
    if args.keepalive:
        try:
            session.keep_alive = parse_duration(args.keepalive)
        except ValueError as e:
            raise CommandError(str(e)) from e

    prompts = list(args.prompt)
    interactive = True
    if not isatty(stdin):
        piped = _read_stdin(stdin)
        if piped:
            prompts.insert(0, piped)
        interactive = False
    session.prompt = " ".join(prompts)
    if prompts or not console.tty:
        interactive = False

    # Ollama's RunHandler: a model the server does not have (404) is pulled first, with
    # progress bars, and then shown again.
    try:
        info = client.show(session.model)
    except ResponseError as e:
        if e.status != 404:
            raise
        pull_model(client, session.model, insecure=args.insecure)
        info = client.show(session.model)
    capabilities = info.get("capabilities") or []
    session.think = infer_think(capabilities, session.think, explicit=args.think is not None)
    session.apply_show(info)

    if "embedding" in capabilities:
        return _embed(client, session, console)
    if "image" in capabilities:
        raise CommandError("image generation models are not currently supported")

    if not interactive:
        stream_generate(client, session, console)
        return 0

    load_model(client, session)
    _print_loaded(session, console)
    history: Callable[[bool], None] | None = None
    if input_fn is None:
        input_fn, history = terminal_input()
    repl = Repl(client, session, console, input_fn, history, think_explicit=args.think is not None)
    return repl.loop()
