"""The installation's own facts in the ``meta`` table, each written once and then only read."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

INSTALL_ID = "install_id"


def install_id(engine: Engine) -> str:
    """This database's installation id (a UUID4 made on first use).

    Two processes asking at once agree: the first insert wins, the other one is refused by the
    primary key and both read the stored value. A restored backup keeps its id.
    """
    import sqlalchemy as sa
    from sqlalchemy.exc import IntegrityError

    from jiritsu.db.engine import retry_db
    from jiritsu.db.models import Meta

    query = sa.select(Meta.value).where(Meta.key == INSTALL_ID)

    def get_or_create() -> str:
        with engine.connect() as conn:
            value = conn.execute(query).scalar()
        if value is not None:
            return str(value)
        try:
            with engine.begin() as conn:
                conn.execute(sa.insert(Meta).values(key=INSTALL_ID, value=str(uuid.uuid4())))
        except IntegrityError:
            pass  # another process made it first: read theirs
        with engine.connect() as conn:
            return str(conn.execute(query).scalar_one())

    result: str = retry_db(get_or_create, what="reading the installation id")
    return result
