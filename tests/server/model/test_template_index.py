"""template_index.py: closest-match family detection (Ollama's Named) and capabilities from Jinja."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from ggufgen import write_tiny_gguf
from llamita.server.model.chat_templates import FAMILY_NAMES, detect_family
from llamita.server.model.create import import_gguf
from llamita.server.model.model import load_model
from llamita.server.model.template_index import REFERENCES, closest, distance, jinja_capabilities
from llamita.server.store.blobs import Store
from llamita.server.store.names import require_name


def _levenshtein(a: str, b: str) -> int:
    """The textbook full-table distance, to check the banded one against."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[len(b)]


def test_distance_is_levenshtein_up_to_the_limit() -> None:
    assert distance("kitten", "sitting") == 3
    assert distance("", "abc") == 3 and distance("abc", "abc") == 0
    rng = random.Random(7)
    for _ in range(300):
        a = "".join(rng.choice("ab{}%") for _ in range(rng.randint(0, 40)))
        b = "".join(rng.choice("ab{}%") for _ in range(rng.randint(0, 40)))
        limit = rng.randint(1, 30)
        assert distance(a, b, limit) == min(_levenshtein(a, b), limit), (a, b, limit)


def test_every_reference_names_a_family_and_finds_itself() -> None:
    for name, references in REFERENCES.items():
        assert name in FAMILY_NAMES
        for reference in references:
            assert closest(reference) == name
            assert closest(reference.replace("\n", "\r\n")) == name  # line endings normalised


def test_a_near_copy_is_named_by_distance_where_markers_would_misname_it() -> None:
    """A Zephyr template whose comment mentions <|end|>: the marker rules say phi-3 (they look for
    <|end|> with <|user|>), the closest reference says zephyr, as Ollama's index would."""
    jinja = REFERENCES["zephyr"][0] + "{# turns end with eos, not <|end|> #}"
    assert closest(jinja) == "zephyr"
    assert detect_family(jinja) == "zephyr"
    # Edited past a fifth of the reference (or 100 edits), it is no longer a match: markers decide.
    far = REFERENCES["zephyr"][0][:150] + "{# <|end|> #}"
    assert closest(far) is None and detect_family(far) == "phi-3"


def test_a_short_unrelated_template_is_not_pulled_to_the_nearest_family() -> None:
    """89 edits from the Granite reference, but a Llama 3 template: the relative bound keeps it out."""
    llama3 = (
        "{{ bos_token }}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + "
        "'<|end_header_id|>\\n\\n' + m['content'] | trim + '<|eot_id|>' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
    )
    assert distance(llama3, REFERENCES["granite"][0], 1000) < 100
    assert closest(llama3) is None and detect_family(llama3) == "llama3-instruct"


@pytest.mark.parametrize(
    ("jinja", "caps"),
    [
        ("{% if tools %}{{ tools | tojson }}{% endif %}{{ messages[0]['content'] }}", ["tools"]),
        ("{% for m in messages %}{% if m.tool_calls %}{{ m.tool_calls }}{% endif %}{% endfor %}", ["tools"]),
        ("{{ '<think>' }}{{ m.reasoning }}{{ '</think>' }}", ["thinking"]),
        ("{% set c = message.content.split('</think>')[-1] %}{{ c }}", ["thinking"]),
        ("{% set c = m.content.split('</think>')[-1] %}{{ m.reasoning_content }}", []),
        ("{{ '<think>' }} but never closed", []),
        ("", []),
        (None, []),
    ],
)
def test_jinja_capabilities_follow_ollamas_substring_rules(jinja: str | None, caps: list[str]) -> None:
    assert jinja_capabilities(jinja) == caps


UNKNOWN_WITH_TOOLS = (
    "{% if tools %}<<TOOLS>>{{ tools | tojson }}<</TOOLS>>{% endif %}{% for message in messages %}"
    "<<{{ message['role'] }}>>{{ message['content'] }}{% if message['role'] == 'assistant' %}"
    "<think>{{ message['reasoning'] }}</think>{% endif %}{% endfor %}<<assistant>>"
)


def test_gguf_imports_use_the_closest_family_or_the_jinja_capabilities(store: Store, tmp_path: Path) -> None:
    near = REFERENCES["zephyr"][0] + "{# turns end with eos, not <|end|> #}"
    events: list[dict] = []
    import_gguf(
        store, "z", write_tiny_gguf(tmp_path / "z.gguf", fim=False, chat_template=near), events.append
    )
    assert {"status": "using autodetected template zephyr"} in events
    zephyr = load_model(store, require_name("z"))
    assert zephyr.has_template_layer and "<|assistant|>" in zephyr.template_text

    events = []
    path = write_tiny_gguf(tmp_path / "u.gguf", fim=False, chat_template=UNKNOWN_WITH_TOOLS, seed=1)
    import_gguf(store, "u", path, events.append)
    assert not [e for e in events if "autodetected" in e["status"]]
    unknown = load_model(store, require_name("u"))
    assert not unknown.has_template_layer
    assert unknown.capabilities == ["completion", "tools", "thinking"]
