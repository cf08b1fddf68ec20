"""decide(): from verified places to a status and candidates, on constructed hits."""

from dataclasses import dataclass, field, replace

import pytest

from citywok.match.decide import decide
from citywok.match.places import Hit
from citywok.params import AnalysisParams, MatchParams
from citywok.result import Candidate, Episode, Status

MP = MatchParams()
NEEDED = MP.min_score


def _episode(n: int) -> Episode:
    return Episode(f"ep-{n}", "Show", 1, n, f"Title {n}", 1200.0, f"/lib/{n}.mkv", f"h{n}")


@dataclass
class FakeIndex:
    """What decide() reads of an index: its live episodes and frame length."""

    keys: list[int]
    params: AnalysisParams = field(default_factory=AnalysisParams)

    @property
    def episodes(self) -> dict[int, Episode]:
        return {k: _episode(k) for k in self.keys}

    def episode(self, key: int) -> Episode:
        return _episode(key)

    def shared_holding(self, key: int, start_s: float, end_s: float) -> None:
        return None  # these tests know no shared material


def hit(key: int, evidence: float, offset_s: float = 100.0) -> Hit:
    frames = offset_s / AnalysisParams().frame_s
    return Hit(episode_key=key, offset_frames=frames, time_scale=1.0, pitch_shift=0.0,
               peaks_on_line=20, votes=10, evidence=evidence)


def run(hits: list[Hit], keys: list[int] | None = None, mp: MatchParams = MP
        ) -> tuple[Status, tuple[Candidate, ...]]:
    index = FakeIndex(keys if keys is not None else sorted({h.episode_key for h in hits}))
    return decide(hits, index, mp, clip_s=5.0)  # type: ignore[arg-type]


def test_below_the_threshold_is_no_match() -> None:
    assert run([hit(1, NEEDED - 0.01)]) == (Status.NO_MATCH, ())
    status, cands = run([hit(1, NEEDED)])
    assert status is Status.MATCH and cands[0].episode.episode_id == "ep-1"
    assert cands[0].offset_s == pytest.approx(100.0)
    assert cands[0].score == round(NEEDED, 2)


def test_the_threshold_moves_with_the_params() -> None:
    strict = replace(MP, min_score=NEEDED + 5)
    assert run([hit(1, NEEDED + 1)], mp=strict)[0] is Status.NO_MATCH


def test_close_episodes_make_it_ambiguous_far_ones_do_not() -> None:
    top = NEEDED * 3
    close = top * MP.ambiguous_ratio + 0.01
    status, cands = run([hit(1, top), hit(2, close)])
    assert status is Status.AMBIGUOUS
    assert [c.episode.episode_id for c in cands] == ["ep-1", "ep-2"]
    status, cands = run([hit(1, top), hit(2, top * MP.ambiguous_ratio - 0.01)])
    assert status is Status.MATCH and cands[0].episode.episode_id == "ep-1"


def test_a_runner_up_lowers_the_winners_confidence() -> None:
    alone = run([hit(1, NEEDED * 2)])[1][0].confidence
    shadowed = run([hit(1, NEEDED * 2), hit(2, NEEDED * 1.01)])[1][0].confidence
    assert shadowed < alone
    # A runner-up below the threshold does not count at all.
    assert run([hit(1, NEEDED * 2), hit(2, NEEDED * 0.9)])[1][0].confidence == alone


def test_confidence_grows_with_evidence() -> None:
    values = [run([hit(1, e)])[1][0].confidence for e in (NEEDED, NEEDED + 2, NEEDED + 8)]
    assert values == sorted(values) and values[-1] > 0.9 and values[0] < values[-1]


def test_several_places_of_one_episode_count_once() -> None:
    status, cands = run([hit(1, NEEDED * 2, 100.0), hit(1, NEEDED * 1.9, 400.0)])
    assert status is Status.MATCH and len(cands) == 1 and cands[0].offset_s == 100.0


def test_removed_episodes_are_never_answered() -> None:
    status, cands = run([hit(1, NEEDED * 3), hit(2, NEEDED * 2)], keys=[2])
    assert status is Status.MATCH and cands[0].episode.episode_id == "ep-2"


def test_ambiguous_lists_every_episode_a_match_only_a_few() -> None:
    many = [hit(k, NEEDED * 2) for k in range(1, 15)]
    status, cands = run(many)
    assert status is Status.AMBIGUOUS and len(cands) == 14
    spread = [hit(1, NEEDED * 10)] + [hit(k, NEEDED * 1.1) for k in range(2, 15)]
    status, cands = run(spread)
    assert status is Status.MATCH and len(cands) == MP.max_candidates
