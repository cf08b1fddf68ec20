"""Links: the SSRF fences as a table, then real downloads from a loopback server."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from citywok.errors import DownloadFailedError, URLRefusedError
from citywok.links.fetch import LinkPolicy, address_allowed, check_link, resolve_checked
from citywok.web.core.config import DEFAULT_PLATFORMS
from tests.web.conftest import Library, MediaServer, link_settings, parse_sse

URL = "/api/v1/identify"
POLICY = LinkPolicy(allowed_hosts=DEFAULT_PLATFORMS)


@pytest.mark.parametrize(("url", "why"), [
    ("https://youtube.com@127.0.0.1/", "credentials"),
    ("https://user:pw@youtube.com/watch?v=x", "credentials"),
    ("https://tiktok.com.evil.example/", "not accepted"),
    ("https://eviltiktok.com/@a/video/1", "not accepted"),
    ("https://youtube.com.evil.example/watch", "not accepted"),
    ("https://127.0.0.1/", "not accepted"),
    ("http://localhost/", "not accepted"),
    ("http://[::1]/", "not accepted"),
    ("http://169.254.169.254/latest/meta-data/", "not accepted"),
    ("http://10.0.0.1/", "not accepted"),
    ("http://0x7f000001/", "not accepted"),
    ("http://2130706433/", "not accepted"),
    ("file:///etc/passwd", "only http"),
    ("ftp://youtube.com/x", "only http"),
    ("gopher://youtube.com/", "only http"),
    ("javascript:alert(1)", "only http"),
    ("//youtube.com/x", "only http"),
    ("youtube.com/watch?v=x", "only http"),
    ("https://youtube.com:8080/watch", "port"),
    ("https://youtube.com:22/", "port"),
    ("https://youtube.com:99999/", "not a valid URL"),
    ("https://you tube.com/", "spaces"),
    ("https://youtube.com\\@127.0.0.1/", "backslashes"),
    ("https:///watch", "no host"),
    ("https://" + "a" * 3000 + ".youtube.com/", "longer"),
])
def test_links_refused(url: str, why: str) -> None:
    with pytest.raises(URLRefusedError) as info:
        check_link(url, POLICY)
    assert why in info.value.message


@pytest.mark.parametrize(("url", "host"), [
    ("https://www.youtube.com/watch?v=abc", "www.youtube.com"),
    ("https://youtu.be/abc", "youtu.be"),
    ("https://www.tiktok.com/@user/video/123", "www.tiktok.com"),
    ("https://vm.tiktok.com/ZM123/", "vm.tiktok.com"),
    ("https://www.instagram.com/reel/abc/", "www.instagram.com"),
    ("https://x.com/user/status/1", "x.com"),
    ("https://www.reddit.com/r/a/comments/b/", "www.reddit.com"),
    ("HTTPS://YouTube.COM./watch", "youtube.com"),
    ("https://youtube.com:443/watch", "youtube.com"),
])
def test_links_accepted(url: str, host: str) -> None:
    assert check_link(url, POLICY).host == host


@pytest.mark.parametrize(("address", "allowed"), [
    ("8.8.8.8", True), ("2606:4700:4700::1111", True),
    ("127.0.0.1", False), ("127.5.5.5", False), ("::1", False), ("10.1.2.3", False),
    ("172.16.0.1", False), ("192.168.1.1", False), ("169.254.169.254", False),
    ("fe80::1", False), ("fc00::1", False), ("224.0.0.1", False), ("ff02::1", False),
    ("0.0.0.0", False), ("::", False), ("240.0.0.1", False), ("255.255.255.255", False),
    ("100.64.0.1", False), ("::ffff:127.0.0.1", False), ("::ffff:10.0.0.1", False),
    ("2002:7f00:1::", False), ("192.0.2.1", False), ("not an ip", False),
])
def test_address_policy(address: str, allowed: bool) -> None:
    assert address_allowed(address, POLICY) is allowed


def test_loopback_only_with_the_test_setting() -> None:
    lenient = LinkPolicy(allowed_hosts=("127.0.0.1",), allow_loopback=True)
    assert address_allowed("127.0.0.1", lenient)
    assert not address_allowed("10.0.0.1", lenient)
    assert not address_allowed("127.0.0.1", POLICY)


def _resolver(*addresses: str) -> Callable[..., list[tuple[Any, ...]]]:
    def resolve(host: str, port: int, **kwargs: Any) -> list[tuple[Any, ...]]:
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (a, port)) for a in addresses]
    return resolve


@pytest.mark.parametrize("addresses", [
    ("127.0.0.1",), ("93.184.216.34", "10.0.0.5"), ("2606:4700::1", "::1"),
    ("169.254.169.254",), ("93.184.216.34", "224.0.0.251"),
])
def test_every_resolved_address_is_checked(addresses: tuple[str, ...]) -> None:
    with pytest.raises(URLRefusedError):
        resolve_checked("youtube.com", 443, POLICY, resolver=_resolver(*addresses))


def test_resolution_failure_and_success() -> None:
    def fail(*args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        raise socket.gaierror("no such host")

    with pytest.raises(DownloadFailedError):
        resolve_checked("youtube.com", 443, POLICY, resolver=fail)
    got = resolve_checked("youtube.com", 443, POLICY,
                          resolver=_resolver("93.184.216.34", "2606:4700::1"))
    assert got == ["2606:4700::1", "93.184.216.34"]


# -- over HTTP ----------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["https://youtube.com@127.0.0.1/",
                                 "https://tiktok.com.evil.example/", "file:///etc/passwd",
                                 "http://127.0.0.1/clip.mp3"])
def test_refused_links_over_http(client: TestClient, url: str) -> None:
    r = client.post(URL, json={"url": url})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "url_refused"


def test_link_from_loopback_server(make_client: Callable[..., TestClient], library: Library,
                                   media_server: MediaServer) -> None:
    client = make_client(**link_settings(media_server))
    clip = library.clips[".mp3"]
    r = client.post(URL, json={"url": f"{media_server.url}/clip.mp3"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["match"]["episode_id"] == clip.episode_id
    assert abs(body["match"]["offset_s"] - clip.offset_s) <= 1.0
    assert body["file"] == f"{media_server.url}/clip.mp3"


def test_link_as_form_field_streams_download_progress(
        make_client: Callable[..., TestClient], media_server: MediaServer,
        tmp_path: Path) -> None:
    client = make_client(**link_settings(media_server))
    with client.stream("POST", URL, data={"url": f"{media_server.url}/clip.mp3"},
                       headers={"Accept": "text/event-stream"}) as r:
        events = list(parse_sse(r.iter_lines()))
    names = [n for n, _ in events if n != "heartbeat"]
    assert names[0] == "received" and names[-1] == "result"
    assert names.index("downloading") < names.index("decoding")
    last = [d for n, d in events if n == "downloading"][-1]
    assert last["percent"] == 100.0 and last["bytes"] > 0
    assert list((tmp_path / "work").iterdir()) == []


def test_loopback_needs_the_test_setting(make_client: Callable[..., TestClient],
                                         media_server: MediaServer) -> None:
    settings = link_settings(media_server)
    settings["fetch_allow_loopback"] = False
    client = make_client(**settings)
    r = client.post(URL, json={"url": f"{media_server.url}/clip.mp3"})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "url_refused"


@pytest.mark.parametrize("target", ["http://169.254.169.254/latest/meta-data",
                                    "http://10.0.0.1/a.mp3", "http://127.0.0.1:9/a.mp3",
                                    "http://[::ffff:192.168.0.1]/a.mp3"])
def test_redirects_are_checked(make_client: Callable[..., TestClient],
                               media_server: MediaServer, target: str) -> None:
    client = make_client(**link_settings(media_server))
    url = f"{media_server.url}/redirect-to/{target.replace('/', '~')}"
    r = client.post(URL, json={"url": url})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "url_refused"


def test_redirect_within_policy_is_followed(make_client: Callable[..., TestClient],
                                            media_server: MediaServer) -> None:
    client = make_client(**link_settings(media_server))
    target = f"{media_server.url}/clip.mp3".replace("/", "~")
    r = client.post(URL, json={"url": f"{media_server.url}/redirect-to/{target}"})
    assert r.status_code == 200, r.text


def test_download_size_cap(make_client: Callable[..., TestClient],
                           media_server: MediaServer) -> None:
    client = make_client(**link_settings(media_server), download_max_bytes=200_000)
    r = client.post(URL, json={"url": f"{media_server.url}/big.mp3"})
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "download_too_large"


def test_download_timeout_really_stops(make_client: Callable[..., TestClient],
                                       media_server: MediaServer) -> None:
    settings = {**link_settings(media_server), "download_timeout_s": 3.0}
    client = make_client(**settings)
    started = time.monotonic()
    r = client.post(URL, json={"url": f"{media_server.url}/slow/timeout.mp3"})
    elapsed = time.monotonic() - started
    assert r.status_code == 502
    assert "longer than 3 s" in r.json()["error"]["message"]
    assert elapsed < 10
    deadline = time.monotonic() + 5
    while "/slow/timeout.mp3" not in media_server.disconnects and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "/slow/timeout.mp3" in media_server.disconnects


def test_page_without_media(make_client: Callable[..., TestClient],
                            media_server: MediaServer) -> None:
    client = make_client(**link_settings(media_server))
    r = client.post(URL, json={"url": f"{media_server.url}/page.html"})
    assert r.status_code == 502
    assert r.json()["error"]["code"] == "download_failed"
