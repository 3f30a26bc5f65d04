"""Create through the real code path, with byte-exact expectations written out by hand."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import pytest

from llamita.server.api.errors import status_of
from llamita.server.model.create import CreateError, create, import_gguf, valid_relative_path
from llamita.server.model.model import ModelNotFound
from llamita.server.store.blobs import Store
from llamita.server.store.names import require_name

pytestmark = pytest.mark.model


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _file_sha(path: Path) -> str:
    return _sha(path.read_bytes())


def _run(store: Store, request: dict) -> list[dict]:
    return list(create(store, request))


SMOL_CONFIG = (
    b'{"model_format":"gguf","model_family":"llama","model_families":["llama"],'
    b'"model_type":"134.52M","file_type":"Q4_1","architecture":"amd64","os":"linux"}\n'
)
CHATML_PARAMS = b'{"stop":["\\u003c|im_start|\\u003e","\\u003c|im_end|\\u003e"]}\n'


def test_import_gguf_layers(store: Store, smollm2_gguf: Path) -> None:
    events: list[dict] = []
    import_gguf(store, "smollm2:135m", smollm2_gguf, events.append)
    statuses = [e["status"] for e in events]
    assert statuses[0] == "parsing GGUF"
    assert "using autodetected template chatml" in statuses
    assert statuses[-2:] == ["writing manifest", "success"]

    manifest = store.get(require_name("smollm2:135m"))
    assert manifest is not None
    kinds = [layer.media_type.rsplit(".", 1)[-1] for layer in manifest.layers]
    assert kinds == ["model", "template", "params"]
    assert manifest.layers[0].digest == _file_sha(smollm2_gguf)
    assert manifest.layers[0].size == smollm2_gguf.stat().st_size
    assert store.read_blob(manifest.layers[2].digest) == CHATML_PARAMS
    assert store.read_blob(manifest.config.digest) == SMOL_CONFIG
    assert manifest.config.digest == _sha(SMOL_CONFIG)
    template = store.read_blob(manifest.layers[1].digest).decode()
    assert "<|im_start|>" in template and ".Messages" in template


def test_file_create_manifest_matches_ollama_bytes(store: Store, smollm2_gguf: Path) -> None:
    """A create from ``files``: the model layer says ``"from": <its name in files>`` as Ollama's
    ggufLayers writes it (manifest.NewLayerFromLayer(digest, mediaType, filePath)), so the
    manifest bytes (and the model's ID) are Ollama's."""
    digest, _ = store.import_file(smollm2_gguf)
    events = _run(store, {"model": "smol", "files": {"weights/smol.gguf": digest}, "stream": False})
    assert events[-1] == {"status": "success"}
    manifest = store.get(require_name("smol"))
    assert manifest is not None
    template = manifest.layers[1]
    layers = [
        ("model", digest, smollm2_gguf.stat().st_size, "weights/smol.gguf"),
        ("template", template.digest, template.size, ""),
        ("params", _sha(CHATML_PARAMS), len(CHATML_PARAMS), ""),
    ]
    layers_json = ",".join(
        f'{{"mediaType":"application/vnd.ollama.image.{kind}","digest":"{digest}","size":{size}'
        + (f',"from":"{src}"' if src else "")
        + "}"
        for kind, digest, size, src in layers
    )
    expected = (
        '{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",'
        '"config":{"mediaType":"application/vnd.docker.container.image.v1+json",'
        f'"digest":"{_sha(SMOL_CONFIG)}","size":{len(SMOL_CONFIG)}}},'
        f'"layers":[{layers_json}]}}\n'
    ).encode()
    assert manifest.raw == expected
    assert manifest.digest == hashlib.sha256(expected).hexdigest()


def test_modelfile_style_create_matches_ollama_bytes(seeded_store: Store) -> None:
    """FROM + PARAMETER + TEMPLATE + SYSTEM: every blob and the manifest written out by hand."""
    base = seeded_store.get(require_name("smollm2:135m"))
    assert base is not None
    template = (
        "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
        "<|im_start|>user\n{{ .Prompt }}<|im_end|>\n<|im_start|>assistant\n"
    )
    system = "You are a terse assistant."
    events = _run(
        seeded_store,
        {
            "model": "terse",
            "from": "smollm2:135m",
            "template": template,
            "system": system,
            "parameters": {"temperature": 0.2, "num_ctx": 4096, "stop": ["<|im_end|>"]},
        },
    )
    assert events[-1] == {"status": "success"}

    params = b'{"num_ctx":4096,"stop":["\\u003c|im_end|\\u003e"],"temperature":0.2}\n'
    model_layer = base.layers[0]
    expected_layers = [
        ("model", model_layer.digest, model_layer.size, "smollm2:135m"),
        ("template", _sha(template.encode()), len(template.encode()), ""),
        ("system", _sha(system.encode()), len(system.encode()), ""),
        ("params", _sha(params), len(params), ""),
    ]
    layers_json = ",".join(
        f'{{"mediaType":"application/vnd.ollama.image.{kind}","digest":"{digest}","size":{size}'
        + (f',"from":"{src}"' if src else "")
        + "}"
        for kind, digest, size, src in expected_layers
    )
    expected_manifest = (
        '{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",'
        '"config":{"mediaType":"application/vnd.docker.container.image.v1+json",'
        f'"digest":"{_sha(SMOL_CONFIG)}","size":{len(SMOL_CONFIG)}}},'
        f'"layers":[{layers_json}]}}\n'
    ).encode()
    manifest = seeded_store.get(require_name("terse"))
    assert manifest is not None
    assert manifest.raw == expected_manifest
    assert manifest.digest == hashlib.sha256(expected_manifest).hexdigest()
    assert seeded_store.read_blob(_sha(params)) == params


def test_parameters_merge_and_lists_replace(seeded_store: Store) -> None:
    _run(seeded_store, {"model": "a", "from": "smollm2:135m", "parameters": {"top_k": 10, "temperature": 1}})
    _run(seeded_store, {"model": "b", "from": "a", "parameters": {"temperature": 0.6, "stop": ["X"]}})
    manifest = seeded_store.get(require_name("b"))
    assert manifest is not None
    params = manifest.layer("params")
    assert params is not None
    assert seeded_store.read_blob(params.digest) == b'{"stop":["X"],"temperature":0.6,"top_k":10}\n'


def test_messages_and_licenses(seeded_store: Store) -> None:
    _run(
        seeded_store,
        {
            "model": "m",
            "from": "smollm2:135m",
            "license": ["MIT", "Apache <2.0>"],
            "messages": [{"role": "user", "content": "hi"}, {"role": "Assistant", "content": "hello & bye"}],
        },
    )
    manifest = seeded_store.get(require_name("m"))
    assert manifest is not None
    assert [seeded_store.read_blob(x.digest) for x in manifest.layers_of("license")] == [
        b"MIT",
        b"Apache <2.0>",
    ]
    messages = manifest.layer("messages")
    assert messages is not None
    assert seeded_store.read_blob(messages.digest) == (
        b'[{"role":"user","content":"hi"},{"role":"assistant","content":"hello \\u0026 bye"}]\n'
    )


def test_recreate_prunes_replaced_layers(seeded_store: Store) -> None:
    _run(seeded_store, {"model": "s", "from": "smollm2:135m", "system": "first"})
    _run(seeded_store, {"model": "s", "from": "smollm2:135m", "system": "second"})
    assert not seeded_store.has_blob(_sha(b"first"))
    assert seeded_store.has_blob(_sha(b"second"))


BAD = [
    ("no-source", {"model": "x"}, 400, "neither 'from' or 'files' was specified"),
    ("bad-name", {"model": "../x", "from": "smollm2:135m"}, 400, "invalid model name"),
    (
        "abs-file",
        {"model": "x", "files": {"/etc/passwd": "sha256:" + "0" * 64}},
        400,
        "file path must be relative",
    ),
    (
        "dotdot-file",
        {"model": "x", "files": {"../a.gguf": "sha256:" + "0" * 64}},
        400,
        "file path must be relative",
    ),
    ("empty-digest", {"model": "x", "files": {"a.gguf": ""}}, 400, "invalid digest format"),
    ("missing-blob", {"model": "x", "files": {"a.gguf": "sha256:" + "0" * 64}}, 400, "not found"),
    ("missing-from", {"model": "x", "from": "nope"}, 404, "model 'nope:latest' not found"),
    (
        "bad-template",
        {"model": "x", "from": "smollm2:135m", "template": "{{ .Prompt"},
        400,
        "template error: ",
    ),
    (
        "two-adapters",
        {
            "model": "x",
            "from": "smollm2:135m",
            "adapters": {"a": "sha256:" + "0" * 64, "b": "sha256:" + "1" * 64},
        },
        400,
        "only one adapter is currently supported",
    ),
    (
        "quantize-quantized",
        {"model": "x", "from": "smollm2:135m", "quantize": "q8_0"},
        400,
        "quantization is only supported for F16, BF16 and F32 models",
    ),
    (
        "quantize-unknown",
        {"model": "x", "from": "smollm2:135m", "quantize": "q9_9"},
        400,
        "unsupported quantization type Q9_9",
    ),
    # Fields of the wrong JSON type are Go's unmarshal errors, before anything is written.
    *(
        (f"type-{field}", {"model": "x", "from": "smollm2:135m", "system": "s", field: value}, 400, message)
        for field, value, message in [
            ("model", 5, "cannot unmarshal number into Go struct field CreateRequest.model of type string"),
            ("from", ["a"], "cannot unmarshal array into Go struct field CreateRequest.from of type string"),
            ("files", "x", "cannot unmarshal string into Go struct field CreateRequest.files"),
            ("adapters", {"a": 5}, "cannot unmarshal number into Go struct field CreateRequest.adapters"),
            ("template", {}, "cannot unmarshal object into Go struct field CreateRequest.template"),
            (
                "stream",
                "no",
                "cannot unmarshal string into Go struct field CreateRequest.stream of type bool",
            ),
            ("quantize", 8, "cannot unmarshal number into Go struct field CreateRequest.quantize"),
            ("parameters", [], "cannot unmarshal array into Go struct field CreateRequest.parameters"),
            ("messages", {}, "cannot unmarshal object into Go struct field CreateRequest.messages"),
            ("messages", [5], "cannot unmarshal number into Go struct field CreateRequest.messages"),
            ("messages", [{"role": 5}], "cannot unmarshal number into Go struct field Message.messages.role"),
            ("license", 5, "license must be a string or a list of strings"),
            ("license", ["MIT", 5], "license must be a string or a list of strings"),
        ]
    ),
    # Parameters are checked as a Modelfile's would be, so no stored model fails every request.
    *(
        (
            f"param-{name}",
            {"model": "x", "from": "smollm2:135m", "system": "s", "parameters": params},
            400,
            msg,
        )
        for name, params, msg in [
            ("top_k-string", {"top_k": "abc"}, 'option "top_k" must be of type integer'),
            ("stop-number", {"stop": 5}, 'option "stop" must be of type array'),
            ("stop-mixed", {"stop": ["a", 1]}, 'option "stop" must be of an array of strings'),
            ("unknown", {"temprature": 0.5}, "unknown parameter 'temprature'"),
            ("removed", {"tfs_z": 1.0}, "unknown parameter 'tfs_z'"),
            ("null", {"top_p": None}, 'option "top_p" must be of type float32'),
            ("float32-overflow", {"temperature": 1e39}, 'option "temperature" must be of type float32'),
            ("bool-as-int", {"num_ctx": True}, 'option "num_ctx" must be of type integer'),
        ]
    ),
]


@pytest.mark.parametrize(("request_body", "status", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_requests_change_nothing(
    seeded_store: Store, request_body: dict, status: int, message: str
) -> None:
    before = sorted(p.name for p in seeded_store.blobs.iterdir())
    with pytest.raises(
        (CreateError, ModelNotFound), match=message.replace("(", r"\(").replace(")", r"\)")
    ) as info:
        _run(seeded_store, request_body)
    assert status_of(info.value) == status
    assert sorted(p.name for p in seeded_store.blobs.iterdir()) == before
    assert [m.name.shortest for m in seeded_store.iter_manifests()] == ["smollm2:135m"]


def test_valid_parameters_are_stored_as_sent(seeded_store: Store) -> None:
    """Deprecated names (the sampler reads mirostat*) and int-valued floats pass unchanged."""
    params = {"mirostat": 2, "mirostat_tau": 4.5, "top_k": 20.0, "stop": ["x"], "use_mmap": False}
    _run(seeded_store, {"model": "p", "from": "smollm2:135m", "parameters": params})
    manifest = seeded_store.get(require_name("p"))
    assert manifest is not None
    layer = manifest.layer("params")
    assert layer is not None
    assert json.loads(seeded_store.read_blob(layer.digest)) == params


def _store_listing(store: Store) -> tuple[list[str], list[str]]:
    blobs = sorted(p.name for p in store.blobs.iterdir())
    manifests = sorted(str(p.relative_to(store.manifests)) for p in store.manifests.rglob("*") if p.is_file())
    return blobs, manifests


def test_failure_after_layers_are_written_leaves_store_as_it_was(seeded_store: Store) -> None:
    """The manifest cannot be written (a file sits where its directory should be): every
    template, system, license, params, messages and config blob the create wrote is removed."""
    blocker = seeded_store.manifests / "registry.ollama.ai" / "library" / "blocked"
    blocker.write_bytes(b"not a directory")
    before = _store_listing(seeded_store)
    request = {
        "model": "blocked",
        "from": "smollm2:135m",
        "template": "{{ .Prompt }} unique-template",
        "system": "unique system",
        "license": ["unique license"],
        "parameters": {"top_k": 7},
        "messages": [{"role": "user", "content": "unique message"}],
    }
    events = []
    with pytest.raises(OSError):
        for event in create(seeded_store, request):
            events.append(event["status"])
    assert events[-1] == "writing manifest"  # every layer had been written
    assert _store_listing(seeded_store) == before


def test_abandoned_create_leaves_store_as_it_was(seeded_store: Store) -> None:
    """A client that goes away before the manifest is written (the generator is closed)."""
    before = _store_listing(seeded_store)
    stream = create(seeded_store, {"model": "gone", "from": "smollm2:135m", "system": "never stored"})
    for event in stream:
        if event["status"] == "writing manifest":
            break
    stream.close()
    assert _store_listing(seeded_store) == before


def test_failed_create_keeps_blobs_it_found(seeded_store: Store) -> None:
    """Blobs that existed before the create (the base model's) are never removed."""
    _run(seeded_store, {"model": "first", "from": "smollm2:135m", "system": "shared system"})
    before = _store_listing(seeded_store)
    blocker = seeded_store.manifests / "registry.ollama.ai" / "library" / "second"
    blocker.write_bytes(b"")
    with pytest.raises(OSError):
        _run(seeded_store, {"model": "second", "from": "first", "system": "shared system"})
    assert _store_listing(seeded_store)[0] == before[0]


def test_not_gguf_is_rejected(seeded_store: Store, tmp_path: Path) -> None:
    digest, _ = seeded_store.write_blob([b"this is not a model\n" * 100])
    with pytest.raises(CreateError, match="supplied file was not in GGUF format") as info:
        _run(seeded_store, {"model": "x", "files": {"x.gguf": digest}})
    assert status_of(info.value) == 400
    assert seeded_store.get(require_name("x")) is None


def test_concurrent_creates_of_one_name_serialise(seeded_store: Store) -> None:
    results: list[object] = []

    def worker(system: str) -> None:
        try:
            results.append(
                _run(seeded_store, {"model": "race", "from": "smollm2:135m", "system": system})[-1]
            )
        except Exception as e:  # pragma: no cover - reported by the assertion below
            results.append(e)

    threads = [threading.Thread(target=worker, args=(f"system {i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [{"status": "success"}] * 4
    manifest = seeded_store.get(require_name("race"))
    assert manifest is not None
    system = manifest.layer("system")
    assert system is not None
    assert seeded_store.read_blob(system.digest).decode().startswith("system ")
    small = [p for p in seeded_store.blobs.iterdir() if p.stat().st_size < 64]
    assert sum(p.read_bytes().startswith(b"system ") for p in small) == 1  # replaced ones pruned
    assert json.loads(seeded_store.read_blob(manifest.config.digest))["file_type"] == "Q4_1"


@pytest.mark.parametrize(
    ("path", "ok"),
    [
        ("a.gguf", True),
        ("dir/a.gguf", True),
        (".", True),
        ("", False),
        ("/a", False),
        ("a/../b", False),
        ("./a", False),
        ("a//b", False),
        ("a\\b", False),
    ],
)
def test_valid_relative_path(path: str, ok: bool) -> None:
    assert valid_relative_path(path) is ok


def test_info_overrides_the_config_as_ollama_writes_it(seeded_store: Store) -> None:
    info = {
        "capabilities": ["tools", 5],  # Go keeps "" for an entry that is not a string
        "model_family": "smol",
        "base_name": "SmolLM2",
        "quantization_level": "Q9",
        "parameter_size": "135M",
        "context_length": 2048,
        "embedding_length": 576.0,
        "ignored": {"any": "thing"},
    }
    assert _run(seeded_store, {"model": "i", "from": "smollm2:135m", "info": info})[-1] == {
        "status": "success"
    }
    manifest = seeded_store.get(require_name("i"))
    assert manifest is not None
    assert seeded_store.read_blob(manifest.config.digest) == (
        b'{"model_format":"gguf","model_family":"smol","model_families":["smol","llama"],"model_type":"135M",'
        b'"file_type":"Q9","capabilities":["tools",""],"context_length":2048,"embedding_length":576,'
        b'"base_name":"SmolLM2","architecture":"amd64","os":"linux"}\n'
    )
    # An empty info changes nothing: the config is the base model's, byte for byte.
    _run(seeded_store, {"model": "j", "from": "smollm2:135m", "info": {}})
    plain = seeded_store.get(require_name("j"))
    assert plain is not None and seeded_store.read_blob(plain.config.digest) == SMOL_CONFIG


@pytest.mark.parametrize(
    ("info", "message"),
    [
        ({"model_family": 5}, 'info field "model_family" must be a string'),
        ({"base_name": None}, 'info field "base_name" must be a string'),
        ({"quantization_level": ["Q4"]}, 'info field "quantization_level" must be a string'),
        ({"parameter_size": 1}, 'info field "parameter_size" must be a string'),
        ({"context_length": "4096"}, 'info field "context_length" must be a number'),
        ({"context_length": True}, 'info field "context_length" must be a number'),
        ({"embedding_length": -1}, 'info field "embedding_length" must be a non-negative integer'),
        ({"context_length": 1.5}, 'info field "context_length" must be a non-negative integer'),
    ],
)
def test_info_of_the_wrong_type_is_a_400(seeded_store: Store, info: dict, message: str) -> None:
    with pytest.raises(CreateError, match=f"^{message}$") as e:
        _run(seeded_store, {"model": "bad", "from": "smollm2:135m", "info": info})
    assert status_of(e.value) == 400
    assert seeded_store.get(require_name("bad")) is None


def test_from_reads_the_local_suffix_as_ollama(seeded_store: Store) -> None:
    assert _run(seeded_store, {"model": "l", "from": "smollm2:135m:local"})[-1] == {"status": "success"}
    local = seeded_store.get(require_name("l"))
    base = seeded_store.get(require_name("smollm2:135m"))
    assert local is not None and base is not None
    assert local.layers[0].digest == base.layers[0].digest and local.layers[0].from_ == "smollm2:135m"
    for source in ("smollm2:135m:cloud:local", "   "):
        with pytest.raises(CreateError, match=r"^invalid model name$") as e:
            _run(seeded_store, {"model": "m", "from": source})
        assert status_of(e.value) == 400
