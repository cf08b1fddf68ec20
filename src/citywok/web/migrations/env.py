"""Alembic environment: always handed a connection by citywok.web.db.migrate."""

from alembic import context

from citywok.web.db import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
