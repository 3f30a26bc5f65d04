"""The describer's control flow with a scripted model: batching, coverage, rendering."""

from __future__ import annotations

import json

from llamita.lsp.tools.describe_pr import Description, ModelOutputError, describe, parse_json, to_markdown
from llamita.lsp.tools.gitdiff import Change, FileDiff


def change_of(n_files: int, lines: int) -> Change:
    files = []
    for i in range(n_files):
        body = "".join(f"+value_{i}_{j} = {j}\n" for j in range(lines))
        files.append(FileDiff(f"src/mod{i}.py", "A", additions=lines, patch=f"@@ -0,0 +1,{lines} @@\n{body}"))
    files.append(FileDiff("package-lock.json", "M", additions=900))
    return Change(files, commits=["Add modules"], branch="feature")


class ScriptedModel:
    """Answers like a cooperative model: describes every file it was shown."""

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def __call__(self, prompt: str, schema: dict, on_token) -> str:
        self.prompts.append(prompt)
        shown = [line.split()[2] for line in prompt.splitlines() if line.startswith("## File: ")]
        walk = [{"file": f, "change": f"adds values in {f}", "group": "core"} for f in shown]
        if "walkthrough" in schema["properties"] and "title" not in schema["properties"]:
            return json.dumps({"walkthrough": walk})
        answer = {
            "title": "Add modules",
            "type": "feature",
            "summary": ["Adds modules"],
            "review_order": list(reversed(shown)) or ["src/mod0.py"],
        }
        if "walkthrough" in schema["properties"]:
            answer["walkthrough"] = walk
        text = "Sure! " + json.dumps(answer)
        if on_token:
            on_token(text)
        return text


def test_small_change_takes_one_call() -> None:
    model = ScriptedModel()
    d = describe(change_of(2, 5), model, budget_tokens=4000, max_calls=4)
    assert d.calls == 1 and len(model.prompts) == 1
    assert [w["file"] for w in d.walkthrough] == ["src/mod0.py", "src/mod1.py"]
    assert d.not_covered == [{"file": "package-lock.json", "reason": "lock file"}]
    assert d.review_order == ["src/mod1.py", "src/mod0.py"]


def test_large_change_is_mapped_then_reduced_within_max_calls() -> None:
    model = ScriptedModel()
    d = describe(change_of(12, 120), model, budget_tokens=2500, max_calls=3)
    assert d.calls == len(model.prompts) <= 3
    walked = {w["file"] for w in d.walkthrough}
    missing = {n["file"] for n in d.not_covered}
    assert walked | missing == {f"src/mod{i}.py" for i in range(12)} | {"package-lock.json"}
    assert not walked & missing
    assert any(n["reason"] == "did not fit in the model's context budget" for n in d.not_covered)


def test_files_the_model_forgot_are_listed() -> None:
    def forgetful(prompt: str, schema: dict, on_token) -> str:
        return json.dumps(
            {"title": "t", "type": "weird", "summary": [], "walkthrough": [], "review_order": []}
        )

    d = describe(change_of(1, 3), forgetful, budget_tokens=4000)
    assert d.type == "chore" and d.summary == ["(no summary)"]
    assert {"file": "src/mod0.py", "reason": "the model did not describe it"} in d.not_covered


def test_parse_json_repairs_prose_and_rejects_garbage() -> None:
    assert parse_json('```json\n{"a": 1}\n```') == {"a": 1}
    for bad in ("no json here", "{broken", "[1, 2]"):
        try:
            parse_json(bad)
        except ModelOutputError:
            continue
        raise AssertionError(bad)


def test_markdown_sections() -> None:
    d = Description(
        "Title",
        "fix",
        ["one"],
        [{"file": "a.py", "change": "c", "group": "core"}],
        ["a.py"],
        [{"file": "b.bin", "reason": "binary file"}],
        calls=1,
    )
    text = to_markdown(d)
    for heading in (
        "# Title",
        "**Type:** fix",
        "## Summary",
        "## Walkthrough",
        "## Suggested review order",
        "## Not covered",
    ):
        assert heading in text
    assert "- `b.bin`: binary file" in text


def test_truncated_json_is_closed() -> None:
    from llamita.lsp.tools.describe_pr import close_truncated

    cases = {
        '{"a": [1, 2': {"a": [1, 2]},
        '{"a": "unfinish': {"a": "unfinish"},
        '{"a": 1, "b":': {"a": 1},
        '{"a": {"b": "x\\\\"': {"a": {"b": "x\\"}},
        '{"w": [{"f": "x", "c": "long te': {"w": [{"f": "x", "c": "long te"}]},
        '{"a": "v",': {"a": "v"},
        '["x",': ["x"],
    }
    for text, expected in cases.items():
        assert json.loads(close_truncated(text)) == expected, text
        if isinstance(expected, dict):
            assert parse_json(text) == expected
