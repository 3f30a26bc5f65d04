"""Language-server settings: defaults, environment, ``initializationOptions`` and ``didChangeConfiguration``.

Editors send settings as JSON objects with camelCase keys, either flat or under a ``"llamita"`` section
(VS Code's ``synchronize.configurationSection``). Unknown keys are ignored and values of the wrong type
fall back to the previous value, so a typo in one editor's config never stops completions. The
environment is read through :mod:`llamita.lsp.config`.

| key | default | meaning |
|---|---|---|
| ``serverUrl`` | ``OLLAMA_HOST`` (Ollama's parsing) | model server |
| ``apiKey`` | ``LLAMITA_API_KEY`` | sent as ``Authorization: Bearer`` |
| ``completionModel`` / ``reviewModel`` | ``smollm2:135m`` | the embedded default; set a coder model |
| ``enable`` / ``languages`` | ``true`` / ``{}`` | completions on; ``{"markdown": false, "*": true}`` |
| ``completionItems`` | ``"auto"`` | popup fallback: auto (clients without inline), always, never |
| ``debounceMs`` / ``adaptiveDebounce`` | 150 / true | wait before asking the model while typing |
| ``contextTokens`` / ``suffixShare`` | 1536 / 0.25 | FIM window budget and the suffix's part of it |
| ``context`` | true | repository context before the prefix: imported definitions, similar snippets |
| ``snippetTokens`` / ``definitionShare`` | 384 / 0.5 | its token budget (0: none), the definitions' part |
| ``numPredict`` / ``temperature`` / ``stop`` | 128 / 0.2 / [] | FIM generation options |
| ``keepAlive`` | ``"30m"`` | keeps the completion model loaded |
| ``fimTemplate`` | ``""`` | raw FIM template (``prompts/fim/<name>.txt``) or ``chat`` (chat fill-in) |
| ``promptsDir`` | ``""`` | directory with user overrides of ``prompts/`` files |
| ``reviewOnSave`` / ``reviewMaxFindings`` | true / 10 | review diagnostics |
| ``reviewChunkTokens`` / ``reviewNumPredict`` | 3000 / 1024 | large files are reviewed in chunks |
| ``acceptanceIntervalSeconds`` | 30 | how often acceptance counters are posted (also at shutdown) |
| ``requestTimeoutSeconds`` | 60 | longest wait for the model server's next bytes (a slow CPU box: more) |
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from . import config

DEFAULT_MODEL = "smollm2:135m"

_KEYS = {
    "serverUrl": "server_url",
    "apiKey": "api_key",
    "completionModel": "completion_model",
    "reviewModel": "review_model",
    "enable": "enable",
    "languages": "languages",
    "completionItems": "completion_items",
    "debounceMs": "debounce_ms",
    "adaptiveDebounce": "adaptive_debounce",
    "contextTokens": "context_tokens",
    "suffixShare": "suffix_share",
    "context": "context",
    "snippetTokens": "snippet_tokens",
    "definitionShare": "definition_share",
    "numPredict": "num_predict",
    "temperature": "temperature",
    "stop": "stop",
    "keepAlive": "keep_alive",
    "fimTemplate": "fim_template",
    "promptsDir": "prompts_dir",
    "reviewOnSave": "review_on_save",
    "reviewMaxFindings": "review_max_findings",
    "reviewChunkTokens": "review_chunk_tokens",
    "reviewNumPredict": "review_num_predict",
    "acceptanceIntervalSeconds": "acceptance_interval_seconds",
    "requestTimeoutSeconds": "request_timeout_seconds",
}


@dataclass(frozen=True)
class Settings:
    server_url: str = field(default_factory=config.server_url)
    api_key: str = field(default_factory=config.api_key)
    completion_model: str = DEFAULT_MODEL
    review_model: str = DEFAULT_MODEL
    enable: bool = True
    languages: dict[str, bool] = field(default_factory=dict)
    completion_items: str = "auto"
    debounce_ms: int = 150
    adaptive_debounce: bool = True
    context_tokens: int = 1536
    suffix_share: float = 0.25
    context: bool = True
    snippet_tokens: int = 384
    definition_share: float = 0.5
    num_predict: int = 128
    temperature: float = 0.2
    stop: list[str] = field(default_factory=list)
    keep_alive: str = "30m"
    fim_template: str = ""
    prompts_dir: str = ""
    review_on_save: bool = True
    review_max_findings: int = 10
    review_chunk_tokens: int = 3000
    review_num_predict: int = 1024
    acceptance_interval_seconds: float = 30.0
    request_timeout_seconds: float = 60.0

    def completion_enabled(self, language_id: str) -> bool:
        """``languages`` maps language ids to on/off; ``"*"`` is the default for the others."""
        return self.enable and self.languages.get(language_id, self.languages.get("*", True))

    def merged(self, options: Any) -> Settings:
        """These settings updated from an editor's JSON object (flat or under ``"llamita"``)."""
        if not isinstance(options, dict):
            return self
        section = options.get("llamita")
        if isinstance(section, dict):
            options = section
        changes: dict[str, Any] = {}
        defaults = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for key, value in options.items():
            name = _KEYS.get(key)
            if name is None:
                continue
            coerced = _coerce(value, defaults[name])
            if coerced is not None:
                changes[name] = coerced
        if "server_url" in changes:
            changes["server_url"] = (
                config.base_url(changes["server_url"]) if changes["server_url"] else config.server_url()
            )
        if "completion_items" in changes and changes["completion_items"] not in ("auto", "always", "never"):
            del changes["completion_items"]
        if changes.get("request_timeout_seconds", 1) <= 0:  # no wait at all would fail every request
            del changes["request_timeout_seconds"]
        return dataclasses.replace(self, **changes)


def _coerce(value: Any, current: Any) -> Any:
    """``value`` as the type of ``current``, or None when it does not fit."""
    if isinstance(current, bool):
        return value if isinstance(value, bool) else None
    if isinstance(current, int):
        return (
            int(value)
            if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
            else None
        )
    if isinstance(current, float):
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
    if isinstance(current, str):
        return value if isinstance(value, str) else None
    if isinstance(current, list):
        return [str(v) for v in value] if isinstance(value, list) else None
    if isinstance(current, dict):
        if not isinstance(value, dict):
            return None
        return {str(k): bool(v) for k, v in value.items() if isinstance(v, bool)}
    return None
