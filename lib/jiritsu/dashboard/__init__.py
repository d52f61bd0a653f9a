"""The read-only Datasette dashboard: pages and charts (``config``), the IP allowlist plugin
(``allowlist``), the server (``serve``), the PostgreSQL -> SQLite mirror (``mirror``) and a
year of synthetic activity for tests and the benchmark (``seed``).

Importing this package imports nothing heavy; Datasette loads only when the server starts.
"""
