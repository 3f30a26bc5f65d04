"""The native ``tool_choice`` / ``parallel_tool_calls`` extension fields, as ``chat_request`` reads them.

They are OpenAI-chat-shaped (the contract ``/v1/chat/completions``, ``/v1/messages`` and
``/v1/responses`` translate into); a request that cannot be honoured is refused before the model runs.
"""

from __future__ import annotations

from typing import Any

import pytest

from llamita.server.api.request import chat_request
from llamita.server.runtime.errors import InvalidRequest

TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}},
    {"type": "function", "function": {"name": "get_time"}},
]
USER = [{"role": "user", "content": "hi"}]


def _named(name: Any) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name}}


@pytest.mark.parametrize(
    ("extra", "choice", "forced", "parallel"),
    [
        pytest.param({}, "auto", "", True, id="absent"),
        pytest.param({"tool_choice": None, "parallel_tool_calls": None}, "auto", "", True, id="null"),
        pytest.param({"tool_choice": "auto", "tools": TOOLS}, "auto", "", True, id="auto"),
        pytest.param({"tool_choice": "none", "tools": TOOLS}, "none", "", True, id="none"),
        pytest.param({"tool_choice": "none"}, "none", "", True, id="none-without-tools"),
        pytest.param({"tool_choice": "required", "tools": TOOLS}, "required", "", True, id="required"),
        pytest.param(
            {"tool_choice": _named("get_time"), "tools": TOOLS}, "function", "get_time", True, id="named"
        ),
        pytest.param(
            {"tool_choice": {"function": {"name": "get_time"}}, "tools": TOOLS},
            "function",
            "get_time",
            True,
            id="named-without-type",
        ),
        pytest.param({"parallel_tool_calls": False}, "auto", "", False, id="serial"),
        pytest.param({"parallel_tool_calls": True}, "auto", "", True, id="parallel"),
    ],
)
def test_reads_tool_choice(extra: dict[str, Any], choice: str, forced: str, parallel: bool) -> None:
    req = chat_request({"model": "m", "messages": USER, **extra})
    assert (req.tool_choice, req.forced_tool, req.parallel_tool_calls) == (choice, forced, parallel)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        pytest.param({"tool_choice": "any", "tools": TOOLS}, "tool_choice must be", id="unknown-word"),
        pytest.param({"tool_choice": 3, "tools": TOOLS}, "tool_choice must be", id="number"),
        pytest.param({"tool_choice": ["auto"], "tools": TOOLS}, "tool_choice must be", id="list"),
        pytest.param({"tool_choice": {"type": "tool", "name": "x"}, "tools": TOOLS}, "tool_choice must be"),
        pytest.param({"tool_choice": _named(""), "tools": TOOLS}, "tool_choice must be", id="blank-name"),
        pytest.param({"tool_choice": _named(7), "tools": TOOLS}, "tool_choice must be", id="name-number"),
        pytest.param(
            {"tool_choice": "required"}, '"required" needs at least one tool', id="required-no-tools"
        ),
        pytest.param(
            {"tool_choice": _named("nope"), "tools": TOOLS},
            "tool_choice names the function 'nope', which is not among tools",
            id="unknown-function",
        ),
        pytest.param(
            {"tool_choice": _named("get_time")},
            "tool_choice names the function 'get_time', which is not among tools",
            id="named-no-tools",
        ),
        pytest.param(
            {"parallel_tool_calls": "false"}, "parallel_tool_calls must be true or false", id="p-str"
        ),
        pytest.param({"parallel_tool_calls": 0}, "parallel_tool_calls must be true or false", id="p-num"),
    ],
)
def test_refuses_bad_tool_choice(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message.replace("(", r"\(")):
        chat_request({"model": "m", "messages": USER, **extra})
