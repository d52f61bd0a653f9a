"""The database layer: models (:mod:`.models`), column types (:mod:`.types`), engines and
retries (:mod:`.engine`) and migrations (:mod:`.migrate`).

Importing this package is cheap on purpose (no SQLAlchemy import): the CLI starts every minute.
"""
