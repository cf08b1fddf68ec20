"""The download child process: ``python -m citywok.links.worker`` (config on stdin).

Before yt-dlp is imported, every name lookup and every socket connection of this process
is routed through :func:`citywok.links.fetch.address_allowed`, so no redirect, embedded
link or CDN can take it to a refused address or port. External downloaders and ffmpeg
(which open their own connections) are never used. It prints JSON lines: ``progress``,
then ``done`` with the file, or ``error`` with a code.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path
from typing import Any

from citywok.links.fetch import DEFAULT_PORTS, LinkPolicy, address_allowed

_refused: list[str] = []


def _emit(**msg: Any) -> None:
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


def _port(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, int):
        return value
    text = value.decode() if isinstance(value, bytes) else str(value)
    if text.isdigit():
        return int(text)
    return DEFAULT_PORTS.get(text)


def install_guard(policy: LinkPolicy) -> None:
    """Make this process unable to reach refused addresses or ports."""
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def refuse(why: str) -> OSError:
        _refused.append(why)
        return OSError(f"refused by CityWok's link policy: {why}")

    def check(address: str, port: int | None) -> None:
        if not address_allowed(address, policy):
            raise refuse("the link leads to an address that is not reachable from here")
        if port is not None and not policy.port_allowed(port):
            raise refuse(f"the link leads to port {port}, which is not allowed")

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        infos = real_getaddrinfo(host, port, *args, **kwargs)
        for info in infos:
            check(str(info[4][0]), _port(port))
        return infos

    def _peer(address: Any) -> tuple[str, int | None]:
        if isinstance(address, tuple) and address:
            return str(address[0]), _port(address[1]) if len(address) > 1 else None
        raise refuse("only internet connections are allowed")

    def connect(self: socket.socket, address: Any) -> None:
        if self.family not in (socket.AF_INET, socket.AF_INET6):
            raise refuse("only internet connections are allowed")
        check(*_peer(address))
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if self.family not in (socket.AF_INET, socket.AF_INET6):
            raise refuse("only internet connections are allowed")
        check(*_peer(address))
        return real_connect_ex(self, address)

    socket.getaddrinfo = getaddrinfo
    socket.socket.connect = connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign,assignment]


class _TooLarge(Exception):
    pass


class _Logger:
    def debug(self, msg: str) -> None:
        pass

    def info(self, msg: str) -> None:
        pass

    def warning(self, msg: str) -> None:
        pass

    def error(self, msg: str) -> None:
        pass


def run(config: dict[str, Any]) -> None:
    policy = LinkPolicy(allowed_hosts=tuple(config["policy"]["allowed_hosts"]),
                        allowed_ports=tuple(config["policy"]["allowed_ports"]),
                        allow_loopback=bool(config["policy"]["allow_loopback"]))
    install_guard(policy)
    import yt_dlp  # after the guard: nothing it does can bypass it

    dest = Path(config["dest"])
    max_bytes = int(config["max_bytes"])
    max_duration_s = float(config["max_duration_s"])
    too_large: list[str] = []
    last = [0.0]

    def hook(d: dict[str, Any]) -> None:
        done = int(d.get("downloaded_bytes") or 0)
        total = d.get("total_bytes") or d.get("total_bytes_estimate")
        if done > max_bytes or (total and d.get("total_bytes") and int(total) > max_bytes):
            too_large.append(f"the media is larger than the {max_bytes} bytes allowed")
            raise _TooLarge()
        now = time.monotonic()
        if now - last[0] >= 0.2 or d.get("status") == "finished":
            last[0] = now
            _emit(event="progress", bytes=done, total=int(total) if total else None)

    opts: dict[str, Any] = {
        "format": "bestaudio/best",
        "outtmpl": str(dest / "media.%(ext)s"),
        "paths": {"home": str(dest), "temp": str(dest)},
        "noplaylist": True,
        "playlist_items": "1",
        "max_filesize": max_bytes,
        "socket_timeout": float(config["socket_timeout_s"]),
        "proxy": "",
        "progress_hooks": [hook],
        "logger": _Logger(),
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "cachedir": False,
        "restrictfilenames": True,
        "hls_prefer_native": True,
        "external_downloader": {},
        "postprocessors": [],
        "ffmpeg_location": str(dest / "no-ffmpeg"),
        "retries": 0,
        "fragment_retries": 0,
        "extractor_retries": 0,
        "overwrites": True,
        "color": "never",
    }
    try:
        with yt_dlp.YoutubeDL(opts) as ydl:
            info = ydl.extract_info(config["url"], download=False)
            if info is None:
                raise yt_dlp.utils.DownloadError("no media found")
            if info.get("_type") in ("playlist", "multi_video") and info.get("entries"):
                info = next(iter(info["entries"]))
            duration = info.get("duration")
            if duration and float(duration) > max_duration_s:
                _emit(event="error", code="download_too_large",
                      message=f"the media lasts {float(duration):.0f} s, longer than the "
                      f"{max_duration_s:g} s allowed")
                return
            info = ydl.process_ie_result(info, download=True)
            files = [d.get("filepath") for d in info.get("requested_downloads") or []]
            path = next((Path(f) for f in files if f and Path(f).is_file()), None)
            if path is None:
                candidates = [p for p in dest.iterdir() if p.name.startswith("media.")
                              and not p.name.endswith(".part")]
                path = candidates[0] if candidates else None
            if path is None:
                if too_large or info.get("filesize") or info.get("filesize_approx"):
                    _emit(event="error", code="download_too_large",
                          message=f"the media is larger than the {max_bytes} bytes allowed")
                else:
                    _emit(event="error", code="download_failed",
                          message="no downloadable audio was found at the link")
                return
            _emit(event="done", path=str(path), title=info.get("title"))
    except Exception:
        if _refused:
            _emit(event="error", code="url_refused", message=_refused[0])
        elif too_large:
            _emit(event="error", code="download_too_large", message=too_large[0])
        else:
            _emit(event="error", code="download_failed",
                  message="the link could not be downloaded (unsupported page, removed "
                  "media, or the site refused)")


def main() -> None:
    config = json.loads(sys.stdin.read())
    run(config)


if __name__ == "__main__":
    main()
