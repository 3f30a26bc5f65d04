"""Settings shared by the command-line tools (``llamita pr``, ``llamita review``).

Looked up in order, later wins: ``$XDG_CONFIG_HOME/llamita/config.toml`` (or
``~/.config/...``), then ``.llamita.toml`` at the repository root, then ``LLAMITA_CONFIG``
if set, then the environment (``OLLAMA_HOST``, ``LLAMITA_API_KEY``), then flags.  The environment
is read through :mod:`llamita.lsp.config`, the editor side's one table of variables.  Example::

    server_url = "http://gpu-box:11434"
    model = "qwen2.5-coder:7b"        # default for everything
    review_model = "qwen2.5-coder:7b"
    pr_model = "qwen2.5-coder:7b"
    prompts_dir = "~/.config/llamita/prompts"
    max_calls = 4
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from llamita.lsp import config as env
from llamita.lsp.client import ModelServerError, OllamaClient


class ConfigError(Exception):
    """A config file that cannot be read or has a wrong type."""


@dataclass
class UserConfig:
    server_url: str = ""
    api_key: str = ""
    model: str = ""
    review_model: str = ""
    pr_model: str = ""
    prompts_dir: str = ""
    max_calls: int = 4
    timeout: float = 600.0

    @property
    def prompts_path(self) -> Path | None:
        return Path(self.prompts_dir).expanduser() if self.prompts_dir else None


def _files(repo_root: Path | None) -> list[Path]:
    out = [env.config_home() / "llamita" / "config.toml"]
    if repo_root is not None:
        out.append(repo_root / ".llamita.toml")
    extra = env.extra_config()
    if extra is not None:
        out.append(extra)
    return out


def load(repo_root: Path | None = None) -> UserConfig:
    config = UserConfig()
    types = {f.name: f.type for f in fields(UserConfig)}
    for path in _files(repo_root):
        if not path.is_file():
            continue
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise ConfigError(f"{path}: {e}") from e
        for key, value in data.items():
            if key not in types:
                raise ConfigError(f"{path}: unknown setting {key!r}")
            expected = {"str": str, "int": int, "float": (int, float)}[str(types[key])]
            if not isinstance(value, expected):
                raise ConfigError(f"{path}: {key} must be a {types[key]}")
            setattr(config, key, value)
    config.server_url = env.ollama_host() or config.server_url
    config.api_key = env.api_key() or config.api_key
    return config


def client_for(config: UserConfig) -> OllamaClient:
    """The model-server client ``config`` describes (``server_url`` is parsed like ``OLLAMA_HOST``)."""
    return OllamaClient(
        env.base_url(config.server_url or None), api_key=config.api_key, timeout=config.timeout
    )


async def pick_model(client: OllamaClient, wanted: str) -> str:
    """``wanted`` (a flag or a config setting), else the server's first model."""
    if wanted:
        return wanted
    models = await client.tags()
    if not models:
        raise ModelServerError("the model server has no models; pass --model or pull one")
    return str(models[0]["model"])
