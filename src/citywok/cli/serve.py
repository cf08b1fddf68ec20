"""``citywok serve`` and ``citywok keys create|list|revoke``, added to the main CLI by
:func:`register`.

The web service's modules (settings, key store: pydantic-settings, SQLAlchemy) are
imported when one of these commands runs, not when they are registered: ``citywok
identify`` and ``citywok --help`` never load them.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from citywok import errors
from citywok.cli.common import IndexOpt

if TYPE_CHECKING:
    from citywok.web.core.config import Settings
    from citywok.web.keys import KeyStore

#: What the web commands import when they run: without one, the CLI registers stubs that
#: name the extra to install (see :func:`citywok.cli.main._register_web_stubs`).
WEB_MODULES = ("pydantic_settings", "limits", "sqlalchemy")

keys_app = typer.Typer(help="Create, list and revoke API keys of the web service.",
                       rich_markup_mode=None,
                       no_args_is_help=True, add_completion=False)

def _fail(exc: errors.CityWokError) -> typer.Exit:
    # Imported when used: citywok.cli.main imports this module to register its commands.
    from citywok.cli.main import fail

    return fail(exc)


KeysDbOpt = Annotated[Path | None, typer.Option(
    "--keys-db", help="Key database [default: $CITYWOK_KEYS_DB or keys.sqlite in "
    "$CITYWOK_DATA_DIR].",
    show_default=False)]


def _settings(**overrides: object) -> Settings:
    from citywok.web.core.config import load_settings

    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except errors.ConfigError as exc:
        raise _fail(exc) from None


def _database(index: Path | None, keys_db: Path | None) -> str:
    """The key database's URL, its file moved out of the index first if it still was."""
    from citywok.web.datadir import adopt_old_files

    settings = _settings(index=index, keys_db=keys_db)
    try:
        adopt_old_files(settings)
    except errors.CityWokError as exc:
        raise _fail(exc) from None
    return settings.database


def _store(index: Path | None, keys_db: Path | None) -> KeyStore:
    from citywok.web.keys import KeyStore

    return KeyStore(_database(index, keys_db))


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ") if ts else ""


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option("--name", "-n", help="Who or what the key is for.")],
    admin: Annotated[bool, typer.Option("--admin", help="Allow the admin endpoints.")] = False,
    limit: Annotated[str | None, typer.Option(
        "--limit", help="Own rate limit, e.g. '500/hour' [default: the keyed tier's].")] = None,
    index: IndexOpt = None,
    keys_db: KeysDbOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Create a key and print it (it is shown only this once)."""
    try:
        made = _store(index, keys_db).create(name, admin=admin, rate_limit=limit)
    except errors.CityWokError as exc:
        raise _fail(exc) from None
    if as_json:
        typer.echo(json.dumps({"key_id": made.key.key_id, "name": name, "admin": admin,
                               "rate_limit": limit, "token": made.token}))
        return
    typer.echo(made.token)
    typer.echo(f"key id {made.key.key_id} ({name}{', admin' if admin else ''}); store the key "
               "now: only its hash is kept", err=True)


@keys_app.command("list")
def keys_list(index: IndexOpt = None, keys_db: KeysDbOpt = None,
              as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
              ) -> None:
    """List keys (ids and names; secrets are never stored)."""
    try:
        rows = _store(index, keys_db).list()
    except errors.CityWokError as exc:
        raise _fail(exc) from None
    if as_json:
        for k in rows:
            typer.echo(json.dumps({"key_id": k.key_id, "name": k.name, "admin": k.admin,
                                   "rate_limit": k.rate_limit, "created_at": k.created_at,
                                   "revoked_at": k.revoked_at}))
        return
    for k in rows:
        state = f"revoked {_when(k.revoked_at)}" if k.revoked_at else "active"
        typer.echo(f"{k.key_id}  {k.name:<24} {'admin' if k.admin else 'user ':<5}  "
                   f"{k.rate_limit or 'default':<12} created {_when(k.created_at)}  {state}")


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="Id shown by 'keys list'.")],
                index: IndexOpt = None, keys_db: KeysDbOpt = None) -> None:
    """Revoke a key; requests with it are refused from then on."""
    try:
        key = _store(index, keys_db).revoke(key_id)
    except errors.CityWokError as exc:
        raise _fail(exc) from None
    typer.echo(f"revoked {key.key_id} ({key.name})")


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on [default: "
                                             "$CITYWOK_HOST or 127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(help="Port [default: $CITYWOK_PORT or 8000].")
                    ] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Worker processes [default: "
                                                "$CITYWOK_WORKERS or 1].")] = None,
    index: IndexOpt = None,
    ssl_certfile: Annotated[Path | None, typer.Option(
        help="TLS certificate (PEM) to serve HTTPS, which browsers need for the microphone "
        "on any address but localhost [default: $CITYWOK_SSL_CERTFILE].",
        show_default=False)] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option(
        help="Its private key (PEM) [default: $CITYWOK_SSL_KEYFILE].", show_default=False)
                           ] = None,
) -> None:
    """Serve the web API (settings from CITYWOK_* variables; see docs/web.md)."""
    import uvicorn

    settings = _settings(host=host, port=port, workers=workers, index=index,
                         ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile)
    _sync_snapshots(settings)
    # Workers rebuild the settings from the environment: pass the options along (the
    # address too: it decides the anonymous limit).
    os.environ["CITYWOK_INDEX"] = str(settings.index)
    os.environ["CITYWOK_HOST"] = settings.host
    typer.echo(_anonymous_limit_line(settings), err=True)
    if settings.workers > 1 and settings.rate_limit_storage.startswith("memory"):
        typer.echo("warning: with several workers and memory:// rate limits each worker "
                   "counts alone; set CITYWOK_RATE_LIMIT_STORAGE=redis://...", err=True)
    with contextlib.ExitStack() as cleanup:
        if settings.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # The workers' metrics files live as long as this process, not longer.
            metrics_dir = cleanup.enter_context(tempfile.TemporaryDirectory(
                prefix="citywok-metrics-", ignore_cleanup_errors=True))
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        uvicorn.run(
            "citywok.web.app:create_app_from_env", factory=True,
            host=settings.host, port=settings.port, workers=settings.workers,
            proxy_headers=False, server_header=False, date_header=True,
            log_config=None, access_log=False, timeout_graceful_shutdown=10,
            h11_max_incomplete_event_size=settings.max_header_bytes + 8192,
            http="citywok.web.protocol:HeaderDeadlineH11Protocol",
            timeout_keep_alive=math.ceil(settings.request_header_timeout_s),
            limit_concurrency=None,
            ssl_certfile=str(settings.ssl_certfile) if settings.ssl_certfile else None,
            ssl_keyfile=str(settings.ssl_keyfile) if settings.ssl_keyfile else None,
        )


def _anonymous_limit_line(settings: Settings) -> str:
    """What the start-up log says about the anonymous limit, and how to change it."""
    limit = settings.anonymous_limit
    if limit is None:
        return (f"listening on {settings.host} (this machine only): no anonymous rate limit "
                "(CITYWOK_ANONYMOUS_RATE_LIMIT sets one)")
    how = ("set" if settings.anonymous_rate_limit is not None else
           "the default off loopback; CITYWOK_ANONYMOUS_RATE_LIMIT changes it")
    return f"anonymous rate limit: {limit} per address ({how})"


def usage(
    days: Annotated[int, typer.Option(min=1, max=366, help="Days back, today included.")] = 30,
    index: IndexOpt = None,
    keys_db: KeysDbOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Usage figures of the web service (from CITYWOK_DATABASE_URL or the key database)."""
    from citywok.web.db import Database
    from citywok.web.usage import UsageLog

    database = _database(index, keys_db)
    try:
        report = UsageLog(Database(database)).report(days=days)
    except errors.CityWokError as exc:
        raise _fail(exc) from None
    if as_json:
        typer.echo(json.dumps(report.to_json()))
        return

    def pairs(rows: tuple[tuple[str, int], ...]) -> str:
        return ", ".join(f"{k} {n}" for k, n in rows) or "none"

    lat = report.latency
    typer.echo(f"{report.first_day} .. {report.last_day}: {report.identifications} "
               f"identifications, {report.refused} refused")
    typer.echo(f"  by status:  {pairs(report.by_status)}")
    typer.echo(f"  by source:  {pairs(report.by_source)}")
    typer.echo(f"  refused:    {pairs(report.refused_by_reason)}")
    if lat.count:
        typer.echo(f"  latency:    p50 {lat.p50_ms} ms, p90 {lat.p90_ms} ms, p99 {lat.p99_ms} ms "
                   f"(n={lat.count})")
    typer.echo(f"  top episodes: {pairs(report.top_episodes)}")
    for d in report.days:
        typer.echo(f"  {d.day}  {d.identifications:>6}  {pairs(d.by_status)}; "
                   f"{pairs(d.by_source)}; refused: {pairs(d.refused)}")


def _sync_snapshots(settings: Settings) -> None:
    """With CITYWOK_SNAPSHOT_URL: pull the current snapshot now, then poll on a thread."""
    from citywok.web import snapshots
    from citywok.web.logs import setup_logging

    try:
        store = snapshots.snapshot_store(settings)
        if store is None:
            return
        setup_logging(settings.log_level)
        first = snapshots.start(settings, store)
    except errors.CityWokError as exc:
        raise _fail(exc) from None
    if first is not None:
        typer.echo(f"serving snapshot {first.snapshot_id} from {settings.snapshot_url}",
                   err=True)


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``keys`` to the main ``citywok`` command."""
    app.command("serve")(serve)
    app.command("usage")(usage)
    app.add_typer(keys_app, name="keys")


def main() -> None:
    """Run the web commands alone: ``python -m citywok.cli.serve serve``."""
    app = typer.Typer(no_args_is_help=True, add_completion=False)
    register(app)
    app()


if __name__ == "__main__":
    main()
