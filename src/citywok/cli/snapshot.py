"""``citywok snapshot push|pull``: a thin shell over :mod:`citywok.store.snapshot`.

Endpoint and region come from ``--endpoint-url``/``--region`` or the standard
``AWS_ENDPOINT_URL``/``AWS_REGION``; credentials from ``AWS_ACCESS_KEY_ID`` and
``AWS_SECRET_ACCESS_KEY`` (or any other source boto3 reads: profiles, roles).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from citywok import errors
from citywok.cli.common import IndexOpt, resolve_index
from citywok.display import plural

if TYPE_CHECKING:  # the store (and the index under it) loads when a command runs
    from citywok.store.snapshot import SnapshotStore

snapshot_app = typer.Typer(help="Publish an index to S3-compatible storage (S3, R2, MinIO) "
                           "and fetch it back, verified.", rich_markup_mode=None,
                           no_args_is_help=True, add_completion=False)

UrlArg = Annotated[str, typer.Argument(help="Where snapshots live: s3://bucket/prefix.")]
EndpointOpt = Annotated[str | None, typer.Option(
    "--endpoint-url", envvar="AWS_ENDPOINT_URL", show_default=False,
    help="S3 API endpoint (R2, MinIO) [default: $AWS_ENDPOINT_URL, else AWS].")]
RegionOpt = Annotated[str | None, typer.Option(
    "--region", envvar="AWS_REGION", show_default=False,
    help="Region ('auto' for R2) [default: $AWS_REGION].")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def _store(url: str, endpoint_url: str | None, region: str | None) -> SnapshotStore:
    from citywok.store.snapshot import S3Config, SnapshotStore

    return SnapshotStore(url, S3Config(endpoint_url=endpoint_url, region=region))


def _fail(exc: errors.CityWokError) -> typer.Exit:
    from citywok.cli.main import fail  # cli imports this module to register it

    return fail(exc)


@snapshot_app.command("push")
def push(url: UrlArg, index_dir: IndexOpt = None, endpoint_url: EndpointOpt = None,
         region: RegionOpt = None, as_json: JsonOpt = False) -> None:
    """Upload the index as a new snapshot; it becomes current only once complete."""
    try:
        result = _store(url, endpoint_url, region).push(resolve_index(index_dir))
    except errors.CityWokError as exc:
        raise _fail(exc) from None
    if as_json:
        typer.echo(json.dumps({"snapshot_id": result.snapshot_id, "location": result.location,
                               "files": result.files, "bytes_total": result.bytes_total,
                               "bytes_uploaded": result.bytes_uploaded}))
        return
    typer.echo(f"pushed snapshot {result.snapshot_id} to {result.location}: {result.files} "
               f"files, {result.bytes_total / 1e6:.1f} MB ({result.bytes_uploaded / 1e6:.1f} "
               "MB new)")


@snapshot_app.command("pull")
def pull(url: UrlArg, index_dir: IndexOpt = None, endpoint_url: EndpointOpt = None,
         region: RegionOpt = None, as_json: JsonOpt = False,
         keep: Annotated[int, typer.Option(min=1, help="Versions kept on disk.")] = 2,
         ) -> None:
    """Download the current snapshot, verify every checksum, swap it in atomically."""
    target = resolve_index(index_dir)
    try:
        result = _store(url, endpoint_url, region).pull(target, keep=keep)
    except errors.CityWokError as exc:
        raise _fail(exc) from None
    if as_json:
        typer.echo(json.dumps({"snapshot_id": result.snapshot_id, "path": str(result.path),
                               "files": result.files, "bytes_total": result.bytes_total,
                               "changed": result.changed}))
        return
    what = "pulled" if result.changed else "already current:"
    typer.echo(f"{what} snapshot {result.snapshot_id}: {plural(result.files, 'file')}, "
               f"{result.bytes_total / 1e6:.1f} MB; {target} -> {result.path}")
