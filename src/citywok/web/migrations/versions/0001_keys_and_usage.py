"""API keys and usage events.

An existing ``keys.sqlite`` from before migrations already has ``api_keys`` with these
columns: it is adopted as it is.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "api_keys" not in existing:
        op.create_table(
            "api_keys",
            sa.Column("key_id", sa.String(32), primary_key=True),
            sa.Column("name", sa.String(200), nullable=False),
            sa.Column("secret_sha256", sa.String(64), nullable=False),
            sa.Column("admin", sa.Boolean, nullable=False, server_default=sa.false()),
            sa.Column("rate_limit", sa.String(64)),
            sa.Column("created_at", sa.Float, nullable=False),
            sa.Column("revoked_at", sa.Float),
        )
    op.create_table(
        "usage_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(64), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("platform", sa.String(100)),
        sa.Column("latency_ms", sa.Float),
        sa.Column("episode_id", sa.String(200)),
    )
    op.create_index("usage_day", "usage_events", ["day"])


def downgrade() -> None:
    op.drop_index("usage_day", "usage_events")
    op.drop_table("usage_events")
    op.drop_table("api_keys")
