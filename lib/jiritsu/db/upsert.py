"""INSERT ... ON CONFLICT on the two databases Jiritsu runs on.

SQLite and PostgreSQL spell ``on_conflict_do_nothing``/``on_conflict_do_update`` and
``excluded`` alike but through two statement classes; this picks the right one, so callers
write the statement once and the type checker sees both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite


def conflict_insert(dialect: str, target: Any) -> postgresql.Insert | sqlite.Insert:
    """``INSERT INTO target`` for ``dialect`` ("postgresql" or "sqlite"); ``target`` is a mapped
    class or a table."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(target)
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(target)
    raise ValueError(f"unsupported database dialect {dialect!r}")
