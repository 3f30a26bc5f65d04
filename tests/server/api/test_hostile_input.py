"""Hostile request bodies found by fuzzing: every one is a 400 with a message, never a 500."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.model

# Every route that reads a JSON body (the openai routes answer in their own error shape).
JSON_ROUTES = [
    ("POST", "/api/show"),
    ("POST", "/api/create"),
    ("POST", "/api/copy"),
    ("DELETE", "/api/delete"),
    ("POST", "/api/pull"),
    ("POST", "/api/push"),
    ("POST", "/api/generate"),
    ("POST", "/api/chat"),
    ("POST", "/api/embed"),
    ("POST", "/api/embeddings"),
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/completions"),
    ("POST", "/v1/embeddings"),
]

HOSTILE_BODIES = {
    "nested-1000": b'{"model":"smollm2:135m","x":' + b"[" * 1000 + b"]" * 1000 + b"}",
    "int-4300-digits": b'{"model":"smollm2:135m","x":' + b"7" * 4300 + b"}",
    "float-overflow": b'{"model":"smollm2:135m","options":{"temperature":1e999}}',
    "nan": b'{"model":"smollm2:135m","options":{"temperature":NaN}}',
    "infinity": b'{"model":"smollm2:135m","system":Infinity}',
}


def _error_text(r: httpx.Response) -> str:
    error = r.json()["error"]
    return error["message"] if isinstance(error, dict) else error


@pytest.mark.parametrize("body", HOSTILE_BODIES.values(), ids=HOSTILE_BODIES.keys())
def test_hostile_json_is_a_400_on_every_route(server, body: bytes) -> None:
    for method, path in JSON_ROUTES:
        r = httpx.request(method, server.url + path, content=body)
        assert (path, r.status_code) == (path, 400)
        assert _error_text(r).startswith("invalid JSON body: "), path
    assert [m.name.shortest for m in server.store.iter_manifests()] == ["smollm2:135m"]


def test_lone_surrogates_become_replacement_characters(server) -> None:
    """Go decodes "\\ud800" as U+FFFD; the rendered prompt must still encode as UTF-8."""
    body = b'{"model":"smollm2:135m","prompt":"a\\ud800b","system":"\\udfff","_debug_render_only":true}'
    r = httpx.post(server.url + "/api/generate", content=body)
    assert r.status_code == 200
    rendered = r.json()["_debug_info"]["rendered_template"]
    assert "user\na\ufffdb<|im_end|>" in rendered and "system\n\ufffd<|im_end|>" in rendered

    message = b'{"role":"user","content":"\\ud83dx"}'
    body = b'{"model":"smollm2:135m","messages":[' + message + b'],"_debug_render_only":true}'
    r = httpx.post(server.url + "/api/chat", content=body)
    assert r.status_code == 200
    assert "\ufffdx" in r.json()["_debug_info"]["rendered_template"]


WRONG_TYPES = [
    (
        "copy-source",
        "POST",
        "/api/copy",
        {"source": 5, "destination": "x"},
        "CopyRequest.source of type string",
    ),
    (
        "copy-destination",
        "POST",
        "/api/copy",
        {"source": "smollm2:135m", "destination": ["x"]},
        "CopyRequest.destination of type string",
    ),
    (
        "show-system",
        "POST",
        "/api/show",
        {"model": "smollm2:135m", "system": 5},
        "ShowRequest.system of type string",
    ),
    (
        "show-verbose",
        "POST",
        "/api/show",
        {"model": "smollm2:135m", "verbose": "y"},
        "ShowRequest.verbose of type bool",
    ),
    ("show-options", "POST", "/api/show", {"model": "smollm2:135m", "options": []}, "ShowRequest.options"),
    ("delete-model", "DELETE", "/api/delete", {"model": 5}, "DeleteRequest.model of type string"),
    ("delete-name", "DELETE", "/api/delete", {"name": {"a": 1}}, "DeleteRequest.name of type string"),
    ("pull-model", "POST", "/api/pull", {"model": 5}, "PullRequest.model of type string"),
    (
        "pull-insecure",
        "POST",
        "/api/pull",
        {"model": "x", "insecure": "yes"},
        "PullRequest.insecure of type bool",
    ),
    ("push-name", "POST", "/api/push", {"name": []}, "PushRequest.name of type string"),
    ("push-stream", "POST", "/api/push", {"model": "x", "stream": "no"}, "PushRequest.stream of type bool"),
    ("create-model", "POST", "/api/create", {"model": 1, "from": "smollm2:135m"}, "CreateRequest.model"),
    ("create-system", "POST", "/api/create", {"model": "x", "from": "smollm2:135m", "system": 1.5}, "system"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "message"), [w[1:] for w in WRONG_TYPES], ids=[w[0] for w in WRONG_TYPES]
)
def test_fields_of_the_wrong_type_are_400(server, method: str, path: str, body: dict, message: str) -> None:
    blobs = sorted(p.name for p in server.store.blobs.iterdir())
    r = httpx.request(method, server.url + path, json=body)
    assert r.status_code == 400
    assert r.json()["error"].startswith("json: cannot unmarshal ")
    assert message in r.json()["error"]
    assert sorted(p.name for p in server.store.blobs.iterdir()) == blobs
    assert [m.name.shortest for m in server.store.iter_manifests()] == ["smollm2:135m"]


BAD_CREATES = [
    ("top_k-string", {"parameters": {"top_k": "abc"}}, 'option "top_k" must be of type integer'),
    ("stop-number", {"parameters": {"stop": 5}}, 'option "stop" must be of type array'),
    ("unknown-parameter", {"parameters": {"temprature": 1}}, "unknown parameter 'temprature'"),
    ("license-number", {"license": 5}, "license must be a string or a list of strings"),
    ("message-not-object", {"messages": ["hi"]}, "cannot unmarshal string into Go struct field"),
]


@pytest.mark.parametrize(("extra", "message"), [b[1:] for b in BAD_CREATES], ids=[b[0] for b in BAD_CREATES])
def test_bad_create_is_400_and_stores_nothing(server, extra: dict, message: str) -> None:
    """Checked before the first progress line, so a streamed create is a 400 too."""
    blobs = sorted(p.name for p in server.store.blobs.iterdir())
    body = {"model": "bad", "from": "smollm2:135m", "system": "a new system prompt", **extra}
    r = httpx.post(server.url + "/api/create", json=body)
    assert r.status_code == 400
    assert message in r.json()["error"]
    assert sorted(p.name for p in server.store.blobs.iterdir()) == blobs
    assert [m.name.shortest for m in server.store.iter_manifests()] == ["smollm2:135m"]


def test_created_parameters_work_at_request_time(server) -> None:
    """What create accepts, generate accepts: the stored model answers."""
    body = {
        "model": "good",
        "from": "smollm2:135m",
        "parameters": {"top_k": 1, "stop": ["\n"]},
        "stream": False,
    }
    assert httpx.post(server.url + "/api/create", json=body).json() == {"status": "success"}
    r = httpx.post(
        server.url + "/api/generate",
        json={"model": "good", "prompt": "Hi", "stream": False, "options": {"num_predict": 2}},
        timeout=120,
    )
    assert r.status_code == 200 and r.json()["done"] is True


@pytest.mark.parametrize(
    "template",
    [
        pytest.param("{{ if 1 }}" * 1000 + "{{ end }}" * 1000, id="nested-ifs"),
        pytest.param("{{ " + "(" * 1000 + "1" + ")" * 1000 + " }}", id="nested-parentheses"),
        pytest.param("{{ .Prompt }}" * 100_000, id="megabyte"),
    ],
)
def test_hostile_templates_are_400(server, template: str) -> None:
    """At create (nothing stored) and as a generate override: a template error, not a 500."""
    blobs = sorted(p.name for p in server.store.blobs.iterdir())
    r = httpx.post(
        server.url + "/api/create", json={"model": "t", "from": "smollm2:135m", "template": template}
    )
    assert r.status_code == 400 and r.json()["error"].startswith("template error: ")
    assert sorted(p.name for p in server.store.blobs.iterdir()) == blobs
    body = {"model": "smollm2:135m", "prompt": "hi", "template": template, "_debug_render_only": True}
    r = httpx.post(server.url + "/api/generate", json=body)
    assert r.status_code == 400 and r.json()["error"].startswith("template error: ")


def test_runaway_template_override_is_a_400(server) -> None:
    r = httpx.post(
        server.url + "/api/generate",
        json={
            "model": "smollm2:135m",
            "prompt": "hi",
            "template": "{{ range 10000000 }}x{{ end }}",
            "stream": False,
        },
        timeout=120,
    )
    assert r.status_code == 400
    error = r.json()["error"]
    assert (
        error.startswith("template error: ")
        and "exceeded the limit of" in error
        and "execution steps" in error
    )
    assert httpx.get(server.url + "/api/version").status_code == 200
