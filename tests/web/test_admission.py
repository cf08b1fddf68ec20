"""The bounded queue in front of identifications: refusal at once past the wait allowed
(503 with Retry-After), places in order, and the queue moving as jobs end."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from citywok.errors import ServiceBusyError
from citywok.web.admission import Admission, Place
from citywok.web.state import Services
from tests.web.conftest import Library

URL = "/api/v1/identify"


def test_a_job_is_admitted_while_its_wait_stays_under_the_bound() -> None:
    adm = Admission(slots=2, max_wait_s=1.5, initial_job_s=2.0)
    # Two slots free: no wait; past them, each job shares the two slots.
    first, second = adm.admit(), adm.admit()
    assert adm.expected_wait_s(adm.waiting) == pytest.approx(1.0)
    third = adm.admit()  # 1 s expected: in
    with pytest.raises(ServiceBusyError) as refused:
        adm.admit()
    assert refused.value.retry_after_s >= 1 and "busy" in refused.value.message
    assert "3 identifications are ahead" in refused.value.message
    # One leaves before its work started (its request went away): room for one more.
    adm.release(second)
    adm.admit()
    assert adm.waiting == 3 and adm.running == 0
    for t in (first, third):
        adm.release(t)
    assert adm.waiting == 1


def test_jobs_take_their_turn_in_order_and_say_where_they_stand() -> None:
    async def scenario() -> None:
        adm = Admission(slots=1, max_wait_s=100.0, initial_job_s=1.0)
        tickets = [adm.admit() for _ in range(3)]
        places: dict[int, list[Place]] = {0: [], 1: [], 2: []}
        started: list[int] = []

        async def job(n: int) -> None:
            async for where in adm.turn(tickets[n], every_s=0.05):
                places[n].append(where)
            started.append(n)
            await asyncio.sleep(0.1)
            adm.release(tickets[n])

        await asyncio.gather(*(job(n) for n in range(3)))
        assert started == [0, 1, 2]
        assert places[0] == []  # a free slot: no wait, no place
        assert places[1][0].position == 1 and places[2][0].position == 2
        # The last one moved up when the first finished.
        assert [p.position for p in places[2]][-1] == 1
        assert adm.running == 0 and adm.waiting == 0
        # Three jobs of ~0.1 s ran: the average moved from the first guess toward them.
        assert 0.1 <= adm.average_job_s < 1.0

    asyncio.run(scenario())


def test_a_released_ticket_is_released_once() -> None:
    adm = Admission(slots=1, max_wait_s=10.0, initial_job_s=1.0)
    t = adm.admit()
    adm.release(t)
    adm.release(t)
    assert adm.waiting == 0 and adm.running == 0


def test_the_service_refuses_at_once_with_503_and_retry_after(
        make_client: Callable[..., TestClient], library: Library) -> None:
    client = make_client(max_concurrent_jobs=1, max_queue_wait_s=2.0, job_time_guess_s=3.0)
    services: Services = client.app.state.services  # type: ignore[attr-defined]
    # Work already in: one job for the one slot, 3 s by the first guess.
    ahead = [services.admission.admit()]
    clip = library.clips[".mp3"].path
    r = client.post(URL, files={"file": (clip.name, clip.read_bytes())})
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "busy"
    assert "busy" in r.json()["error"]["message"]
    assert int(r.headers["retry-after"]) >= 1
    # Nothing of the refused request stayed in the queue; once the work ahead is done,
    # the same clip is answered.
    assert services.admission.waiting == 1
    for t in ahead:
        services.admission.release(t)
    r = client.post(URL, files={"file": (clip.name, clip.read_bytes())})
    assert r.status_code == 200, r.text
    assert r.json()["match"]["episode_id"] == library.clips[".mp3"].episode_id
    assert services.admission.waiting == 0 and services.admission.running == 0


def test_a_request_refused_for_what_it_is_or_its_quota_holds_no_place(
        make_client: Callable[..., TestClient], library: Library) -> None:
    client = make_client(max_concurrent_jobs=1, anonymous_rate_limit="1/hour")
    services: Services = client.app.state.services  # type: ignore[attr-defined]
    r = client.post(URL, json={"url": "http://10.0.0.1/clip.mp4"})
    assert r.status_code == 422, r.text  # a link not allowed: 422, as ever, not 503
    clip = library.clips[".mp3"].path
    assert client.post(URL, files={"file": (clip.name, clip.read_bytes())}).status_code == 200
    r = client.post(URL, files={"file": (clip.name, clip.read_bytes())})
    assert r.status_code == 429, r.text  # admitted, then over its quota: released
    assert services.admission.waiting == 0 and services.admission.running == 0
