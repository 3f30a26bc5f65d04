"""``llamita pr``: a pull-request description for the current branch, from a local model.

The model's answer streams to stderr while it is written (when stderr is a terminal);
the finished description goes to stdout (markdown, or JSON with ``--format json``) or to
``--output``, so it can be piped into ``gh pr create --body-file -`` or a CI job. The repository root's
``.llamita/rules.md`` or ``AGENTS.md`` (:mod:`llamita.lsp.rules`) goes with every call, within the budget.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from llamita.lsp import rules as repo_rules
from llamita.lsp.client import ModelServerError, OllamaClient, ResponseError, ServerUnreachable

from . import userconfig
from .describe_pr import Description, ModelOutputError, describe, to_markdown
from .gitdiff import GitError, branch_change, open_repo

DEFAULT_NUM_CTX = 8192
OUTPUT_RESERVE = 1024


async def context_of(client: OllamaClient, model: str, requested: int | None) -> int:
    """num_ctx to ask for: the flag, else the model's trained context capped at 8192."""
    if requested:
        return requested
    trained = (await client.show(model)).context_length
    return min(trained, DEFAULT_NUM_CTX) if trained else 4096


def output_reserve(num_ctx: int) -> int:
    """Tokens kept for the answer: 1024, or a third of a small context."""
    return min(OUTPUT_RESERVE, num_ctx // 3)


def make_generate(
    runner: asyncio.Runner,
    client: OllamaClient,
    model: str,
    num_ctx: int,
    rules: repo_rules.Rules | None = None,
) -> Callable[..., str]:
    """The synchronous ``generate`` that :func:`describe` calls; each call runs on ``runner``'s loop.

    Every call carries the repository ``rules`` (``AGENTS.md``) as its system message.
    """
    options = {"num_ctx": num_ctx, "temperature": 0.2, "num_predict": output_reserve(num_ctx)}

    async def chat(prompt: str, schema: dict[str, Any], on_token: Callable[[str], None] | None) -> str:
        parts = []
        body = {
            "model": model,
            "messages": repo_rules.messages(prompt, rules),
            "format": schema,
            "options": options,
            "keep_alive": "5m",
        }
        async for chunk in client.chat_stream(body, priority="batch"):
            text = (chunk.get("message") or {}).get("content") or ""
            parts.append(text)
            if on_token and text:
                on_token(text)
        return "".join(parts)

    def generate(prompt: str, schema: dict[str, Any], on_token: Callable[[str], None] | None) -> str:
        return runner.run(chat(prompt, schema, on_token))

    return generate


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="llamita pr", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--base", help="base branch (default: the remote's default branch, else main/master)")
    p.add_argument("--head", default="HEAD", help="revision to describe (default HEAD)")
    p.add_argument("--model", help="model (default: config pr_model/model, else the server's first model)")
    p.add_argument("--output", type=Path, help="write the description to this file")
    p.add_argument("--format", choices=("markdown", "json"), default="markdown")
    p.add_argument("--prompts", type=Path, help="directory with prompt files overriding the built-in ones")
    p.add_argument("--max-calls", type=int, help="model calls at most for large diffs (default 4)")
    p.add_argument("--num-ctx", type=int, help="context length to request from the model")
    p.add_argument(
        "-C", "--repo", type=Path, default=Path("."), help="repository (default: current directory)"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        repo = open_repo(args.repo)
        config = userconfig.load(Path(repo.working_tree_dir or "."))
        change = branch_change(repo, args.base, args.head)
    except (GitError, userconfig.ConfigError) as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    started = time.monotonic()
    with asyncio.Runner() as runner:
        client = userconfig.client_for(config)
        try:
            model = runner.run(userconfig.pick_model(client, args.model or config.pr_model or config.model))
            num_ctx = runner.run(context_of(client, model, args.num_ctx))
            budget = num_ctx - output_reserve(num_ctx)
            rules = repo_rules.load(repo.working_tree_dir, budget)
            echo = _stderr_echo() if sys.stderr.isatty() else None
            result = describe(
                change,
                make_generate(runner, client, model, num_ctx, rules),
                budget_tokens=budget - (rules.tokens if rules else 0),
                max_calls=args.max_calls or config.max_calls,
                prompts_dir=args.prompts or config.prompts_path,
                on_token=echo,
            )
        except ServerUnreachable as e:
            print(f"Error: could not reach the model server at {client.base_url}: {e}", file=sys.stderr)
            return 1
        except ResponseError as e:
            print(f"Error: {e.message}", file=sys.stderr)
            return 1
        except (ModelServerError, ModelOutputError) as e:
            print(f"Error: {e}", file=sys.stderr)
            return 1
        finally:
            runner.run(client.aclose())
    if sys.stderr.isatty():
        print(f"\n({result.calls} model call(s), {time.monotonic() - started:.1f}s)", file=sys.stderr)
    text = render(result, args.format)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def render(result: Description, fmt: str) -> str:
    return json.dumps(result.to_json(), indent=2) + "\n" if fmt == "json" else to_markdown(result)


def _stderr_echo() -> Callable[[str], None]:
    def echo(text: str) -> None:
        sys.stderr.write(text)
        sys.stderr.flush()

    return echo


if __name__ == "__main__":
    sys.exit(main())
