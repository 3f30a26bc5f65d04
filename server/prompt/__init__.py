"""From a request to prompt text and tokens, and from model text back to tools and thinking.

:mod:`.render` holds Ollama's rules for feeding a template (messages, tools, think, images);
:mod:`.fit` truncates to the context and removes a doubled BOS; :mod:`.wire` type-checks the
request's messages/tools as Go's decoder would; :mod:`.tools` and :mod:`.thinking` parse tool calls
and thinking blocks out of the streamed text.
"""
