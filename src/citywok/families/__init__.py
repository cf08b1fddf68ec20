"""Evidence families, one module each, and the one registry of them.

An index header names the families that built it; :func:`nominator` and
:func:`verifier` give their modules by name. Nothing outside this package imports a
family module: adding a family is its module and one line here.
"""

from __future__ import annotations

from collections.abc import Iterable

from citywok.errors import IndexFormatError
from citywok.families import frames, learned, sketch, triplet
from citywok.families.base import Embedder, Nominator, PictureFamily, Verifier

#: Families whose postings nominate places, by the name an index header gives.
NOMINATORS: dict[str, Nominator] = {triplet.NAME: triplet}
#: Families that score places, by name.
VERIFIERS: dict[str, Verifier] = {sketch.NAME: sketch}
#: Families that embed windows of sound, searched as sequences (the room-proof front end).
EMBEDDERS: dict[str, Embedder] = {learned.NAME: learned}
#: Families that see an episode's pictures (issue 17), by name.
PICTURES: dict[str, PictureFamily] = {frames.NAME: frames}
#: The picture family a new index (or an older one's next writer) keeps.
DEFAULT_PICTURES: str = frames.NAME
#: What a new index is built with: one nominating family, one verifying family, and an
#: embedding family where the analysis parameters allow one.
DEFAULT: tuple[str, ...] = (triplet.NAME, sketch.NAME, learned.NAME)


def _unknown(name: str, role: str, known: Iterable[str]) -> IndexFormatError:
    return IndexFormatError(
        f"the index was built with the {role} family '{name}', which this CityWok does "
        f"not know (it knows {', '.join(known)}): "
        "re-index with `citywok index`")


def nominator(name: str) -> Nominator:
    if name not in NOMINATORS:
        raise _unknown(name, "nominating", NOMINATORS)
    return NOMINATORS[name]


def verifier(name: str) -> Verifier:
    if name not in VERIFIERS:
        raise _unknown(name, "verifying", VERIFIERS)
    return VERIFIERS[name]


def embedder(name: str) -> Embedder:
    if name not in EMBEDDERS:
        raise _unknown(name, "embedding", EMBEDDERS)
    return EMBEDDERS[name]


def pictures(name: str) -> PictureFamily:
    if name not in PICTURES:
        raise _unknown(name, "picture", PICTURES)
    return PICTURES[name]
