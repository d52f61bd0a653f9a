"""The installation's own facts in the ``meta`` table, each written once and then only read."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

INSTALL_ID = "install_id"


def install_id(engine: Engine) -> str:
    """This database's installation id (a UUID4 made on first use).

    Two processes asking at once agree: the first insert wins, the other one's is skipped by the
    primary key and both read the stored value. A restored backup keeps its id.
    """
    import sqlalchemy as sa

    from jiritsu.db.engine import retry_db
    from jiritsu.db.models import Meta

    table = Meta.__table__

    def get_or_create() -> str:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                from sqlalchemy.dialects.postgresql import insert
            else:
                from sqlalchemy.dialects.sqlite import insert
            conn.execute(
                insert(table)
                .values(key=INSTALL_ID, value=str(uuid.uuid4()))
                .on_conflict_do_nothing(index_elements=["key"])
            )
            return str(conn.execute(sa.select(table.c.value).where(table.c.key == INSTALL_ID))
                       .scalar_one())  # fmt: skip

    result: str = retry_db(get_or_create, what="reading the installation id")
    return result
