"""One warning per problem, until it is resolved."""

from __future__ import annotations

from llamita.lsp.status import Status


def test_warn_once_until_resolved() -> None:
    logs: list[str] = []
    warnings: list[str] = []
    status = Status(logs.append, warnings.append)
    status.problem("unreachable", "down")
    status.problem("unreachable", "down")
    status.problem("model:x", "missing x")
    assert warnings == ["down", "missing x"] and logs.count("down") == 2
    assert status.open_problems == {"unreachable", "model:x"}
    status.resolved("unreachable")
    status.resolved("never-opened")
    status.problem("unreachable", "down again")
    assert warnings[-1] == "down again" and logs == [
        "down",
        "down",
        "missing x",
        "resolved: unreachable",
        "down again",
    ]
    status.info("hello")
    assert logs[-1] == "hello"
