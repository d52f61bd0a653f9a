"""News sentiment: fetch RSS/Atom feeds, keep keyword matches, score them, average the scores.

:mod:`.fetch` (download, parse, match, dedupe keys), :mod:`.lexicon` (our word list),
:mod:`.scoring` (lexicon or Gemini scorer), :mod:`.sentiment` (the moving average the advisors
read) and :mod:`.service` (the ``fetch-news`` job). Importing this package is cheap; feedparser,
requests, SQLAlchemy and google-genai are imported when used.
"""
