"""Which chat family a GGUF's Jinja template is, by closest match (Ollama's rule), and what a Jinja
template alone says about tools and thinking.

Ollama (template/template.go ``Named``) compares the GGUF's ``tokenizer.chat_template`` with the
Jinja templates of its index by Levenshtein distance and takes the closest one if it is under 100
edits.  llamita does the same against :data:`REFERENCES`: one or two Jinja texts per family, written
here in the shapes the families' models ship (not copied from Ollama's index), with one more bound:
the distance must also be under a fifth of the reference's length.  Chat templates are short
(200-400 characters is common), and two different families' short templates are often fewer than
100 edits apart (a Llama 3 template is 89 edits from a Granite one), so the absolute bound alone
would misname them.  A template no reference is that close to falls back to the marker rules of
:mod:`.chat_templates`.

When no Go template is derived at all, :func:`jinja_capabilities` reads ``tools`` and ``thinking``
from the Jinja text with Ollama's substring rules (server/images.go ``chatTemplateCapabilities``).
"""

from __future__ import annotations

THRESHOLD = 100  # Ollama accepts the closest template only under this distance
RELATIVE = 5  # ...and llamita only under len(reference) / RELATIVE


def _turns(first: str, each: str, prompt: str) -> str:
    """``{first}{% for message in messages %}{each}{% endfor %}`` plus the generation prompt."""
    return (
        first + "{% for message in messages %}" + each + "{% endfor %}"
        "{% if add_generation_prompt %}{{ '" + prompt + "' }}{% endif %}"
    )


_ROLE = "message['role']"
_CONTENT = "message['content']"

# family name (a key of chat_templates' families) -> reference Jinja templates
REFERENCES: dict[str, tuple[str, ...]] = {
    "chatml": (
        _turns(
            "",
            "{{'<|im_start|>' + " + _ROLE + " + '\\n' + " + _CONTENT + " + '<|im_end|>' + '\\n'}}",
            "<|im_start|>assistant\\n",
        ),
        _turns(
            "{% if messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful assistant."
            "<|im_end|>\\n' }}{% endif %}",
            "{{'<|im_start|>' + " + _ROLE + " + '\\n' + " + _CONTENT + " + '<|im_end|>' + '\\n'}}",
            "<|im_start|>assistant\\n",
        ),
    ),
    "llama3-instruct": (
        "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
        "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim "
        "+ '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
        "{{ content }}{% endfor %}{% if add_generation_prompt %}"
        "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}",
    ),
    "mistral-instruct": (
        "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != "
        "(loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate "
        "user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}"
        "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
        "{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles "
        "are supported!') }}{% endif %}{% endfor %}",
    ),
    "llama2-chat": (
        "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set "
        "system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set "
        "system_message = false %}{% endif %}{% for message in loop_messages %}{% if loop.index0 == 0 "
        "and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + "
        "'\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}"
        "{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + "
        "' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + "
        "eos_token }}{% endif %}{% endfor %}",
    ),
    "gemma-instruct": (
        "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not "
        "supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'assistant') %}"
        "{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}"
        "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}"
        "{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}",
    ),
    "phi-3": (
        _turns(
            "",
            "{% if message['role'] == 'system' %}{{'<|system|>\\n' + message['content'] + '<|end|>\\n'}}"
            "{% elif message['role'] == 'user' %}{{'<|user|>\\n' + message['content'] + '<|end|>\\n'}}"
            "{% elif message['role'] == 'assistant' %}{{'<|assistant|>\\n' + message['content'] + "
            "'<|end|>\\n'}}{% endif %}",
            "<|assistant|>\\n",
        ),
    ),
    "zephyr": (
        "{% for message in messages %}\\n{% if message['role'] == 'user' %}\\n{{ '<|user|>\\n' + "
        "message['content'] + eos_token }}\\n{% elif message['role'] == 'system' %}\\n{{ '<|system|>\\n' "
        "+ message['content'] + eos_token }}\\n{% elif message['role'] == 'assistant' %}\\n"
        "{{ '<|assistant|>\\n'  + message['content'] + eos_token }}\\n{% endif %}\\n{% if loop.last and "
        "add_generation_prompt %}\\n{{ '<|assistant|>' }}\\n{% endif %}\\n{% endfor %}",
    ),
    "command-r": (
        "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
        "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
        "{% set system_message = false %}{% endif %}{% if system_message != false %}"
        "{{ '<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>' + system_message + '<|END_OF_TURN_TOKEN|>' }}"
        "{% endif %}{% for message in loop_messages %}{% set content = message['content'] %}"
        "{% if message['role'] == 'user' %}{{ '<|START_OF_TURN_TOKEN|><|USER_TOKEN|>' + content.strip() "
        "+ '<|END_OF_TURN_TOKEN|>' }}{% elif message['role'] == 'assistant' %}"
        "{{ '<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>'  + content.strip() + '<|END_OF_TURN_TOKEN|>' }}"
        "{% endif %}{% endfor %}{% if add_generation_prompt %}"
        "{{ '<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>' }}{% endif %}",
    ),
    "granite": (
        _turns(
            "",
            "{{- '<|start_of_role|>' + message['role'] + '<|end_of_role|>' + message['content'] + "
            "'<|end_of_text|>\\n' }}",
            "<|start_of_role|>assistant<|end_of_role|>",
        ),
    ),
    "deepseek": (
        "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}"
        "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
        "{{ '<｜User｜>' + message['content'] }}{% elif message['role'] == 'assistant' %}"
        "{{ '<｜Assistant｜>' + message['content'] + '<｜end▁of▁sentence｜>' }}{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<｜Assistant｜>' }}{% endif %}",
    ),
    "alpaca": (
        "{% for message in messages %}{% if message['role'] == 'system' %}{{ message['content'] + "
        "'\\n\\n' }}{% elif message['role'] == 'user' %}{{ '### Instruction:\\n' + message['content'] + "
        "'\\n\\n' }}{% elif message['role'] == 'assistant' %}{{ '### Response:\\n' + message['content'] "
        "+ eos_token + '\\n\\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}"
        "{{ '### Response:\\n' }}{% endif %}",
    ),
    "vicuna": (
        "{% if messages[0]['role'] == 'system' %}{{ messages[0]['content'] + '\\n\\n' }}{% endif %}"
        "{% for message in messages %}{% if message['role'] == 'user' %}{{ 'USER: ' + message['content'] "
        "+ '\\n' }}{% elif message['role'] == 'assistant' %}{{ 'ASSISTANT: ' + message['content'] + "
        "eos_token + '\\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}"
        "{% endif %}",
    ),
    "falcon-instruct": (
        "{% for message in messages %}{% if not loop.first %}{{ '\\n' }}{% endif %}{% if "
        "message['role'] == 'system' %}{{ 'System: ' }}{% elif message['role'] == 'user' %}"
        "{{ 'User: ' }}{% elif message['role'] == 'assistant' %}{{ 'Falcon: ' }}{% endif %}"
        "{{ message['content'] }}{% endfor %}{% if add_generation_prompt %}{{ '\\nFalcon:' }}{% endif %}",
    ),
}


def distance(a: str, b: str, limit: int = THRESHOLD) -> int:
    """Levenshtein distance of ``a`` and ``b``, or ``limit`` when it is ``limit`` or more.

    Only the diagonal band of width ``2 * limit`` is computed (Ukkonen), and the rows stop as
    soon as every cell of one is at ``limit``: a GGUF template of a few thousand characters is
    compared with every reference in milliseconds, in pure Python.
    """
    if abs(len(a) - len(b)) >= limit:
        return limit
    if len(a) < len(b):
        a, b = b, a
    big = limit
    previous = [min(j, big) for j in range(len(b) + 1)]
    for i in range(1, len(a) + 1):
        low, high = max(1, i - limit), min(len(b), i + limit)
        current = [big] * (len(b) + 1)
        current[0] = min(i, big)
        ch = a[i - 1]
        row_min = current[0] if low == 1 else big
        for j in range(low, high + 1):
            cost = previous[j - 1] + (ch != b[j - 1])
            cost = min(cost, previous[j] + 1, current[j - 1] + 1, big)
            current[j] = cost
            row_min = min(row_min, cost)
        if row_min >= limit:
            return limit
        previous = current
    return min(previous[len(b)], limit)


def closest(chat_template: str | None) -> str | None:
    """The family whose reference is nearest ``chat_template``, if under :data:`THRESHOLD` edits
    and a fifth of that reference's length."""
    if not chat_template:
        return None
    text = chat_template.replace("\r\n", "\n")
    best, best_score = None, THRESHOLD
    for name, references in REFERENCES.items():
        for reference in references:
            bound = min(best_score, len(reference) // RELATIVE)
            score = distance(text, reference, bound) if bound > 0 else bound
            if score < bound:
                best, best_score = name, score
    return best


def jinja_capabilities(chat_template: str | None) -> list[str]:
    """``tools`` and ``thinking`` as a Jinja template shows them (Ollama's substring rules)."""
    if not chat_template:
        return []
    caps = []
    if "tools" in chat_template or "tool_call" in chat_template:
        caps.append("tools")
    think_tags = "<think>" in chat_template and "</think>" in chat_template
    split = "content.split('</think>')" in chat_template or 'content.split("</think>")' in chat_template
    if think_tags or (
        split and "reasoning_content" not in chat_template and "<SPECIAL_12>" not in chat_template
    ):
        caps.append("thinking")
    return caps
