"""The email and phone lookup columns hold blind indexes once personal data is sealed (handlers/sealing.py).

Rows written before keep the clear normalised value there, which a lookup by blind index would never find: identity
resolution would then open a second profile for a known customer. With a master key configured and sealing on, this
rewrites those columns as blind indexes (the index key derives from the master key alone). The documents still
holding clear values are sealed by their next save; no data key is needed here.
"""

from collections.abc import Iterator

import sqlalchemy as sa
from alembic import op

from libs.common import personal
from libs.common.settings import Settings

revision = "profile_0007"
down_revision = "profile_0006"

SCHEMA = "profile"
CHUNK = 5000


def _clear(value: str | None) -> bool:
    """Not already a blind index (64 hex digits)."""
    return value is not None and not (len(value) == 64 and all(ch in "0123456789abcdef" for ch in value))


def _rows(conn: sa.Connection) -> Iterator[list[tuple[str, str | None, str | None]]]:
    after = ""
    while True:
        rows = conn.execute(
            sa.text(
                f"SELECT customer_id, email, phone FROM {SCHEMA}.customers WHERE customer_id > :after "
                "AND (email IS NOT NULL OR phone IS NOT NULL) ORDER BY customer_id LIMIT :limit"
            ),
            {"after": after, "limit": CHUNK},
        ).all()
        if not rows:
            return
        yield [(row[0], row[1], row[2]) for row in rows]
        after = rows[-1][0]


def upgrade() -> None:
    settings = Settings()
    master = personal.master_key_of(settings)
    if master is None or not settings.personal_data_encryption:
        return
    index_key = personal.derived_secret(master, personal.BLIND_INDEX_PURPOSE)
    conn = op.get_bind()
    for rows in _rows(conn):
        changes = [
            {
                "id": customer_id,
                "email": personal.blind_index(index_key, "email", email) if _clear(email) and email else email,
                "phone": personal.blind_index(index_key, "phone", phone) if _clear(phone) and phone else phone,
            }
            for customer_id, email, phone in rows
            if _clear(email) or _clear(phone)
        ]
        if changes:
            conn.execute(
                sa.text(f"UPDATE {SCHEMA}.customers SET email = :email, phone = :phone WHERE customer_id = :id"),
                changes,
            )


def downgrade() -> None:
    # The clear values are in the documents (or sealed there); an index cannot be turned back into a value.
    pass
