"""Settings of ``llamita pr`` / ``llamita review``: TOML files in order, the environment on top."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from llamita.lsp.client import ModelServerError, OllamaClient
from llamita.lsp.tools import userconfig
from llamita.lsp.tools.userconfig import ConfigError, UserConfig, client_for, load, pick_model


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("LLAMITA_CONFIG", raising=False)
    (tmp_path / "xdg" / "llamita").mkdir(parents=True)
    return tmp_path


def test_defaults_without_files(home: Path) -> None:
    config = load(home / "repo")
    assert config == UserConfig()
    assert config.prompts_path is None


def test_later_files_win_then_the_environment(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (home / "xdg" / "llamita" / "config.toml").write_text(
        'model = "user"\nserver_url = "user-box"\nmax_calls = 2\nprompts_dir = "~/p"\n'
    )
    repo = home / "repo"
    repo.mkdir()
    (repo / ".llamita.toml").write_text('model = "repo"\nreview_model = "repo-review"\n')
    extra = home / "extra.toml"
    extra.write_text('review_model = "extra"\ntimeout = 30\n')
    monkeypatch.setenv("LLAMITA_CONFIG", str(extra))
    config = load(repo)
    assert (config.model, config.review_model, config.max_calls, config.timeout) == ("repo", "extra", 2, 30)
    assert config.server_url == "user-box" and config.prompts_path == Path("~/p").expanduser()
    monkeypatch.setenv("OLLAMA_HOST", "env-box:1")
    monkeypatch.setenv("LLAMITA_API_KEY", "k")
    config = load(repo)
    assert (config.server_url, config.api_key) == ("env-box:1", "k")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('colour = "red"\n', "unknown setting 'colour'"),
        ("max_calls = 'four'\n", "max_calls must be a int"),
        ("model = [\n", "config.toml"),
    ],
)
def test_bad_files(home: Path, text: str, error: str) -> None:
    (home / "xdg" / "llamita" / "config.toml").write_text(text)
    with pytest.raises(ConfigError, match=error):
        load(None)


@pytest.mark.asyncio
async def test_client_and_model(monkeypatch: pytest.MonkeyPatch) -> None:
    client = client_for(UserConfig(server_url="gpu-box", api_key="k", timeout=5))
    assert client.base_url == "http://gpu-box:11434" and client.api_key == "k"
    await client.aclose()
    assert client_for(UserConfig()).base_url == "http://127.0.0.1:11434"

    models: list[dict[str, str]] = [{"model": "first:1"}, {"model": "second:1"}]
    fake = OllamaClient(
        "http://box", transport=httpx.MockTransport(lambda r: httpx.Response(200, json={"models": models}))
    )
    assert await pick_model(fake, "wanted") == "wanted"
    assert await pick_model(fake, "") == "first:1"
    models.clear()
    with pytest.raises(ModelServerError, match="no models"):
        await userconfig.pick_model(fake, "")
    await fake.aclose()
