"""AI access shared by the news scorer and the trading advisors.

:class:`GeminiClient` (key rotation, JSON schema, validation, retries) and the DB-backed daily
:class:`Budget`. Importing this package is cheap: google-genai and SQLAlchemy are imported only
when a call is made.
"""

from __future__ import annotations

from jiritsu.ai.budget import Budget, BudgetExhausted, Usage
from jiritsu.ai.gemini import (
    DATA_ONLY_INSTRUCTION,
    AllKeysRateLimited,
    GeminiClient,
    GeminiError,
    GeminiInvalidAnswer,
    GeminiResult,
    GeminiUnavailable,
    build_gemini_client,
    data_block,
)

__all__ = [
    "DATA_ONLY_INSTRUCTION",
    "AllKeysRateLimited",
    "Budget",
    "BudgetExhausted",
    "GeminiClient",
    "GeminiError",
    "GeminiInvalidAnswer",
    "GeminiResult",
    "GeminiUnavailable",
    "Usage",
    "build_gemini_client",
    "data_block",
]
