"""The LSP method table: one handler per method, each only forwarding to ``LlamitaServer``.

:func:`create_server` builds a server and registers the table on it; nothing happens at import, so
``llamita lsp`` (``__main__.main``) and tests each construct their own.

Handlers that wait on the model are ``async def``: pygls runs them as asyncio tasks, so
``$/cancelRequest`` cancels the task and with it the in-flight HTTP request to the model server.
"""

from __future__ import annotations

from typing import Any

from lsprotocol import types

from .completion.acceptance import ACCEPT_COMMAND, DID_PARTIALLY_ACCEPT, DID_SHOW
from .server import REVIEW_COMMAND, LlamitaServer


def create_server() -> LlamitaServer:
    """A new language server (settings from the environment) with every handler registered."""
    return register(LlamitaServer())


def register(server: LlamitaServer) -> LlamitaServer:
    """Register the LSP method table on ``server``."""

    @server.feature(types.INITIALIZE)
    def initialize(ls: LlamitaServer, params: types.InitializeParams) -> None:
        ls.initialize(params)

    @server.feature(types.INITIALIZED)
    async def initialized(ls: LlamitaServer, params: types.InitializedParams) -> None:
        await ls.initialized()

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(ls: LlamitaServer, params: types.DidChangeConfigurationParams) -> None:
        await ls.did_change_configuration(params)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: LlamitaServer, params: types.DidChangeTextDocumentParams) -> None:
        ls.did_change(params)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: LlamitaServer, params: types.DidSaveTextDocumentParams) -> None:
        ls.did_save(params)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: LlamitaServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.did_close(params)

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(
        ls: LlamitaServer, params: types.InlineCompletionParams
    ) -> types.InlineCompletionList | None:
        return await ls.inline_completion(params)

    @server.feature(
        types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=[".", "(", " "])
    )
    async def completion(ls: LlamitaServer, params: types.CompletionParams) -> types.CompletionList | None:
        return await ls.completion(params)

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]),
    )
    def code_action(ls: LlamitaServer, params: types.CodeActionParams) -> list[types.CodeAction] | None:
        return ls.code_actions(params)

    @server.feature(types.SHUTDOWN)
    async def shutdown(ls: LlamitaServer, params: None) -> None:
        await ls.flush_counters()

    @server.feature(DID_SHOW)
    def did_show_completion(ls: LlamitaServer, params: Any) -> None:
        ls.did_show_completion(params)

    @server.feature(DID_PARTIALLY_ACCEPT)
    def did_partially_accept_completion(ls: LlamitaServer, params: Any) -> None:
        ls.did_partially_accept_completion(params)

    @server.command(ACCEPT_COMMAND)
    def accept_completion(ls: LlamitaServer, *args: Any) -> None:
        ls.accept_command(list(args))

    @server.command(REVIEW_COMMAND)
    async def review_file(ls: LlamitaServer, *args: Any) -> dict[str, Any]:
        return await ls.review_command(list(args))

    return server
