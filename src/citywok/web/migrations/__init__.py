"""Alembic migrations of the service database (run by :func:`citywok.web.db.migrate`).

New revision: ``alembic -x ... revision`` is not wired; copy the newest file in
``versions/``, give it the next id and set ``down_revision`` to the previous one.
"""
