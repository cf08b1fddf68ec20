"""Search: a clip's (or a screenshot's) frames against a frame index, then one answer.

1. **Content boxes** (:func:`content_boxes`): where the episode may be in the query's
   frames: the frame without flat bars (letterbox, pillarbox), and the largest region
   that moves while the rest stands still (the episode inside a reaction video).
2. **Codes** (:func:`query_codes`): each box, and its mirror image, on the index's grid.
   A box of the episode's 16:9 shape gives the index's own strips; a narrower one (a
   9:16 crop) gives windows at every pixel offset, one of which lines up with a strip
   of the index wherever the crop was taken.
3. **Lookup**: FAISS's exhaustive binary index (Hamming distances by popcount, ~8 bytes
   a code: a few hundred thousand codes an hour of video are scanned in milliseconds,
   exactly, with no training and no recall loss), range search within
   ``radius_bits``.
4. **Votes** (:func:`vote`): every meeting votes for (episode, start time at each tried
   speed, box, mirror, crop position); a place's score is how many distinct (query
   frame, strip) pairs agree on it.
5. **Decision** (:func:`decide`): ``match`` above the threshold; ``ambiguous`` when
   another episode, or another time of the same one, scores nearly as well (the title
   card); ``no_match`` otherwise.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from citywok.result import Status
from citywok.vision.descriptor import CODE_BITS, Codes, to_grid, window_codes, window_texture
from citywok.vision.frames import Frames
from citywok.vision.params import FrameParams, SearchParams
from citywok.vision.store import FrameIndex

#: A box at least this wide for its height is taken as the episode's whole 16:9 picture.
FULL_FRAME_ASPECT = 1.45


@dataclass(frozen=True)
class Box:
    """A region of the query's frames, in their pixels, right and bottom exclusive."""

    x0: int
    y0: int
    x1: int
    y1: int
    #: ``frame`` (the whole frame), ``bars`` (flat bars cut off), ``moving`` (the region
    #: that moves over a still one: picture-in-picture).
    kind: str

    @property
    def aspect(self) -> float:
        return (self.x1 - self.x0) / max(1, self.y1 - self.y0)


@dataclass(frozen=True)
class QueryCodes:
    codes: Codes  # uint8[m, 8]
    frame: npt.NDArray[np.int64]  # which query frame
    view: npt.NDArray[np.int64]  # 2 * box position + mirrored
    offset: npt.NDArray[np.int64]  # window's offset on the grid, pixels
    aligned: npt.NDArray[np.bool_]  # a whole-frame box: only its own strip may answer
    boxes: tuple[Box, ...]


@dataclass(frozen=True)
class Place:
    """Where the pictures fit: an episode and the time the query starts in it."""

    episode: str
    start_s: float
    score: float
    speed: float
    mirrored: bool
    box: Box
    #: Left edge of the query's view in the episode's frame, as a share of its width.
    crop_x: float


@dataclass(frozen=True)
class PictureAnswer:
    status: Status
    place: Place | None
    #: The best place of each episode that scored, best first (several when ambiguous).
    candidates: tuple[Place, ...]
    frames: int
    elapsed_ms: float
    #: The query was one picture (a screenshot, a one-frame video).
    still: bool = False


def _flat_edges(profile: npt.NDArray[np.float32], limit: float) -> tuple[int, int]:
    """First and one-past-last position whose value is above ``limit``, from both ends."""
    busy = np.nonzero(profile > limit)[0]
    if busy.size == 0:
        return 0, len(profile)
    return int(busy[0]), int(busy[-1]) + 1


def edge_box(frame: npt.NDArray[np.float32], *, min_share: float = 0.35,
             max_share: float = 0.7, min_contrast: float = 3.0) -> tuple[int, int, int, int] | None:
    """The 16:9 rectangle, ``min_share``-``max_share`` of the frame's width, whose four
    sides are the strongest straight edges (a picture pasted over another), or None.

    Every rectangle is scored by the mean gradient along its weakest side (summed-area
    tables make each one O(1)); it is kept when that is ``min_contrast`` times the
    frame's mean gradient. Works on half-size frames; returns (x0, y0, x1, y1).
    """
    h, w = frame.shape
    g = frame[: h // 2 * 2, : w // 2 * 2].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    gh, gw = g.shape
    gx = np.abs(np.diff(g, axis=1))  # edge between columns x and x + 1
    gy = np.abs(np.diff(g, axis=0))  # edge between rows y and y + 1
    cx = np.vstack([np.zeros((1, gw - 1)), np.cumsum(gx, axis=0)])  # [y, x]: rows < y
    cy = np.hstack([np.zeros((gh - 1, 1)), np.cumsum(gy, axis=1)])  # [y, x]: cols < x
    level = float(gx.mean() + gy.mean()) / 2 + 1e-3
    best, best_score = None, min_contrast * level
    for bw in range(max(8, int(gw * min_share)), int(gw * max_share) + 1):
        bh = round(bw * 9 / 16)
        if bh + 2 > gh or bw + 2 > gw:
            break
        x0 = np.arange(1, gw - bw)[None, :]
        y0 = np.arange(1, gh - bh)[:, None]
        x1, y1 = x0 + bw, y0 + bh  # exclusive
        left = (cx[y1, x0 - 1] - cx[y0, x0 - 1]) / bh
        right = (cx[y1, x1 - 1] - cx[y0, x1 - 1]) / bh
        top = (cy[y0 - 1, x1] - cy[y0 - 1, x0]) / bw
        bottom = (cy[y1 - 1, x1] - cy[y1 - 1, x0]) / bw
        score = np.minimum(np.minimum(left, right), np.minimum(top, bottom))
        j = np.unravel_index(int(np.argmax(score)), score.shape)
        if score[j] > best_score:
            best_score = float(score[j])
            bx, by = int(x0[0, j[1]]), int(y0[j[0], 0])
            best = (2 * bx, 2 * by, 2 * (bx + bw), 2 * (by + bh))
    return best


def content_boxes(pixels: npt.NDArray[np.uint8], *, flat_std: float = 6.0,
                  moving_std: float = 10.0) -> list[Box]:
    """Where the episode may be in query frames ``uint8[n, h, w]`` (see module doc)."""
    f = pixels.astype(np.float32)
    n, h, w = f.shape
    # Bars: rows (columns) flat across the frame in every frame, from the edges inward.
    row_busy = f.std(axis=2).max(axis=0)
    col_busy = f.std(axis=1).max(axis=0)
    y0, y1 = _flat_edges(row_busy, flat_std)
    x0, x1 = _flat_edges(col_busy, flat_std)
    if y1 - y0 < h // 8 or x1 - x0 < w // 8:
        y0, y1, x0, x1 = 0, h, 0, w
    # The whole frame is always a candidate: a flat sky or wall at an edge looks like a bar.
    boxes = [Box(0, 0, w, h, "frame")]
    if max(y0, x0, h - y1, w - x1) >= 3:
        boxes.append(Box(x0, y0, x1, y1, "bars"))
    if n >= 3:
        from scipy import ndimage  # here: an audio-only identify never loads it (0.18 s)

        std = f[:, y0:y1, x0:x1].std(axis=0)
        mask = ndimage.binary_opening(std > moving_std, structure=np.ones((3, 3), bool))
        labels, count = ndimage.label(mask)
        if count:
            sizes = np.bincount(labels.ravel())[1:]
            best = int(np.argmax(sizes)) + 1
            sl = ndimage.find_objects(labels)[best - 1]
            by0, by1, bx0, bx1 = sl[0].start, sl[0].stop, sl[1].start, sl[1].stop
            area = (by1 - by0) * (bx1 - bx0)
            whole = (y1 - y0) * (x1 - x0)
            aspect = (bx1 - bx0) / max(1, by1 - by0)
            if (0.08 * whole <= area <= 0.8 * whole and sizes[best - 1] >= 0.5 * area
                    and min(by1 - by0, bx1 - bx0) >= 16
                    and (1.3 <= aspect <= 2.3 or 0.45 <= aspect <= 0.7)):
                boxes.append(Box(x0 + bx0, y0 + by0, x0 + bx1, y0 + by1, "moving"))
    edges = edge_box(f.mean(axis=0))
    if edges is not None:
        boxes.append(Box(*edges, "edges"))
    return boxes


def query_codes(frames: Frames, *, params: FrameParams, min_texture: float = 0.0) -> QueryCodes:
    """Codes of every box (and its mirror image) of every frame; see the module doc.

    Windows flatter than ``min_texture`` (grey-level standard deviation) are left out."""
    boxes = content_boxes(frames.pixels)
    gh, sw = params.grid_height_px, params.strip_width_px
    parts: list[tuple[Codes, npt.NDArray[np.bool_], int, npt.NDArray[np.int64], bool]] = []
    for b, box in enumerate(boxes):
        crop = frames.pixels[:, box.y0:box.y1, box.x0:box.x1]
        if box.aspect >= FULL_FRAME_ASPECT:
            width = params.grid_width_px
            offsets = np.arange(params.n_strips, dtype=np.int64) * params.strip_step_px
            aligned = True
        else:
            width = max(sw, round(gh * box.aspect))
            offsets = np.arange(width - sw + 1, dtype=np.int64)
            aligned = False
        grid = to_grid(crop, height_px=gh, width_px=width)
        for mirrored in (False, True):
            g = np.ascontiguousarray(grid[:, :, ::-1] if mirrored else grid)
            textured = window_texture(g, offsets, width_px=sw) >= min_texture
            codes_ = window_codes(g, offsets, width_px=sw, rows_px=params.code_rows_px)
            parts.append((codes_, textured,
                          2 * b + int(mirrored), offsets, aligned))
    codes, frame, view, offset, aligned_l = [], [], [], [], []
    for c, ok, v, offs, al in parts:
        n, m, _ = c.shape
        keep = ok.reshape(-1)
        codes.append(c.reshape(n * m, -1)[keep])
        frame.append(np.repeat(np.arange(n), m)[keep])
        view.append(np.full(n * m, v)[keep])
        offset.append(np.tile(offs, n)[keep])
        aligned_l.append(np.full(n * m, al)[keep])
    return QueryCodes(np.concatenate(codes), np.concatenate(frame), np.concatenate(view),
                      np.concatenate(offset), np.concatenate(aligned_l), tuple(boxes))


class FrameSearcher:
    """A frame index held in FAISS's exact binary index, ready for range searches."""

    def __init__(self, index: FrameIndex) -> None:
        self.index = index
        self.strips = index.params.n_strips
        import faiss  # here: an audio-only identify never loads it

        self.faiss = faiss.IndexBinaryFlat(CODE_BITS)
        if len(index.codes):
            self.faiss.add(np.ascontiguousarray(index.codes).reshape(-1, CODE_BITS // 8))

    def meetings(self, codes: Codes, *, radius_bits: int
                 ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int32]]:
        """(query row, index row, distance) of every pair within ``radius_bits``."""
        if self.faiss.ntotal == 0 or len(codes) == 0:
            empty = np.zeros(0, np.int64)
            return empty, empty, np.zeros(0, np.int32)
        lims, dist, rows = self.faiss.range_search(np.ascontiguousarray(codes), radius_bits + 1)
        q = np.repeat(np.arange(len(codes)), np.diff(lims).astype(np.int64))
        return q.astype(np.int64), rows.astype(np.int64), dist.astype(np.int32)


@dataclass(frozen=True)
class _Votes:
    key: npt.NDArray[np.int64]
    score: npt.NDArray[np.float64]


def vote(searcher: FrameSearcher, query: QueryCodes, times_s: npt.NDArray[np.float64], *,
         still: bool, params: SearchParams, top: int = 30) -> list[Place]:
    """Distinct places the meetings voted for, best first: one per episode and stretch of
    ``params.distinct_s`` (the ``top`` best keys of each speed and binning are read)."""
    idx = searcher.index
    fp = idx.params
    qrow, irow, _ = searcher.meetings(query.codes, radius_bits=params.radius_bits)
    busy = np.bincount(qrow, minlength=len(query.codes)) > params.max_meetings_per_code
    qrow, irow = qrow[~busy[qrow]], irow[~busy[qrow]]
    frame_row, strip = irow // searcher.strips, irow % searcher.strips
    x0 = strip * fp.strip_step_px - query.offset[qrow]
    ok = ~query.aligned[qrow] | (x0 == 0)
    qrow, frame_row, strip, x0 = qrow[ok], frame_row[ok], strip[ok], x0[ok]
    if qrow.size == 0:
        return []
    episode = idx.episode[frame_row].astype(np.int64)
    t_idx = idx.times_s[frame_row].astype(np.float64)
    qf = query.frame[qrow]
    t_q = times_s[qf]
    view = query.view[qrow]
    pair = qf * searcher.strips + strip
    xq = np.floor_divide(x0 + 2, 4)  # crop position in 4-pixel steps of the grid
    speeds = (1.0,) if still else params.speeds
    found: list[Place] = []
    for speed in speeds:
        start = t_idx - speed * t_q
        for shift in (0.0, 0.5):
            b = np.floor(start / (2 * params.bin_s) + shift).astype(np.int64)
            key = ((((episode * 64 + view) * 256 + (xq + 128)) << 32) + (b + 2**30))
            combo = np.unique(np.stack([key, pair]), axis=1)
            keys, counts = np.unique(combo[0], return_counts=True)
            for j in np.argsort(-counts)[:top]:
                sel = key == keys[j]
                v = int(view[sel][0])
                found.append(Place(
                    episode=idx.episodes[int(episode[sel][0])],
                    start_s=float(np.median(start[sel])), score=float(counts[j]), speed=speed,
                    mirrored=bool(v % 2), box=query.boxes[v // 2],
                    crop_x=float(np.median(x0[sel])) / fp.grid_width_px))
    # One place per episode and stretch of time: the best view, speed and crop of each.
    places: list[Place] = []
    for p in sorted(found, key=lambda p: -p.score):
        if not any(q.episode == p.episode and abs(q.start_s - p.start_s) <= params.distinct_s
                   for q in places):
            places.append(p)
    return places


def threshold(place: Place, *, still: bool, params: SearchParams) -> float:
    """The score ``place`` needs to answer: a screenshot's, a whole frame's or a crop's."""
    return (params.min_score_still if still else params.min_score_clip_full
            if place.box.aspect >= FULL_FRAME_ASPECT else params.min_score_clip)


def decide(places: list[Place], *, still: bool,
           params: SearchParams) -> tuple[Status, Place | None]:
    """``match`` above the threshold, ``ambiguous`` with a near rival, else ``no_match``."""
    if not places:
        return Status.NO_MATCH, None
    best = places[0]
    need = threshold(best, still=still, params=params)
    if best.score < need:
        return Status.NO_MATCH, None
    rivals = [p for p in places[1:] if p.score >= params.ambiguous_ratio * best.score]
    if rivals:
        return Status.AMBIGUOUS, best
    return Status.MATCH, best


def identify_frames(searcher: FrameSearcher, frames: Frames, *,
                    params: SearchParams = SearchParams()) -> PictureAnswer:
    """Name the episode and time of ``frames`` (a clip's, or one screenshot)."""
    t0 = time.perf_counter()
    query = query_codes(frames, params=searcher.index.params, min_texture=params.min_texture)
    places = vote(searcher, query, frames.times_s, still=frames.still, params=params)
    status, best = decide(places, still=frames.still, params=params)
    return PictureAnswer(status, best, tuple(places[:5]), len(frames),
                         (time.perf_counter() - t0) * 1000, still=frames.still)
