"""Token estimates for budgeting prompts without a tokenizer: one rule for completion, review and tools.

The editor side never loads the model's vocabulary, so budgets (the FIM window, review chunks, PR diff
batches) count characters. Code averages 3-4 characters per token in BPE vocabularies; 3.5 slightly
over-estimates, which keeps prompts inside the context.
"""

from __future__ import annotations

import math

CHARS_PER_TOKEN = 3.5


def estimate_tokens(text: str) -> int:
    """Rough token count of ``text`` (``len / 3.5``, rounded up)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)
