"""``LlamitaServer``: the pygls server holding settings, the model client and per-document state.

The LSP handlers (``features.py``) only call the methods here; these methods translate between LSP
types (positions in the negotiated encoding) and the LSP-free engines (``completion/engine.py``,
``review/engine.py``), which work in ``str`` offsets. The server owns the one model client: the
completion engine borrows it, and a changed ``serverUrl``/``apiKey`` re-points it in place.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import time
import uuid
from collections.abc import Coroutine
from importlib import metadata
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path
from pygls.workspace import TextDocument

from llamita.lsp.completion.acceptance import (
    ACCEPT_COMMAND,
    AcceptanceReporter,
    clamp_length,
    command_arguments,
    item_labels,
    labels_of,
)
from llamita.lsp.completion.context import OtherFile
from llamita.lsp.completion.engine import CompletionEngine, CompletionRequest
from llamita.lsp.completion.recent import RecentFiles
from llamita.lsp.completion.repocontext import display_path
from llamita.lsp.review.diagnostics import quick_fixes, to_diagnostic
from llamita.lsp.review.engine import Finding, reanchor, review_text
from llamita.lsp.rules import load as load_rules

from .client import ModelServerError, OllamaClient, ServerUnreachable
from .prompts import PromptError
from .settings import Settings
from .status import Status

log = logging.getLogger("llamita.lsp")
REVIEW_COMMAND = "llamita.reviewFile"
MAX_OTHER_FILES = 20  # open documents offered to the snippet ranking (recently closed ones come on top)
LABEL_CHARS = 60


def _version() -> str:
    try:
        return metadata.version("llamita")
    except metadata.PackageNotFoundError:
        return "0"


class LlamitaServer(LanguageServer):
    """Built by :func:`llamita.lsp.features.create_server`, which also registers the LSP handlers."""

    def __init__(self) -> None:
        super().__init__(
            "llamita", _version(), text_document_sync_kind=types.TextDocumentSyncKind.Incremental
        )
        self.settings = Settings()
        self.status = Status(self._log, self._warn)
        self.model_client = OllamaClient(
            self.settings.server_url,
            api_key=self.settings.api_key,
            timeout=self.settings.request_timeout_seconds,
        )
        self.completions = CompletionEngine(self.settings, self.model_client, self.status)
        self.acceptance = AcceptanceReporter(
            self.model_client, self.status.info, self.settings.acceptance_interval_seconds
        )
        self.findings: dict[str, list[Finding]] = {}
        self._reviews: dict[str, asyncio.Task[list[Finding]]] = {}
        self._reviewed: dict[str, tuple[bytes, list[Finding]]] = {}
        self._edits: dict[str, tuple[float, int]] = {}
        self.recent = RecentFiles()
        self._background: set[asyncio.Task[Any]] = set()
        self._inline_client = False
        self._ready = False

    # -- status ---------------------------------------------------------------------------------------

    def _log(self, message: str) -> None:
        log.info(message)
        self.window_log_message(types.LogMessageParams(type=types.MessageType.Log, message=message))

    def _warn(self, message: str) -> None:
        self.window_show_message(types.ShowMessageParams(type=types.MessageType.Warning, message=message))

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` in the background, keeping a reference so it is not garbage-collected."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # -- settings -------------------------------------------------------------------------------------

    def initialize(self, params: types.InitializeParams) -> None:
        text_caps = params.capabilities.text_document
        self._inline_client = text_caps is not None and text_caps.inline_completion is not None
        self.apply_settings(params.initialization_options)

    def apply_settings(self, options: Any) -> None:
        new = self.settings.merged(options)
        connection = (new.server_url, new.api_key, new.request_timeout_seconds)
        if connection != (
            self.settings.server_url,
            self.settings.api_key,
            self.settings.request_timeout_seconds,
        ):
            self.spawn(self.model_client.reconnect(*connection))
        changed_model = new.completion_model != self.settings.completion_model
        server_changed = new.server_url != self.settings.server_url
        if server_changed:
            self.acceptance.reset()
        self.acceptance.interval = new.acceptance_interval_seconds
        self.settings = new
        self.completions.configure(new)
        if self._ready and (changed_model or server_changed):
            self.spawn(self.completions.warm_up())

    async def initialized(self) -> None:
        """Pull settings from clients that answer ``workspace/configuration``, then warm the model up."""
        await self.pull_configuration()
        self._ready = True
        self.acceptance.start()
        self.status.info(f"llamita lsp {_version()}: model server {self.settings.server_url}")
        await self.completions.warm_up()

    async def pull_configuration(self) -> None:
        workspace = self.client_capabilities.workspace
        if workspace is None or not workspace.configuration:
            return
        params = types.ConfigurationParams(items=[types.ConfigurationItem(section="llamita")])
        try:
            answer = await asyncio.wait_for(self.workspace_configuration_async(params), timeout=5)
        except Exception as e:  # a client that fails to answer keeps the current settings
            log.warning("workspace/configuration failed: %s", e)
            return
        if answer and isinstance(answer[0], dict):
            self.apply_settings(answer[0])

    async def did_change_configuration(self, params: types.DidChangeConfigurationParams) -> None:
        if isinstance(params.settings, dict) and params.settings:
            self.apply_settings(params.settings)
        else:
            await self.pull_configuration()

    # -- documents ------------------------------------------------------------------------------------

    def did_change(self, params: types.DidChangeTextDocumentParams) -> None:
        uri = params.text_document.uri
        line = 0
        for change in params.content_changes:
            if isinstance(change, types.TextDocumentContentChangePartial):
                line = change.range.start.line
        self._edits[uri] = (time.monotonic(), line)
        document = self.workspace.get_text_document(uri)
        if document.path:
            self.recent.touch(uri, document.path, document.source)
        old = self.findings.get(uri)
        if old:
            moved = reanchor(old, document.source)
            if moved != old:
                self._publish(uri, moved)

    def did_save(self, params: types.DidSaveTextDocumentParams) -> None:
        if self.settings.review_on_save:
            self.schedule_review(params.text_document.uri)

    def did_close(self, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        task = self._reviews.pop(uri, None)
        if task is not None:
            task.cancel()
        self.completions.forget(uri)
        self._edits.pop(uri, None)
        self._reviewed.pop(uri, None)
        if self.findings.pop(uri, None) is not None:
            self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    def _root_for(self, path: str) -> str:
        """The innermost workspace folder (or the root) holding ``path``; "" when none does.

        The repository context reads imported files only inside it (its own folder without one).
        """
        roots = [to_fs_path(f.uri) or "" for f in self.workspace.folders.values()]
        roots.append(self.workspace.root_path or "")
        inside = [r for r in roots if r and path.startswith(r.rstrip(os.sep) + os.sep)]
        return max(inside, key=len) if inside else ""

    def _relative(self, path: str) -> str:
        return display_path(path, self._root_for(path))

    def _others(self, uri: str) -> tuple[OtherFile, ...]:
        """Other open documents (the most recently edited first), then recently edited closed ones."""
        documents = self.workspace.text_documents
        edited = sorted(documents, key=lambda u: self._edits.get(u, (0.0, 0)), reverse=True)
        out: list[OtherFile] = []
        for other in edited[:MAX_OTHER_FILES]:
            document = documents[other]
            if other != uri and document.path:
                out.append(
                    OtherFile(
                        self._relative(document.path), document.source, self._edits.get(other, (0, 0))[1]
                    )
                )
        for closed in self.recent.newest_first(exclude=uri):
            if closed.uri not in documents:
                out.append(OtherFile(self._relative(closed.path), closed.text, 0))
        return tuple(out)

    # -- completions ----------------------------------------------------------------------------------

    async def _suggest(
        self,
        uri: str,
        position: types.Position,
        invoked: bool,
        selected: types.SelectedCompletionInfo | None = None,
    ) -> tuple[TextDocument, types.Range, str] | None:
        """The edit to offer at ``position``: document, range to replace (one line) and new text.

        With a popup item selected (``selectedCompletionInfo``), the model sees the document as if the item
        were accepted and the edit covers the item's range, so accepting the suggestion includes the item.
        """
        document = self.workspace.get_text_document(uri)
        text = document.source
        start = end = document.offset_at_position(position)
        chosen = ""
        if selected is not None:
            start = document.offset_at_position(selected.range.start)
            end = document.offset_at_position(selected.range.end)
            chosen = selected.text
        request = CompletionRequest(
            uri=uri,
            text=text[:start] + chosen + text[end:],
            offset=start + len(chosen),
            language_id=document.language_id or "",
            invoked=invoked,
            others=self._others(uri),
            path=document.path or "",
            root=self._root_for(document.path) if document.path else "",
            buffers={d.path: d.source for d in self.workspace.text_documents.values() if d.path},
        )
        suggestion = await self.completions.complete(request)
        if suggestion is None:
            return None
        edit_range = types.Range(
            document.client_position_at_offset(start),
            document.client_position_at_offset(end + suggestion.replace),
        )
        return document, edit_range, chosen + suggestion.text

    async def inline_completion(
        self, params: types.InlineCompletionParams
    ) -> types.InlineCompletionList | None:
        invoked = params.context.trigger_kind == types.InlineCompletionTriggerKind.Invoked
        found = await self._suggest(
            params.text_document.uri, params.position, invoked, params.context.selected_completion_info
        )
        if found is None:
            return None
        document, edit_range, text = found
        item = types.InlineCompletionItem(
            insert_text=text, range=edit_range, command=self._accept_command(document, text)
        )
        return types.InlineCompletionList(items=[item])

    async def completion(self, params: types.CompletionParams) -> types.CompletionList | None:
        """The popup fallback for clients without inline completion (or with ``completionItems: always``)."""
        mode = self.settings.completion_items
        if mode == "never" or (mode == "auto" and self._inline_client):
            return None
        invoked = (
            params.context is not None and params.context.trigger_kind == types.CompletionTriggerKind.Invoked
        )
        found = await self._suggest(params.text_document.uri, params.position, invoked)
        if found is None:
            return None
        document, edit_range, text = found
        label = text.strip().split("\n", 1)[0][:LABEL_CHARS] or "llamita"
        item = types.CompletionItem(
            label=label,
            kind=types.CompletionItemKind.Text,
            detail="llamita",
            documentation=types.MarkupContent(
                kind=types.MarkupKind.Markdown, value=f"```{document.language_id or ''}\n{text}\n```"
            ),
            sort_text="0",
            preselect=True,
            text_edit=types.TextEdit(range=edit_range, new_text=text),
            command=self._accept_command(document, text),
        )
        return types.CompletionList(is_incomplete=True, items=[item])

    # -- acceptance counters (completion/acceptance.py) -----------------------------------------------

    def _accept_command(self, document: TextDocument, text: str) -> types.Command:
        """The item's command, run by the client on a full accept; its arguments label the item."""
        arguments = command_arguments(self.settings.completion_model, document.language_id or "", text)
        return types.Command(
            title="llamita: completion accepted", command=ACCEPT_COMMAND, arguments=arguments
        )

    def did_show_completion(self, params: Any) -> None:
        """``textDocument/didShowCompletion`` ``{item}``."""
        self.acceptance.counter.shown(item_labels(_field(params, "item"), self.settings.completion_model))

    def did_partially_accept_completion(self, params: Any) -> None:
        """``textDocument/didPartiallyAcceptCompletion`` ``{item, acceptedLength}``."""
        labels = item_labels(_field(params, "item"), self.settings.completion_model)
        accepted = clamp_length(_field(params, "acceptedLength"))
        self.acceptance.counter.partially_accepted(labels, min(accepted, labels.length or accepted))

    def accept_command(self, args: list[Any]) -> None:
        """``llamita.acceptCompletion {model, language, length}``: an item was accepted whole."""
        self.acceptance.counter.accepted(labels_of(args[0] if args else None, self.settings.completion_model))

    async def flush_counters(self) -> None:
        """Post the last acceptance counts before the editor stops us."""
        await self.acceptance.close()

    # -- review ---------------------------------------------------------------------------------------

    def schedule_review(self, uri: str) -> asyncio.Task[list[Finding]]:
        """Start a review of ``uri`` in the background, replacing one still running for it."""
        previous = self._reviews.pop(uri, None)
        if previous is not None:
            previous.cancel()
        task: asyncio.Task[list[Finding]] = asyncio.ensure_future(self.review(uri))
        self._reviews[uri] = task
        task.add_done_callback(lambda t: self._review_done(uri, t))
        return task

    def _review_done(self, uri: str, task: asyncio.Task[list[Finding]]) -> None:
        if self._reviews.get(uri) is task:
            del self._reviews[uri]
        if not task.cancelled() and task.exception() is not None:
            log.error("review of %s failed", uri, exc_info=task.exception())

    async def review_command(self, args: list[Any]) -> dict[str, Any]:
        """``llamita.reviewFile [uri]``: review now (the last edited document without an argument)."""
        uri = args[0] if args and isinstance(args[0], str) else None
        if args and isinstance(args[0], dict):
            uri = args[0].get("uri")
        if uri is None and self._edits:
            uri = max(self._edits.items(), key=lambda item: item[1][0])[0]
        if uri is None:
            uri = next(iter(self.workspace.text_documents), None)
        if uri is None:
            return {"uri": None, "diagnostics": 0}
        findings = await self.schedule_review(uri)
        return {"uri": uri, "diagnostics": len(findings)}

    async def review(self, uri: str) -> list[Finding]:
        document = self.workspace.get_text_document(uri)
        text = document.source
        settings = self.settings
        rules = load_rules(document.path or self.workspace.root_path, settings.review_chunk_tokens)
        seen = f"{settings.review_model}\0{rules.section() if rules else ''}\0{text}"
        digest = hashlib.blake2b(seen.encode(), digest_size=16).digest()
        cached = self._reviewed.get(uri)
        if cached is not None and cached[0] == digest:
            self._publish(uri, cached[1])
            return cached[1]
        progress = await self._progress_begin(f"Reviewing {os.path.basename(document.path) or uri}")
        try:
            findings = await review_text(
                self.model_client,
                settings.review_model,
                text,
                path=self._display_path(document),
                language=document.language_id or "",
                max_findings=settings.review_max_findings,
                chunk_tokens=settings.review_chunk_tokens,
                num_predict=settings.review_num_predict,
                keep_alive=settings.keep_alive,
                prompts_dir=settings.prompts_dir,
                progress=lambda i, n: self._progress_report(progress, i, n),
                rules=rules,
            )
        except (ModelServerError, PromptError) as e:
            key = "unreachable" if isinstance(e, ServerUnreachable) else f"review:{settings.review_model}"
            self.status.problem(key, f"llamita: review of {uri} failed: {e}")
            return []
        finally:
            self._progress_end(progress)
        self.status.resolved("unreachable")
        self._reviewed[uri] = (digest, findings)
        current = self.workspace.get_text_document(uri).source
        self._publish(uri, findings if current == text else reanchor(findings, current))
        self.status.info(f"review of {uri}: {len(findings)} finding(s)")
        return findings

    def _display_path(self, document: TextDocument) -> str:
        root = self.workspace.root_path
        path = document.path or to_fs_path(document.uri) or document.uri
        return os.path.relpath(path, root) if root and path.startswith(root) else path

    def _publish(self, uri: str, findings: list[Finding]) -> None:
        self.findings[uri] = findings
        document = self.workspace.get_text_document(uri)
        diagnostics = [to_diagnostic(f, document) for f in findings]
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics, version=document.version)
        )

    def code_actions(self, params: types.CodeActionParams) -> list[types.CodeAction] | None:
        document = self.workspace.get_text_document(params.text_document.uri)
        return quick_fixes(document, list(params.context.diagnostics)) or None

    # -- $/progress -----------------------------------------------------------------------------------

    async def _progress_begin(self, title: str) -> str | None:
        window = self.client_capabilities.window
        if window is None or not window.work_done_progress:
            return None
        token = f"llamita-review-{uuid.uuid4().hex[:12]}"
        try:
            await asyncio.wait_for(self.work_done_progress.create_async(token), timeout=5)
        except Exception as e:
            log.warning("window/workDoneProgress/create failed: %s", e)
            return None
        self.work_done_progress.begin(token, types.WorkDoneProgressBegin(title=title, percentage=0))
        return token

    def _progress_report(self, token: str | None, index: int, total: int) -> None:
        if token is not None and total > 1:
            report = types.WorkDoneProgressReport(
                message=f"part {index + 1} of {total}", percentage=100 * index // total
            )
            self.work_done_progress.report(token, report)

    def _progress_end(self, token: str | None) -> None:
        if token is not None:
            with contextlib.suppress(Exception):
                self.work_done_progress.end(token, types.WorkDoneProgressEnd())


def _field(obj: Any, key: str) -> Any:
    """A field of notification params, which pygls gives as a dict or a namedtuple-like object."""
    return obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)
