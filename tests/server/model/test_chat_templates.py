from __future__ import annotations

import re
from pathlib import Path

import pytest

from ggufgen import write_tiny_gguf
from llamita.server.model.chat_templates import (
    FAMILY_NAMES,
    DerivedTemplate,
    derive_template,
    detect_family,
    family_template,
    fim_branch,
    with_fim,
)
from llamita.server.model.ggufinfo import FimTokens, read_gguf

# Representative Jinja chat templates, one per family (abridged from the shapes models ship).
JINJA = {
    "chatml": (
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
        "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
    ),
    "llama3-instruct": (
        "{{ bos_token }}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + "
        "'<|end_header_id|>\\n\\n' + m['content'] | trim + '<|eot_id|>' }}{% endfor %}"
        "{% if add_generation_prompt %}"
        "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
    ),
    "command-r": (
        "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}"
        "{{ '<|START_OF_TURN_TOKEN|><|USER_TOKEN|>' + m['content'] + "
        "'<|END_OF_TURN_TOKEN|>' }}{% endif %}{% endfor %}"
    ),
    "gemma-instruct": (
        "{{ bos_token }}{% for m in messages %}{{ '<start_of_turn>' + "
        "('model' if m['role'] == 'assistant' else m['role']) + '\\n' + "
        "m['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}"
    ),
    "deepseek": (
        "{{ bos_token }}{{ system_prompt }}{% for m in messages %}"
        "{% if m['role'] == 'user' %}{{ '<｜User｜>' + m['content'] }}{% else %}"
        "{{ '<｜Assistant｜>' + m['content'] + '<｜end▁of▁sentence｜>' }}{% endif %}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<｜Assistant｜>' }}{% endif %}"
    ),
    "granite": (
        "{%- for m in messages %}{{- '<|start_of_role|>' + m['role'] + "
        "'<|end_of_role|>' + m['content'] + '<|end_of_text|>\\n' }}{%- endfor %}"
        "{%- if add_generation_prompt %}"
        "{{- '<|start_of_role|>assistant<|end_of_role|>' }}{%- endif %}"
    ),
    "phi-3": (
        "{% for m in messages %}{% if m['role'] == 'user' %}{{'<|user|>\\n' + "
        "m['content'] + '<|end|>\\n'}}{% elif m['role'] == 'assistant' %}"
        "{{'<|assistant|>\\n' + m['content'] + '<|end|>\\n'}}{% endif %}{% endfor %}"
    ),
    "zephyr": (
        "{% for m in messages %}{% if m['role'] == 'user' %}{{ '<|user|>\\n' + "
        "m['content'] + eos_token }}{% elif m['role'] == 'assistant' %}"
        "{{ '<|assistant|>\\n' + m['content'] + eos_token }}{% endif %}"
        "{% if loop.last and add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
        "{% endfor %}"
    ),
    "llama2-chat": (
        "{% if messages[0]['role'] == 'system' %}{% set sys = '<<SYS>>\\n' + "
        "messages[0]['content'] + '\\n<</SYS>>\\n\\n' %}{% endif %}{% for m in messages %}"
        "{% if m['role'] == 'user' %}{{ bos_token + '[INST] ' + m['content'] | trim + "
        "' [/INST]' }}{% else %}{{ ' ' + m['content'] | trim + ' ' + eos_token }}"
        "{% endif %}{% endfor %}"
    ),
    "mistral-instruct": (
        "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}"
        "{{ '[INST] ' + m['content'] + ' [/INST]' }}{% elif m['role'] == 'assistant' %}"
        "{{ m['content'] + eos_token }}{% endif %}{% endfor %}"
    ),
    "codellama-70b-instruct": (
        "{% for m in messages %}{{ 'Source: ' + m['role'] + '\\n\\n ' + "
        "m['content'] | trim + ' <step> ' }}{% endfor %}"
        "{{ 'Source: assistant\\nDestination: user\\n\\n ' }}"
    ),
    "openchat": (
        "{{ bos_token }}{% for m in messages %}{{ 'GPT4 Correct ' + m['role'].title() + "
        "': ' + m['content'] + '<|end_of_turn|>' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ 'GPT4 Correct Assistant:' }}{% endif %}"
    ),
    "magicoder": (
        "{% for m in messages %}{% if m['role'] == 'user' %}{{ '@@ Instruction\\n' + "
        "m['content'] + '\\n\\n' }}{% else %}{{ '@@ Response\\n' + m['content'] + "
        "eos_token + '\\n\\n' }}{% endif %}{% endfor %}{{ '@@ Response\\n' }}"
    ),
    "deepseek-coder": (
        "{% for m in messages %}{% if m['role'] == 'user' %}{{ '### Instruction:\\n' + "
        "m['content'] + '\\n' }}{% else %}{{ '### Response:\\n' + m['content'] + "
        "'\\n<|EOT|>\\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}"
        "{{ '### Response:' }}{% endif %}"
    ),
    "starcoder2-instruct": (
        "{% for m in messages %}{% if m['role'] == 'user' %}{{ '### Instruction\\n' + "
        "m['content'] + '\\n\\n' }}{% else %}{{ '### Response\\n' + m['content'] + "
        "eos_token + '\\n\\n' }}{% endif %}{% endfor %}{{ '### Response\\n' }}"
    ),
    "alpaca": (
        "{% for m in messages %}{% if m['role'] == 'user' %}{{ '### Instruction:\\n' + "
        "m['content'] + '\\n\\n' }}{% else %}{{ '### Response:\\n' + m['content'] + "
        "'\\n\\n' }}{% endif %}{% endfor %}{{ '### Response:\\n' }}"
    ),
    "vicuna": (
        "{% if messages[0]['role'] == 'system' %}{{ messages[0]['content'] + '\\n\\n' }}"
        "{% endif %}{% for m in messages %}{% if m['role'] == 'user' %}{{ 'USER: ' + "
        "m['content'] + '\\n' }}{% elif m['role'] == 'assistant' %}{{ 'ASSISTANT: ' + "
        "m['content'] + eos_token + '\\n' }}{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
    ),
    "granite-instruct": (
        "{% for m in messages %}{% if m['role'] == 'user' %}{{ 'Question:\\n' + "
        "m['content'] + '\\n\\n' }}{% elif m['role'] == 'system' %}{{ 'System:\\n' + "
        "m['content'] + '\\n\\n' }}{% else %}{{ 'Answer:\\n' + m['content'] + '\\n\\n' }}"
        "{% endif %}{% endfor %}{{ 'Answer:\\n' }}"
    ),
    "falcon-instruct": (
        "{% for m in messages %}{% if m['role'] == 'user' %}{{ 'User: ' + m['content'] + '\\n' }}"
        "{% else %}{{ 'Falcon: ' + m['content'] + '\\n' }}{% endif %}{% endfor %}{{ 'Falcon:' }}"
    ),
}

DETECT_CASES = [(name, jinja, name) for name, jinja in JINJA.items()] + [
    # Phi-3.5 writes the role tag from the role name; only the assistant cue is literal.
    (
        "phi-3.5-generic-roles",
        "{% for m in messages %}{{'<|' + m['role'] + '|>\\n' + m['content'] + '<|end|>\\n'}}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}",
        "phi-3",
    ),
    ("starcoder2-real-newlines", JINJA["starcoder2-instruct"].replace("\\n", "\n"), "starcoder2-instruct"),
    ("codellama-instruct-is-llama2", JINJA["llama2-chat"], "llama2-chat"),
    (
        "qwen2-with-tools",
        "{%- if tools %}{{- '<|im_start|>system\\n' }}{%- endif %}" + JINJA["chatml"],
        "chatml",
    ),
]


@pytest.mark.parametrize(
    ("jinja", "expected"), [c[1:] for c in DETECT_CASES], ids=[c[0] for c in DETECT_CASES]
)
def test_detect_family(jinja: str, expected: str) -> None:
    assert detect_family(jinja) == expected


REJECT_CASES = [
    ("none", None),
    ("empty", ""),
    ("plain-concat", "{% for m in messages %}{{ m['content'] }}{% endfor %}"),
    ("harmony", "{% for m in messages %}<|start|>{{ m.role }}<|message|>{{ m.content }}<|end|>{% endfor %}"),
    ("only-response", "{{ '### Response' }}"),
]


@pytest.mark.parametrize("jinja", [c[1] for c in REJECT_CASES], ids=[c[0] for c in REJECT_CASES])
def test_detect_family_rejects(jinja: str | None) -> None:
    assert detect_family(jinja) is None


def test_every_family_has_a_detection_snippet() -> None:
    assert set(JINJA) == set(FAMILY_NAMES)
    assert len(FAMILY_NAMES) >= 8


_ACTION = re.compile(r"\{\{(.*?)\}\}", re.S)
_OUTPUT = re.compile(r"\.|(\$?\.\w+)+|\$\w+(\.\w+)*")


def assert_well_formed(src: str) -> None:
    """The Go text/template subset our templates use: balanced blocks, declared variables."""
    stack: list[str] = []
    declared = {"$"}
    for match in _ACTION.finditer(src):
        inner = match.group(1)
        assert re.fullmatch(r"-? .*? -?|-? .* -?", inner, re.S), f"spacing in {match.group(0)!r}"
        body = inner.removeprefix("-").removesuffix("-").strip()
        word = body.split()[0]
        if word in ("if", "range"):
            stack.append(word)
        elif word == "else":
            assert stack, f"else outside a block: {body!r}"
            assert body == "else" or body.startswith("else if "), body
        elif body == "end":
            assert stack, "unbalanced end"
            stack.pop()
        elif m := re.fullmatch(r"(\$\w+) :?= (.+)", body):
            if " := " in body:
                declared.add(m.group(1))
            assert m.group(1) in declared, f"{m.group(1)} assigned before declaration"
        else:
            assert _OUTPUT.fullmatch(body), f"unexpected action {body!r}"
        for var in re.findall(r"\$\w+", body):
            assert var in declared, f"{var} used before declaration"
    assert not stack, f"unclosed {stack}"
    text = _ACTION.sub("", src)
    assert "{{" not in text and "}}" not in text


# The text each body ends with: the cue after which the model speaks as the assistant.
ASSISTANT_CUES = {
    "chatml": "<|im_start|>assistant\n",
    "llama3-instruct": "<|start_header_id|>assistant<|end_header_id|>\n\n",
    "mistral-instruct": " [/INST]\n{{- else if",
    "llama2-chat": " [/INST]\n{{- else if",
    "gemma-instruct": "<start_of_turn>model\n",
    "phi-3": "<|assistant|>\n",
    "zephyr": "<|assistant|>\n",
    "command-r": "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>",
    "granite": "<|start_of_role|>assistant<|end_of_role|>",
    "granite-instruct": "Answer:\n",
    "deepseek": "<｜Assistant｜>",
    "deepseek-coder": "### Response:\n",
    "alpaca": "### Response:\n",
    "starcoder2-instruct": "### Response\n",
    "magicoder": "@@ Response\n",
    "vicuna": "ASSISTANT:",
    "codellama-70b-instruct": "Source: assistant\nDestination: user\n\n ",
    "openchat": "GPT4 Correct Assistant:",
    "falcon-instruct": "Falcon:\n",
}


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_family_template_shape(name: str) -> None:
    derived = family_template(name)
    assert derived.name == name
    assert_well_formed(derived.template)
    assert "range .Messages" in derived.template
    assert ".Suffix" not in derived.template
    cue = ASSISTANT_CUES[name]
    if cue.endswith("{{- else if"):  # [INST] formats end a user turn with the cue instead
        assert cue in derived.template
    else:
        assert derived.template.endswith(cue)
    stop = derived.params["stop"]
    assert isinstance(stop, list) and stop and all(isinstance(s, str) and s for s in stop)
    assert_well_formed(with_fim(FimTokens("<a>", "<b>", "<c>", "psm", "generic"), derived.template))


def test_family_template_unknown() -> None:
    with pytest.raises(KeyError):
        family_template("nope")


FIM_BRANCH_CASES = [
    (
        "qwen-psm",
        FimTokens("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "psm", "qwen"),
        "<|fim_prefix|>{{ .Prompt }}<|fim_suffix|>{{ .Suffix }}<|fim_middle|>",
    ),
    (
        "deepseek-psm",
        FimTokens("<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>", "psm", "deepseek"),
        "<｜fim▁begin｜>{{ .Prompt }}<｜fim▁hole｜>{{ .Suffix }}<｜fim▁end｜>",
    ),
    (
        "codellama-spaced",
        FimTokens("<PRE>", "<SUF>", "<MID>", "psm", "codellama"),
        "<PRE> {{ .Prompt }} <SUF>{{ .Suffix }} <MID>",
    ),
    (
        "codestral-spm",
        FimTokens("[PREFIX]", "[SUFFIX]", "[MIDDLE]", "spm", "codestral"),
        "[SUFFIX]{{ .Suffix }}[PREFIX]{{ .Prompt }}",
    ),
    (
        "codestral-spm-no-middle",
        FimTokens("[PREFIX]", "[SUFFIX]", None, "spm", "codestral"),
        "[SUFFIX]{{ .Suffix }}[PREFIX]{{ .Prompt }}",
    ),
]


@pytest.mark.parametrize(
    ("fim", "expected"), [c[1:] for c in FIM_BRANCH_CASES], ids=[c[0] for c in FIM_BRANCH_CASES]
)
def test_fim_branch(fim: FimTokens, expected: str) -> None:
    assert fim_branch(fim) == expected
    assert (
        with_fim(fim, "{{ .Prompt }}")
        == f"{{{{- if .Suffix }}}}{expected}{{{{- else }}}}{{{{ .Prompt }}}}{{{{- end }}}}"
    )


def test_smollm2_is_chatml(smollm2_gguf: Path) -> None:
    derived = derive_template(read_gguf(smollm2_gguf))
    assert derived == DerivedTemplate(
        "chatml",
        "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n"
        "{{ end }}<|im_start|>assistant\n",
        {"stop": ["<|im_start|>", "<|im_end|>"]},
    )


def test_derive_fim_and_chat(tmp_path: Path) -> None:
    info = read_gguf(write_tiny_gguf(tmp_path / "m.gguf", chat_template=JINJA["chatml"]))
    derived = derive_template(info)
    assert derived is not None
    assert derived.name == "chatml"
    assert derived.template == (
        "{{- if .Suffix }}<|fim_prefix|>{{ .Prompt }}<|fim_suffix|>{{ .Suffix }}<|fim_middle|>{{- else }}"
        + family_template("chatml").template
        + "{{ end }}"
    )
    assert derived.params == {"stop": ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|fim_pad|>"]}
    assert_well_formed(derived.template)


def test_derive_fim_only(tmp_path: Path) -> None:
    derived = derive_template(read_gguf(write_tiny_gguf(tmp_path / "m.gguf")))
    assert derived == DerivedTemplate(
        "qwen-fim",
        "{{- if .Suffix }}<|fim_prefix|>{{ .Prompt }}<|fim_suffix|>{{ .Suffix }}<|fim_middle|>{{- else }}"
        "{{ .Prompt }}{{- end }}",
        {"stop": ["<|endoftext|>", "<|fim_pad|>"]},
    )


def test_derive_codestral_spm(tmp_path: Path) -> None:
    path = write_tiny_gguf(
        tmp_path / "m.gguf",
        fim=False,
        vocab_extra=["[INST]", "[/INST]", "[PREFIX]", "[SUFFIX]", "[MIDDLE]"],
        chat_template=JINJA["mistral-instruct"],
    )
    derived = derive_template(read_gguf(path))
    assert derived is not None
    assert derived.name == "mistral-instruct"
    assert derived.template.startswith(
        "{{- if .Suffix }}[SUFFIX]{{ .Suffix }}[PREFIX]{{ .Prompt }}{{- else }}{{- $first"
    )
    assert derived.params == {"stop": ["[INST]", "[/INST]"]}


def test_derive_stops_deduplicated(tmp_path: Path) -> None:
    path = write_tiny_gguf(
        tmp_path / "m.gguf",
        fim=False,
        vocab_extra=["<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<|endoftext|>", "<file_sep>"],
        chat_template=JINJA["starcoder2-instruct"],
    )
    derived = derive_template(read_gguf(path))
    assert derived is not None
    assert derived.name == "starcoder2-instruct"
    assert derived.params == {"stop": ["### Instruction", "### Response", "<|endoftext|>", "<file_sep>"]}
    assert derived.template.startswith("{{- if .Suffix }}<fim_prefix>{{ .Prompt }}<fim_suffix>")


DERIVE_NONE_CASES = [
    ("no-template-no-fim", {"fim": False}),
    ("unknown-template-no-fim", {"fim": False, "chat_template": "{{ messages[0]['content'] }}"}),
]


@pytest.mark.parametrize("kwargs", [c[1] for c in DERIVE_NONE_CASES], ids=[c[0] for c in DERIVE_NONE_CASES])
def test_derive_none(tmp_path: Path, kwargs: dict[str, object]) -> None:
    assert derive_template(read_gguf(write_tiny_gguf(tmp_path / "m.gguf", **kwargs))) is None  # type: ignore[arg-type]


def test_unknown_template_with_fim_is_fim_only(tmp_path: Path) -> None:
    path = write_tiny_gguf(tmp_path / "m.gguf", chat_template="{{ messages[0]['content'] }}")
    derived = derive_template(read_gguf(path))
    assert derived is not None and derived.name == "qwen-fim"
    assert derived.template.endswith("{{- else }}{{ .Prompt }}{{- end }}")
