"""A folder of episode files → what each file is (show, season, episode, title).

Files with a common media extension are taken as they are; any other file is taken when
ffprobe finds an audio stream in it, and every file left out is named with the reason.
Names are parsed from the common schemes; a CSV sidecar (``citywok.csv`` in the folder,
or one given explicitly) overrides them, row by row. The sidecar may also say where each
show can be watched: a ``watch_url`` template with ``{season}``, ``{episode}`` and ``{t}``
(seconds) placeholders, on a file's row or on a row with no file that names only a show.
"""

from __future__ import annotations

import csv
import re
import string
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from citywok.analysis.decode import probe
from citywok.display import whole_seconds
from citywok.errors import LibraryError, NotMediaError

#: Extensions taken without a look inside (the decoder reports any that fail). Files with
#: other extensions, or none, are probed.
MEDIA_EXTENSIONS = frozenset({
    ".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v", ".mpg", ".mpeg", ".ts", ".wmv", ".flv",
    ".mp3", ".m4a", ".aac", ".ogg", ".oga", ".opus", ".flac", ".wav", ".wma", ".aif",
    ".aiff", ".mka", ".ogv", ".mts", ".m2ts", ".wv", ".ac3", ".eac3", ".caf", ".vob",
    ".3gp", ".mp2", ".amr", ".ape", ".dts", ".tta", ".mxf", ".asf",
})
SIDECAR_NAME = "citywok.csv"
#: ffprobe runs at once while a folder is scanned (each waits mostly on the disk).
PROBE_THREADS = 4


@dataclass(frozen=True)
class EpisodeInfo:
    show: str
    season: int | None
    episode: int | None
    title: str | None
    #: Where the episode can be watched: a template (see :func:`render_watch_url`).
    watch_url: str | None = None


WATCH_URL_FIELDS = frozenset({"season", "episode", "t"})


def check_watch_url(template: str, *, where: str = "sidecar") -> str:
    """``template`` if it is an http(s) URL whose only placeholders are ``{season}``,
    ``{episode}`` and ``{t}`` (format specs such as ``{episode:02d}`` allowed)."""
    text = template.strip()
    if not re.match(r"(?i)^https?://[^\s/]+", text):
        raise LibraryError(f"{where}: watch_url must start with http:// or https://")
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}
    except ValueError as exc:
        raise LibraryError(f"{where}: watch_url is not a valid template ({exc})") from None
    unknown = fields - WATCH_URL_FIELDS
    if unknown:
        raise LibraryError(f"{where}: watch_url may use only {{season}}, {{episode}} and {{t}}, "
                           f"not {{{sorted(unknown)[0]}}}")
    return text


def render_watch_url(template: str, *, season: int | None, episode: int | None,
                     t_s: float) -> str | None:
    """The link to watch an episode from ``t_s`` seconds (whole seconds, rounded as the
    times shown are), or ``None`` when the template needs a number the episode lacks."""
    values = {"season": season, "episode": episode, "t": whole_seconds(t_s)}
    needed = {f for _, f, _, _ in string.Formatter().parse(template) if f}
    if any(values.get(f) is None for f in needed):
        return None
    try:
        return template.format(**values)
    except (ValueError, KeyError, IndexError):
        return None


_SXXEYY = re.compile(r"(?i)(?<![a-z0-9])s(\d{1,3})[ ._-]?e(\d{1,4})(?!\d)")
_NXNN = re.compile(r"(?i)(?<![a-z0-9])(\d{1,2})x(\d{1,4})(?!\d)")
_SEASON_DIR = re.compile(r"(?i)^(?:season|series|staffel|saison|s)[ ._-]*(\d{1,3})$")
_EPISODE_WORD = re.compile(r"(?i)^(?:episode|ep|e)[ ._-]*(\d{1,4})\b[ ._-]*(.*)$")
_LEADING_NUMBER = re.compile(r"^(\d{1,4})(?:[ ._-]+(.*))?$")
_JUNK = re.compile(
    r"(?i)[ ._-]*\b(?:\d{3,4}p|x26[45]|h\.?26[45]|hevc|web-?dl|webrip|bluray|hdtv|"
    r"aac|ac3|dts|10bit)\b.*$"
)


_PAIRS = {"(": ")", "[": "]"}


def _trim(text: str) -> str:
    """Strip separators and brackets left open at either end ("Show [" of "Show [S01E02]"),
    but keep a bracket's pair whole ("Rock [live]", "Show (2019)")."""
    while True:
        before = text
        text = text.strip(" -_.")
        if text and text[-1] in _PAIRS:
            text = text[:-1]
        if text and text[0] in _PAIRS.values():
            text = text[1:]
        for opener, closer in _PAIRS.items():
            if text.count(opener) < text.count(closer) and text.endswith(closer):
                text = text[:-1]
            if text.count(opener) > text.count(closer) and text.startswith(opener):
                text = text[1:]
        if text == before:
            return text


def _clean(text: str) -> str:
    text = text.strip()
    if " " not in text and ("." in text or "_" in text):
        text = re.sub(r"[._]+", " ", text)
    text = re.sub(r"\s+", " ", text)
    return _trim(text)


def _title(text: str) -> str | None:
    text = _clean(_JUNK.sub("", text))
    return text or None


def parse_episode_name(path: str | Path) -> EpisodeInfo:
    """Show, season, episode and title from a file's name and folders.

    Understands ``Show - S01E02 - Title``, ``Show.S01E02.Title.720p``, ``show s1e2``,
    ``Show 1x02 Title`` and ``Show/Season 1/Episode 02 - Title`` (or ``.../02 Title``).
    What cannot be found is ``None``; the show falls back to the folder name.
    """
    p = Path(path)
    stem = p.stem
    parent = p.parent.name
    for pattern in (_SXXEYY, _NXNN):
        m = pattern.search(stem)
        if m:
            show = _clean(stem[: m.start()])
            if not show:
                season_dir = _SEASON_DIR.match(parent)
                show = _clean(p.parent.parent.name if season_dir else parent) or "Unknown"
            return EpisodeInfo(show=show, season=int(m.group(1)), episode=int(m.group(2)),
                               title=_title(stem[m.end():]))
    season_dir = _SEASON_DIR.match(parent)
    if season_dir:
        show = _clean(p.parent.parent.name) or "Unknown"
        season = int(season_dir.group(1))
        m2 = _EPISODE_WORD.match(stem) or _LEADING_NUMBER.match(stem)
        if m2:
            return EpisodeInfo(show=show, season=season, episode=int(m2.group(1)),
                               title=_title(m2.group(2) or ""))
        return EpisodeInfo(show=show, season=season, episode=None, title=_title(stem))
    m3 = _EPISODE_WORD.match(stem)
    if m3:
        return EpisodeInfo(show=_clean(parent) or "Unknown", season=None,
                           episode=int(m3.group(1)), title=_title(m3.group(2) or ""))
    return EpisodeInfo(show=_clean(parent) or "Unknown", season=None, episode=None,
                       title=_title(stem))


def _int_or_none(value: str | None, *, row: int, column: str) -> int | None:
    if value is None or value.strip() == "":
        return None
    try:
        return int(value.strip())
    except ValueError:
        raise LibraryError(f"sidecar row {row}: {column} must be a whole number") from None


#: In the rows :func:`read_sidecar` returns, the key of the show-wide watch URLs.
SHOW_URLS = "\0shows"


def read_sidecar(csv_path: Path) -> dict[str, dict[str, str]]:
    """Rows of a metadata CSV keyed by the ``file`` (or ``path``) column.

    Columns: ``file`` (name or path relative to the CSV) plus any of ``show``, ``season``,
    ``episode``, ``title``, ``watch_url``. Empty cells keep what the name says. A row with
    no file but a ``show`` and a ``watch_url`` sets that show's watch URL; those are
    returned under the key :data:`SHOW_URLS` (show → template).
    """
    try:
        with csv_path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            fields = {f.strip().lower() for f in (reader.fieldnames or [])}
            key = "file" if "file" in fields else "path" if "path" in fields else None
            if key is None:
                raise LibraryError(f"{csv_path.name}: needs a 'file' column")
            rows: dict[str, dict[str, str]] = {}
            shows: dict[str, str] = {}
            for n, row in enumerate(reader, start=2):
                norm = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
                if norm.get("watch_url"):
                    norm["watch_url"] = check_watch_url(
                        norm["watch_url"], where=f"{csv_path.name} row {n}")
                if norm.get(key):
                    rows[norm[key]] = norm
                elif norm.get("show") and norm.get("watch_url"):
                    shows[norm["show"]] = norm["watch_url"]
            if shows:
                rows[SHOW_URLS] = shows
            return rows
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise LibraryError(f"{csv_path.name}: cannot be read ({exc})") from None


def apply_sidecar(info: EpisodeInfo, row: dict[str, str], *, row_no: int = 0) -> EpisodeInfo:
    out = info
    if row.get("show"):
        out = replace(out, show=row["show"])
    if row.get("season"):
        out = replace(out, season=_int_or_none(row["season"], row=row_no, column="season"))
    if row.get("episode"):
        out = replace(out, episode=_int_or_none(row["episode"], row=row_no, column="episode"))
    if row.get("title"):
        out = replace(out, title=row["title"])
    if row.get("watch_url"):
        out = replace(out, watch_url=row["watch_url"])
    return out


@dataclass(frozen=True)
class LibraryFile:
    path: Path
    info: EpisodeInfo


@dataclass(frozen=True)
class LibraryScan:
    """What a scan found: the media files, and every other file with why it was left out."""

    files: tuple[LibraryFile, ...]
    #: (path relative to the folder it was found under, reason), sorted.
    left_out: tuple[tuple[str, str], ...] = ()


def _why_not_media(path: Path) -> str | None:
    """``None`` when ffprobe finds audio in ``path``, else the reason it is left out."""
    try:
        info = probe(path)
    except NotMediaError as exc:
        return exc.message.removeprefix(f"{path.name}: ")
    if info.audio_streams == 0:
        return f"no audio stream (a {info.format_name.split(',')[0]} file)"
    return None


def scan_library(paths: Iterable[str | Path], *, sidecar: Path | None = None) -> LibraryScan:
    """Every media file under ``paths`` (files or folders), with its metadata, sorted.

    A file named directly is always taken. In folders, hidden files and folders are left
    out, files with a known media extension are taken, and others are probed.
    """
    found: list[tuple[Path, Path]] = []  # (file, root it was found under)
    unknown: list[tuple[Path, Path]] = []
    left_out: list[tuple[str, str]] = []
    sidecar_files = {sidecar.resolve()} if sidecar is not None else set()
    for raw in paths:
        root = Path(raw)
        if root.is_file():
            found.append((root.resolve(), root.resolve().parent))
        elif root.is_dir():
            base = root.resolve()
            stack, seen = [base], {base}
            while stack:
                folder = stack.pop()
                try:
                    entries = sorted(folder.iterdir())
                except OSError as exc:
                    left_out.append((folder.relative_to(base).as_posix() or ".",
                                     f"cannot be read ({exc.strerror})"))
                    continue
                for f in entries:
                    rel = f.relative_to(base).as_posix()
                    if f.name.startswith("."):
                        left_out.append((rel, "hidden " + ("folder" if f.is_dir() else "file")))
                    elif f.is_dir():
                        if f.resolve() not in seen:  # a link back up is walked once
                            seen.add(f.resolve())
                            stack.append(f)
                    elif not f.is_file() or f.name == SIDECAR_NAME or f in sidecar_files:
                        continue
                    elif f.suffix.lower() in MEDIA_EXTENSIONS:
                        found.append((f.resolve(), base))
                    else:
                        unknown.append((f, base))
        else:
            raise LibraryError(f"{raw}: no such file or folder")
    with ThreadPoolExecutor(PROBE_THREADS) as pool:
        for (f, base), why in zip(unknown, pool.map(_why_not_media, [f for f, _ in unknown]),
                                  strict=True):
            if why is None:
                found.append((f.resolve(), base))
            else:
                left_out.append((f.relative_to(base).as_posix(), why))
    return LibraryScan(files=tuple(_with_metadata(found, sidecar)),
                       left_out=tuple(sorted(set(left_out))))


def _with_metadata(found: list[tuple[Path, Path]], sidecar: Path | None
                   ) -> Iterator[LibraryFile]:
    sidecars: dict[Path, dict[str, dict[str, str]]] = {}
    if sidecar is not None:
        sidecars[sidecar.resolve().parent] = read_sidecar(sidecar)
    for f, root in sorted(set(found)):
        info = parse_episode_name(f)
        if sidecar is None and root not in sidecars:
            candidate = root / SIDECAR_NAME
            sidecars[root] = read_sidecar(candidate) if candidate.is_file() else {}
        for base, rows in sidecars.items():
            if not f.is_relative_to(base):
                continue
            rel = f.relative_to(base).as_posix()
            row = rows.get(rel) or rows.get(f.name)
            if row:
                info = apply_sidecar(info, row)
            show_url = rows.get(SHOW_URLS, {}).get(info.show)
            if show_url and info.watch_url is None:
                info = replace(info, watch_url=show_url)
        yield LibraryFile(path=f, info=info)


def scan(paths: Iterable[str | Path], *, sidecar: Path | None = None) -> Iterator[LibraryFile]:
    """The media files of :func:`scan_library`, without the ones left out."""
    yield from scan_library(paths, sidecar=sidecar).files


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def make_episode_id(info: EpisodeInfo, path: Path) -> str:
    """A readable id: ``show-s01e02``, else ``show-<file stem>``."""
    base = slug(info.show)
    if info.season is not None and info.episode is not None:
        return f"{base}-s{info.season:02d}e{info.episode:02d}"
    if info.episode is not None:
        return f"{base}-e{info.episode:02d}"
    return f"{base}-{slug(path.stem)}"
