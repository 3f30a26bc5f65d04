"""Ending a pytest-lsp session that may be mid-request, shared by the language-server tests."""

from __future__ import annotations

import asyncio
import contextlib

from pytest_lsp import LanguageClient


async def close(client: LanguageClient) -> None:
    """Shut the session down, or kill the server, so that ``stop()`` (which waits for the process)
    cannot hang after a failed assertion left a request open."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.shutdown_session(), 10)
    process = client._server
    if process is not None and process.returncode is None:
        process.kill()
    await client.stop()
