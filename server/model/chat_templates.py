"""Derive an Ollama (Go ``text/template``) prompt template from a GGUF's metadata.

Used by ``/api/create`` when the Modelfile has no TEMPLATE: Ollama then picks the closest of its
bundled templates to the GGUF's Jinja ``tokenizer.chat_template`` and adds the template and its
``stop`` params as layers (status ``using autodetected template <name>``). llamita does the same
(:mod:`.template_index`: the closest reference Jinja under 100 edits), then, for a template no
reference is close to, recognises the family by the marker strings below, and additionally adds
a fill-in-the-middle branch when the vocabulary has FIM tokens, so coding models get the
``insert`` capability (``.Suffix``) without a hand-written Modelfile.

Recognised families (first matching rule wins):

========================  =========================================================  =======================
name                      Jinja markers                                              stop
========================  =========================================================  =======================
llama3-instruct           ``<|start_header_id|>``                                    header tokens, eot_id
command-r                 ``<|START_OF_TURN_TOKEN|>``                                turn tokens
gemma-instruct            ``<start_of_turn>``                                        turn tokens
chatml                    ``<|im_start|>`` (Qwen, SmolLM, Hermes, Yi, ...)            im_start, im_end
deepseek                  ``<｜User｜>`` / ``<｜Assistant｜>`` (V2/V3/R1)               sentence/role tokens
granite                   ``<|start_of_role|>`` (Granite 3.x)                        role tokens, end_of_text
phi-3                     ``<|end|>`` and ``<|user|>`` or ``<|assistant|>``          role tokens, end
zephyr                    ``<|user|>`` or ``<|assistant|>``                          role tokens, </s>
llama2-chat               ``[INST]`` and ``<<SYS>>`` (also CodeLlama-Instruct)       INST/SYS markers
mistral-instruct          ``[INST]``                                                 INST markers
codellama-70b-instruct    ``Source:`` and ``<step>``                                 Source/Destination/step
openchat                  ``GPT4 Correct``                                           end_of_turn
magicoder                 ``@@ Instruction``                                         @@ headers
deepseek-coder            ``### Instruction:`` and ``<|EOT|>``                       ### headers, <|EOT|>
starcoder2-instruct       ``### Instruction`` without a colon                        ### headers, endoftext
alpaca                    ``### Instruction:``                                       ### headers
vicuna                    ``USER:`` and ``ASSISTANT:``                               USER:/ASSISTANT:
falcon-instruct           ``User:`` and ``Falcon:``                                  User:/Assistant:
granite-instruct          ``Question:`` and ``Answer:`` (Granite Code)               System/Question/Answer
========================  =========================================================  =======================

FIM (see ``ggufinfo.fim_tokens``): the chat template is wrapped as
``{{- if .Suffix }}<fill>{{- else }}<chat>{{ end }}`` where ``<fill>`` follows the family's order:
``PRE{{ .Prompt }}SUF{{ .Suffix }}MID`` (PSM), ``<PRE> {{ .Prompt }} <SUF>{{ .Suffix }} <MID>``
(CodeLlama) or ``[SUFFIX]{{ .Suffix }}[PREFIX]{{ .Prompt }}`` (Codestral, SPM). Without a chat
template the else branch is ``{{ .Prompt }}``. The closing ``{{ end }}`` does not trim, because the
chat bodies end with significant whitespace (``assistant\\n``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from .ggufinfo import FimTokens, GGUFInfo, fim_tokens
from .template_index import closest


@dataclass(frozen=True)
class DerivedTemplate:
    """A template plus the params layer Ollama would store next to it (``{"stop": [...]}``)."""

    name: str
    template: str
    params: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class _Family:
    name: str
    template: str
    stop: tuple[str, ...]


# Each body renders the conversation from .Messages and ends with the assistant header, so the
# model continues as the assistant. .System (all system messages joined) is used by families
# whose format has no system turn of its own.

_CHATML = """\
{{- range .Messages }}<|im_start|>{{ .Role }}
{{ .Content }}<|im_end|>
{{ end }}<|im_start|>assistant
"""

_LLAMA3 = """\
{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>

{{ .Content }}<|eot_id|>
{{- end }}<|start_header_id|>assistant<|end_header_id|>

"""

_MISTRAL = """\
{{- $first := true }}
{{- range .Messages }}
{{- if eq .Role "user" }}[INST] {{ if and $first $.System }}{{ $.System }}

{{ end }}{{ $first = false }}{{ .Content }} [/INST]
{{- else if eq .Role "assistant" }}{{ .Content }}</s>
{{- end }}
{{- end }}"""

_LLAMA2 = """\
{{- $first := true }}
{{- range .Messages }}
{{- if eq .Role "user" }}
{{- if not $first }}<s>{{ end }}[INST] {{ if and $first $.System }}<<SYS>>
{{ $.System }}
<</SYS>>

{{ end }}{{ $first = false }}{{ .Content }} [/INST]
{{- else if eq .Role "assistant" }} {{ .Content }} </s>
{{- end }}
{{- end }}"""

_GEMMA = """\
{{- $first := true }}
{{- range .Messages }}
{{- if eq .Role "user" }}<start_of_turn>user
{{ if and $first $.System }}{{ $.System }}

{{ end }}{{ $first = false }}{{ .Content }}<end_of_turn>
{{ else if eq .Role "assistant" }}<start_of_turn>model
{{ .Content }}<end_of_turn>
{{ end }}
{{- end }}<start_of_turn>model
"""


def _role_tag(end: str) -> str:
    """Phi-3 and Zephyr: ``<|role|>\\ncontent<end>\\n``, system included, then ``<|assistant|>\\n``."""
    return "{{- range .Messages }}<|{{ .Role }}|>\n{{ .Content }}" + end + "\n{{ end }}<|assistant|>\n"


_COMMAND_R = """\
{{- if .System }}<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>{{ .System }}<|END_OF_TURN_TOKEN|>{{ end }}
{{- range .Messages }}
{{- if eq .Role "user" }}<|START_OF_TURN_TOKEN|><|USER_TOKEN|>{{ .Content }}<|END_OF_TURN_TOKEN|>
{{- else if eq .Role "assistant" }}<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>{{ .Content }}<|END_OF_TURN_TOKEN|>
{{- end }}
{{- end }}<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>"""

_GRANITE = """\
{{- range .Messages }}<|start_of_role|>{{ .Role }}<|end_of_role|>{{ .Content }}<|end_of_text|>
{{ end }}<|start_of_role|>assistant<|end_of_role|>"""

_GRANITE_CODE = """\
{{- range .Messages }}
{{- if eq .Role "system" }}System:
{{ else if eq .Role "user" }}Question:
{{ else if eq .Role "assistant" }}Answer:
{{ end }}{{ .Content }}

{{ end }}Answer:
"""

_DEEPSEEK = """\
{{- if .System }}{{ .System }}{{ end }}
{{- range .Messages }}
{{- if eq .Role "user" }}<｜User｜>{{ .Content }}
{{- else if eq .Role "assistant" }}<｜Assistant｜>{{ .Content }}<｜end▁of▁sentence｜>
{{- end }}
{{- end }}<｜Assistant｜>"""

_DEEPSEEK_CODER = """\
{{- if .System }}{{ .System }}
{{ end }}
{{- range .Messages }}
{{- if eq .Role "user" }}### Instruction:
{{ .Content }}
{{ else if eq .Role "assistant" }}### Response:
{{ .Content }}
<|EOT|>
{{ end }}
{{- end }}### Response:
"""


def _instruction(instruction: str, response: str, eos: str = "") -> str:
    """Alpaca-like formats: optional system paragraph, then ``header\\ncontent\\n\\n`` turns."""
    return (
        "{{- if .System }}{{ .System }}\n\n{{ end }}\n"
        "{{- range .Messages }}\n"
        '{{- if eq .Role "user" }}' + instruction + "\n{{ .Content }}\n\n"
        '{{ else if eq .Role "assistant" }}' + response + "\n{{ .Content }}" + eos + "\n\n"
        "{{ end }}\n"
        "{{- end }}" + response + "\n"
    )


_VICUNA = """\
{{- if .System }}{{ .System }}

{{ end }}
{{- range .Messages }}
{{- if eq .Role "user" }}USER: {{ .Content }}
{{ else if eq .Role "assistant" }}ASSISTANT: {{ .Content }}</s>
{{ end }}
{{- end }}ASSISTANT:"""

_CODELLAMA_70B = """\
{{- range .Messages }}Source: {{ .Role }}

 {{ .Content }} <step> {{ end }}Source: assistant
Destination: user

 """

_OPENCHAT = """\
{{- if .System }}{{ .System }}<|end_of_turn|>{{ end }}
{{- range .Messages }}
{{- if eq .Role "user" }}GPT4 Correct User: {{ .Content }}<|end_of_turn|>
{{- else if eq .Role "assistant" }}GPT4 Correct Assistant: {{ .Content }}<|end_of_turn|>
{{- end }}
{{- end }}GPT4 Correct Assistant:"""

_FALCON = """\
{{- range .Messages }}
{{- if eq .Role "system" }}System: {{ .Content }}
{{ else if eq .Role "user" }}User:
{{ .Content }}
{{ else if eq .Role "assistant" }}Falcon:
{{ .Content }}
{{ end }}
{{- end }}Falcon:
"""

_FAMILIES: dict[str, _Family] = {
    f.name: f
    for f in (
        _Family("chatml", _CHATML, ("<|im_start|>", "<|im_end|>")),
        _Family("llama3-instruct", _LLAMA3, ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")),
        _Family("mistral-instruct", _MISTRAL, ("[INST]", "[/INST]")),
        _Family("llama2-chat", _LLAMA2, ("[INST]", "[/INST]", "<<SYS>>", "<</SYS>>")),
        _Family("gemma-instruct", _GEMMA, ("<start_of_turn>", "<end_of_turn>")),
        _Family("phi-3", _role_tag("<|end|>"), ("<|end|>", "<|system|>", "<|user|>", "<|assistant|>")),
        _Family("zephyr", _role_tag("</s>"), ("<|system|>", "</s>", "<|user|>", "<|assistant|>")),
        _Family("command-r", _COMMAND_R, ("<|START_OF_TURN_TOKEN|>", "<|END_OF_TURN_TOKEN|>")),
        _Family("granite", _GRANITE, ("<|start_of_role|>", "<|end_of_role|>", "<|end_of_text|>")),
        _Family("granite-instruct", _GRANITE_CODE, ("System:", "Question:", "Answer:")),
        _Family(
            "deepseek",
            _DEEPSEEK,
            ("<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>"),
        ),
        _Family("deepseek-coder", _DEEPSEEK_CODER, ("### Instruction:", "### Response:", "<|EOT|>")),
        _Family(
            "alpaca", _instruction("### Instruction:", "### Response:"), ("### Instruction:", "### Response")
        ),
        _Family(
            "starcoder2-instruct",
            _instruction("### Instruction", "### Response", "<|endoftext|>"),
            ("### Instruction", "### Response", "<|endoftext|>"),
        ),
        _Family(
            "magicoder", _instruction("@@ Instruction", "@@ Response"), ("@@ Instruction", "@@ Response")
        ),
        _Family("vicuna", _VICUNA, ("USER:", "ASSISTANT:")),
        _Family("codellama-70b-instruct", _CODELLAMA_70B, ("Source:", "Destination:", "<step>")),
        _Family("openchat", _OPENCHAT, ("<|end_of_turn|>",)),
        _Family("falcon-instruct", _FALCON, ("User:", "Assistant:")),
    )
}

FAMILY_NAMES: tuple[str, ...] = tuple(_FAMILIES)


def _has(*markers: str) -> Callable[[str], bool]:
    return lambda jinja: all(m in jinja for m in markers)


_NO_COLON_INSTRUCTION = re.compile(r"### Instruction(?!:)")

# Ordered: specific token markers first, plain-text formats last.
_RULES: tuple[tuple[Callable[[str], bool], str], ...] = (
    (_has("<|start_header_id|>"), "llama3-instruct"),
    (_has("<|START_OF_TURN_TOKEN|>"), "command-r"),
    (_has("<start_of_turn>"), "gemma-instruct"),
    (_has("<|im_start|>"), "chatml"),
    (lambda j: "<｜User｜>" in j or "<｜Assistant｜>" in j, "deepseek"),
    (_has("<|start_of_role|>"), "granite"),
    (lambda j: "<|end|>" in j and ("<|user|>" in j or "<|assistant|>" in j), "phi-3"),
    (lambda j: "<|user|>" in j or "<|assistant|>" in j, "zephyr"),
    (_has("[INST]", "<<SYS>>"), "llama2-chat"),
    (_has("[INST]"), "mistral-instruct"),
    (_has("Source:", "<step>"), "codellama-70b-instruct"),
    (_has("GPT4 Correct"), "openchat"),
    (_has("@@ Instruction"), "magicoder"),
    (_has("### Instruction:", "<|EOT|>"), "deepseek-coder"),
    (lambda j: _NO_COLON_INSTRUCTION.search(j) is not None and "### Response" in j, "starcoder2-instruct"),
    (_has("### Instruction:", "### Response"), "alpaca"),
    (_has("USER:", "ASSISTANT:"), "vicuna"),
    (_has("User:", "Falcon:"), "falcon-instruct"),
    (_has("Question:", "Answer:"), "granite-instruct"),
)


def detect_family(chat_template: str | None) -> str | None:
    """Name of the chat-format family of a Jinja chat template, or None if unrecognised."""
    if not chat_template:
        return None
    nearest = closest(chat_template)  # Ollama's rule first
    if nearest is not None:
        return nearest
    for matches, name in _RULES:
        if matches(chat_template):
            return name
    return None


def family_template(name: str) -> DerivedTemplate:
    """The template and params for a family name from ``FAMILY_NAMES`` (KeyError otherwise)."""
    family = _FAMILIES[name]
    return DerivedTemplate(family.name, family.template, {"stop": list(family.stop)})


def fim_branch(fim: FimTokens) -> str:
    """The text of the ``if .Suffix`` branch, in the order the model was trained on."""
    if fim.order == "spm":
        return f"{fim.suffix}{{{{ .Suffix }}}}{fim.prefix}{{{{ .Prompt }}}}"
    middle = fim.middle or ""
    if fim.family == "codellama":
        return f"{fim.prefix} {{{{ .Prompt }}}} {fim.suffix}{{{{ .Suffix }}}} {middle}"
    return f"{fim.prefix}{{{{ .Prompt }}}}{fim.suffix}{{{{ .Suffix }}}}{middle}"


def with_fim(fim: FimTokens, body: str) -> str:
    """Wrap a chat body (or ``{{ .Prompt }}``) so requests with a suffix render the fill prompt."""
    if body == "{{ .Prompt }}":
        return f"{{{{- if .Suffix }}}}{fim_branch(fim)}{{{{- else }}}}{{{{ .Prompt }}}}{{{{- end }}}}"
    return f"{{{{- if .Suffix }}}}{fim_branch(fim)}{{{{- else }}}}{body}{{{{ end }}}}"


def derive_template(info: GGUFInfo) -> DerivedTemplate | None:
    """Template + params for a GGUF without a Modelfile TEMPLATE; None keeps Ollama's default."""
    family_name = detect_family(info.chat_template)
    fim = fim_tokens(info)
    if family_name is None and fim is None:
        return None
    if family_name is None:
        assert fim is not None
        name, body, stop = f"{fim.family}-fim", "{{ .Prompt }}", list(fim.stop)
    else:
        family = _FAMILIES[family_name]
        name, body, stop = family.name, family.template, list(family.stop)
    if fim is None:
        return DerivedTemplate(name, body, {"stop": stop})
    stop += [s for s in fim.stop if s not in stop]
    params: dict[str, object] = {"stop": stop} if stop else {}
    return DerivedTemplate(name, with_fim(fim, body), params)
