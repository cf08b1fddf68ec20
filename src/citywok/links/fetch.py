"""Links → media files, with yt-dlp, never against the server's own network.

Three fences, each enough on its own for what it guards:

1. :func:`check_link` parses the link: http(s) only, no credentials, default ports unless
   configured, and the host must be on the allow-list (a name matches itself and its
   subdomains, compared on the parsed host, never as a prefix of the text).
2. :func:`resolve_checked` resolves the host and refuses it when *any* address is
   loopback, private, link-local, multicast, reserved or otherwise not global.
3. The download runs in a child process (:mod:`citywok.links.worker`) whose every
   name lookup and socket connection goes through the same address check, so redirects,
   CDNs and rebinding DNS are fenced too; the child is killed at the time limit.

This module imports only the standard library: the child process imports it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import signal
import socket
import sys
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from citywok.errors import (
    DownloadFailedError,
    DownloadTooLargeError,
    FetchError,
    URLRefusedError,
)

DEFAULT_PORTS = {"http": 80, "https": 443}
_LOOPBACK_V4 = ipaddress.ip_network("127.0.0.0/8")


@dataclass(frozen=True)
class LinkPolicy:
    """What a link may point to."""

    allowed_hosts: tuple[str, ...]
    allowed_ports: tuple[int, ...] = ()
    #: Tests only: loopback addresses are allowed too.
    allow_loopback: bool = False
    max_link_length: int = 2048

    def port_allowed(self, port: int) -> bool:
        return port in (80, 443) or port in self.allowed_ports

    def to_json(self) -> dict[str, Any]:
        return {"allowed_hosts": list(self.allowed_hosts),
                "allowed_ports": list(self.allowed_ports),
                "allow_loopback": self.allow_loopback,
                "max_link_length": self.max_link_length}


@dataclass(frozen=True)
class Link:
    url: str
    scheme: str
    host: str
    port: int


def address_allowed(address: str, policy: LinkPolicy) -> bool:
    """Whether a connection to ``address`` may be made (global unicast only)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if policy.allow_loopback and ip.is_loopback:
        return True
    if (ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast
            or ip.is_reserved or ip.is_unspecified):
        return False
    if isinstance(ip, ipaddress.IPv6Address) and (ip.sixtofour or ip.teredo):
        return False
    return ip.is_global


def host_allowed(host: str, policy: LinkPolicy) -> bool:
    return any(host == h or host.endswith("." + h) for h in policy.allowed_hosts)


def check_link(url: str, policy: LinkPolicy) -> Link:
    """Parse ``url`` and refuse it unless scheme, credentials, port and host are allowed."""
    if len(url) > policy.max_link_length:
        raise URLRefusedError(f"the link is longer than {policy.max_link_length} characters")
    if any(ord(c) <= 0x20 or ord(c) == 0x7F or c == "\\" for c in url):
        raise URLRefusedError("the link contains spaces, control characters or backslashes")
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        raise URLRefusedError("the link is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise URLRefusedError("only http and https links are accepted")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise URLRefusedError("links with credentials are not accepted")
    raw_host = (parts.hostname or "").rstrip(".")
    if not raw_host:
        raise URLRefusedError("the link has no host")
    try:
        host = raw_host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise URLRefusedError("the link's host name is not valid") from None
    effective_port = port if port is not None else DEFAULT_PORTS[scheme]
    if port is not None and not policy.port_allowed(port):
        raise URLRefusedError(f"port {port} is not allowed in links")
    if not host_allowed(host, policy):
        raise URLRefusedError(f"links to {host} are not accepted (supported: "
                              f"{', '.join(policy.allowed_hosts)})")
    return Link(url=url, scheme=scheme, host=host, port=effective_port)


Resolver = Callable[..., Sequence[tuple[Any, ...]]]


def resolve_checked(host: str, port: int, policy: LinkPolicy, *,
                    resolver: Resolver = socket.getaddrinfo) -> list[str]:
    """Every address ``host`` resolves to; refused if any one is not allowed."""
    try:
        infos = resolver(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise DownloadFailedError(f"the host {host} could not be resolved") from None
    addresses = sorted({str(info[4][0]) for info in infos})
    if not addresses:
        raise DownloadFailedError(f"the host {host} could not be resolved")
    bad = [a for a in addresses if not address_allowed(a, policy)]
    if bad:
        raise URLRefusedError(f"{host} resolves to an address that is not reachable from "
                              "here (private, loopback, link-local, multicast or reserved)")
    return addresses


# -- the download ------------------------------------------------------------------------


@dataclass(frozen=True)
class DownloadProgress:
    bytes: int
    total: int | None

    @property
    def percent(self) -> float | None:
        if not self.total:
            return None
        return round(min(100.0, 100.0 * self.bytes / self.total), 1)


@dataclass(frozen=True)
class Downloaded:
    path: Path
    bytes: int
    title: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DownloadLimits:
    max_bytes: int
    max_duration_s: float
    timeout_s: float


_ERRORS: dict[str, type[FetchError]] = {
    "url_refused": URLRefusedError,
    "download_too_large": DownloadTooLargeError,
    "download_failed": DownloadFailedError,
}


def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


async def download(link: Link, dest: Path, *, policy: LinkPolicy, limits: DownloadLimits,
                   ) -> AsyncIterator[DownloadProgress | Downloaded]:
    """Download the media behind ``link`` into ``dest``, yielding progress, then the file.

    Call :func:`check_link` and :func:`resolve_checked` first; the child checks again.
    Closing the generator (or the time limit) kills the child and its process group.
    """
    config = {"url": link.url, "dest": str(dest), "policy": policy.to_json(),
              "max_bytes": limits.max_bytes, "max_duration_s": limits.max_duration_s,
              "socket_timeout_s": min(30.0, limits.timeout_s)}
    deadline = time.monotonic() + limits.timeout_s
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "citywok.links.worker",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL, start_new_session=True,
        limit=1 << 20,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(json.dumps(config).encode())
        await proc.stdin.drain()
        proc.stdin.close()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            line = await asyncio.wait_for(proc.stdout.readline(), remaining)
            if not line:
                break
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            kind = msg.get("event")
            if kind == "progress":
                yield DownloadProgress(bytes=int(msg.get("bytes") or 0),
                                       total=int(msg["total"]) if msg.get("total") else None)
            elif kind == "done":
                path = Path(msg["path"])
                if not path.is_file() or dest.resolve() not in path.resolve().parents:
                    raise DownloadFailedError("the downloader produced no file")
                size = path.stat().st_size
                if size > limits.max_bytes:
                    raise DownloadTooLargeError(
                        f"the media is larger than the {limits.max_bytes} bytes allowed")
                yield Downloaded(path=path, bytes=size, title=msg.get("title"))
                return
            elif kind == "error":
                cls = _ERRORS.get(str(msg.get("code")), DownloadFailedError)
                raise cls(str(msg.get("message") or "the download failed"))
        raise DownloadFailedError("the downloader stopped without an answer")
    except TimeoutError:
        raise DownloadFailedError(
            f"the download took longer than {limits.timeout_s:g} s and was stopped") from None
    finally:
        _kill(proc)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(proc.wait(), 5)
