"""Rate limits: tiers, per-key overrides, headers, proxies; memory and Redis storage."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from citywok.web.app import create_app
from citywok.web.keys import KeyStore
from tests.web.conftest import Library, base_settings

URL = "/api/v1/identify"


#: An upload that is not media: counted as an identification (it is examined), answered
#: 415 after one ffprobe: cheap to send. (A malformed request is not counted: see below.)
NOT_MEDIA = {"file": ("clip.mp3", b"this is not media at all")}


def _try(client: TestClient, **kwargs: object) -> httpx.Response:
    response: httpx.Response = client.post(URL, files=NOT_MEDIA, **kwargs)  # type: ignore[arg-type,unused-ignore]
    return response


def test_anonymous_limit_per_ip(make_client: Callable[..., TestClient]) -> None:
    client = make_client(anonymous_rate_limit="3/hour")
    statuses = [_try(client).status_code for _ in range(5)]
    assert statuses == [415, 415, 415, 429, 429]
    r = _try(client)
    assert r.status_code == 429
    assert r.json()["error"]["code"] == "rate_limited"
    assert 3000 < int(r.headers["retry-after"]) <= 3600
    assert r.headers["ratelimit-limit"] == "3"
    assert r.headers["ratelimit-remaining"] == "0"
    assert int(r.headers["ratelimit-reset"]) > 0
    assert r.headers["ratelimit-policy"] == "3;w=3600"
    assert client.get("/healthz").status_code == 200  # only identifications are counted


def test_remaining_counts_down(make_client: Callable[..., TestClient]) -> None:
    client = make_client(anonymous_rate_limit="5/minute")
    assert [_try(client).headers["ratelimit-remaining"] for _ in range(3)] == ["4", "3", "2"]


def test_keyed_tier_and_per_key_override(make_client: Callable[..., TestClient],
                                         tmp_path: Path) -> None:
    client = make_client(anonymous_rate_limit="1/hour", key_rate_limit="2/hour")
    store = KeyStore(tmp_path / "keys.sqlite")
    plain = {"X-API-Key": store.create("plain").token}
    big = {"X-API-Key": store.create("big", rate_limit="4/hour").token}
    assert [_try(client).status_code for _ in range(2)] == [415, 429]
    assert [_try(client, headers=plain).status_code for _ in range(3)] == [415, 415, 429]
    assert [_try(client, headers=big).status_code for _ in range(5)] == [415] * 4 + [429]


def test_forwarded_for_ignored_without_trusted_proxies(
        make_client: Callable[..., TestClient]) -> None:
    client = make_client(anonymous_rate_limit="1/hour")
    assert _try(client, headers={"X-Forwarded-For": "1.1.1.1"}).status_code == 415
    assert _try(client, headers={"X-Forwarded-For": "2.2.2.2"}).status_code == 429


def test_forwarded_for_from_trusted_proxies(library: Library, tmp_path: Path) -> None:
    settings = base_settings(library, tmp_path, anonymous_rate_limit="1/hour",
                             trusted_proxies=["10.0.0.0/8"])
    with TestClient(create_app(settings), client=("10.0.0.7", 5000)) as proxied:
        assert _try(proxied, headers={"X-Forwarded-For": "1.1.1.1"}).status_code == 415
        assert _try(proxied, headers={"X-Forwarded-For": "2.2.2.2"}).status_code == 415
        assert _try(proxied, headers={"X-Forwarded-For": "2.2.2.2"}).status_code == 429
        # A client cannot pick its own address by prepending to the header.
        spoof = {"X-Forwarded-For": "9.9.9.9, 2.2.2.2"}
        assert _try(proxied, headers=spoof).status_code == 429


def test_client_ip_rules() -> None:
    from starlette.requests import Request

    from citywok.web.security import client_ip, parse_networks

    def req(peer: str, xff: str | None) -> Request:
        headers = [(b"x-forwarded-for", xff.encode())] if xff else []
        return Request({"type": "http", "client": (peer, 1), "headers": headers})

    trusted = parse_networks(["10.0.0.0/8"])
    assert client_ip(req("8.8.8.8", "1.2.3.4"), trusted) == "8.8.8.8"
    assert client_ip(req("10.0.0.1", "1.2.3.4"), trusted) == "1.2.3.4"
    assert client_ip(req("10.0.0.1", "6.6.6.6, 1.2.3.4, 10.0.0.2"), trusted) == "1.2.3.4"
    assert client_ip(req("10.0.0.1", None), trusted) == "10.0.0.1"
    assert client_ip(req("10.0.0.1", "not-an-ip"), trusted) == "10.0.0.1"
    assert client_ip(req("10.0.0.1", "1.2.3.4"), ()) == "10.0.0.1"


# -- redis --------------------------------------------------------------------------------


def test_redis_limits_are_shared_between_workers(library: Library, tmp_path: Path,
                                                 redis_url: str) -> None:
    """Two apps (as two workers would be) count in one Redis window."""
    settings = base_settings(library, tmp_path, rate_limit_storage=redis_url,
                             anonymous_rate_limit="4/hour")
    with TestClient(create_app(settings)) as a, TestClient(create_app(settings)) as b:
        statuses = [(a if i % 2 else b).post(URL, files=NOT_MEDIA).status_code for i in range(6)]
        assert statuses == [415] * 4 + [429, 429]
        assert a.get("/readyz").status_code == 200


def test_redis_limits_hold_exactly_under_concurrency(library: Library, tmp_path: Path,
                                                     redis_url: str) -> None:
    settings = base_settings(library, tmp_path, rate_limit_storage=redis_url,
                             key_rate_limit="7/hour")
    token = KeyStore(settings.keys_path).create("burst").token
    apps = [create_app(settings) for _ in range(3)]

    async def burst() -> list[int]:
        clients = [httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://t") for app in apps]
        try:
            calls = [clients[i % 3].post(URL, files=NOT_MEDIA, headers={"X-API-Key": token})
                     for i in range(40)]
            return [r.status_code for r in await asyncio.gather(*calls)]
        finally:
            for c in clients:
                await c.aclose()

    statuses = asyncio.run(burst())
    assert statuses.count(415) == 7
    assert statuses.count(429) == 33


def test_memory_limits_exact_under_concurrency(library: Library, tmp_path: Path) -> None:
    settings = base_settings(library, tmp_path, anonymous_rate_limit="5/hour")
    app = create_app(settings)

    async def burst() -> list[int]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://t") as c:
            return [r.status_code for r in await asyncio.gather(
                *[c.post(URL, files=NOT_MEDIA) for _ in range(30)])]

    statuses = asyncio.run(burst())
    assert statuses.count(415) == 5 and statuses.count(429) == 25


def test_redis_down_is_503_not_500(library: Library, tmp_path: Path) -> None:
    from tests.web.conftest import free_port

    settings = base_settings(library, tmp_path,
                             rate_limit_storage=f"redis://127.0.0.1:{free_port()}/0")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        r = client.post(URL, files=NOT_MEDIA)
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "rate_limit_unavailable"
        assert client.get("/readyz").status_code == 503


@pytest.mark.parametrize("tier", ["anonymous", "key"])
def test_rate_limited_counter(make_client: Callable[..., TestClient], tmp_path: Path,
                              tier: str) -> None:
    client = make_client(anonymous_rate_limit="1/hour", key_rate_limit="1/hour")
    headers = {}
    if tier == "key":
        headers = {"X-API-Key": KeyStore(tmp_path / "keys.sqlite").create("m").token}
    _try(client, headers=headers)
    _try(client, headers=headers)
    text = client.get("/metrics").text
    assert f'citywok_rate_limited_total{{tier="{tier}"}}' in text


# -- refused requests (issue 8, item 10) and IPv6 (item 19) -----------------------------


def test_refused_requests_do_not_use_up_the_quota(make_client: Callable[..., TestClient],
                                                  ) -> None:
    """Issue 8, item 10: 7 refused links once left 3 of 10 identifications."""
    client = make_client(anonymous_rate_limit="10/hour", refused_rate_limit="8/hour")
    refused = [client.post(URL, json={"url": f"https://refused.example/{n}"}).status_code
               for n in range(7)]
    assert refused == [422] * 7
    counted = _try(client)
    assert counted.status_code == 415, counted.text
    assert counted.headers["ratelimit-remaining"] == "9"
    assert client.post(URL, data={"nothing": "here"}).status_code == 422  # the 8th refusal
    # Refusals have their own limit: past it, the address is refused until it moves on.
    r = client.post(URL, json={"url": "https://refused.example/9"})
    assert r.status_code == 429 and "refused requests" in r.json()["error"]["message"]
    assert int(r.headers["retry-after"]) > 0


def test_a_spent_quota_refuses_before_the_body_is_read(
        make_client: Callable[..., TestClient]) -> None:
    client = make_client(anonymous_rate_limit="1/hour")
    assert _try(client).status_code == 415
    r = client.post(URL, json={"url": "https://refused.example/x"})
    assert r.status_code == 429 and r.headers["ratelimit-remaining"] == "0"


def test_ipv6_clients_are_counted_per_64(library: Library, tmp_path: Path) -> None:
    from citywok.web.ratelimit import RateLimiter

    limiter = RateLimiter(base_settings(library, tmp_path, anonymous_rate_limit="2/hour"))

    async def hits() -> list[bool]:
        return [(await limiter.hit(key=None, ip=ip)).allowed for ip in (
            "2001:db8:1:2::1", "2001:db8:1:2:ffff::9", "2001:db8:1:2::1",  # one /64
            "2001:db8:1:3::1",  # the next /64
            "::ffff:192.0.2.1", "192.0.2.1", "192.0.2.1")]  # IPv4-mapped is the IPv4 one

    assert asyncio.run(hits()) == [True, True, False, True, True, True, False]


def test_a_server_on_loopback_has_no_anonymous_limit_unless_one_is_set(
        make_client: Callable[..., TestClient]) -> None:
    """A person's own server once locked them out after 10 identifications an hour."""
    own = make_client(anonymous_rate_limit=None)  # host 127.0.0.1, the default
    responses = [_try(own) for _ in range(12)]
    assert [r.status_code for r in responses] == [415] * 12
    assert not any("ratelimit-limit" in r.headers for r in responses)
    me = own.get("/api/v1/me").json()
    assert me["tier"] == "anonymous" and me["limit"] is None and me["remaining"] is None
    # Set, the limit applies on loopback too; timelines count against it as well.
    limited = make_client(anonymous_rate_limit="2/hour")
    timeline = limited.post("/api/v1/timeline", files=NOT_MEDIA)
    assert timeline.headers["ratelimit-remaining"] == "1", timeline.headers
    assert [_try(limited).status_code for _ in range(2)] == [415, 429]


def test_a_server_others_can_reach_limits_anonymous_clients_by_default(
        make_client: Callable[..., TestClient]) -> None:
    public = make_client(anonymous_rate_limit=None, host="0.0.0.0")
    statuses = [_try(public).status_code for _ in range(11)]
    assert statuses == [415] * 10 + [429]
    assert public.get("/api/v1/me").json()["limit"] == 10
