"""Anthropic's Messages API (``/v1/messages``) as a thin translator over the runtime.

:mod:`.request` turns a Messages body into the native ``/api/chat`` body (with Anthropic's
error shape for a bad one), :mod:`.response` turns native chunks into a Messages reply or
Anthropic's stream events, :mod:`.routes` wires them to ``api/stream.py``'s responder.
Claude Code and the ``anthropic`` SDKs speak this API.
"""
