"""The report: ``report.md`` (every table) and ``report.json`` (every figure), plus
``reliability.json`` for the confidence mapping."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

#: (what, distortion rows, clip length, least share of hits): the issue's targets.
#: Additive rows are the in-band ones: the SNR the engine faces.
_5S_TOP = ("clean", "mp3_32k", "opus_16k", "white_10db_band")
_HARD = ("white_0db_band", "pink_0db_band", "music_0db_band", "voice_0db_band", "reverb",
         "phone", "speed_0.75", "speed_0.8", "speed_0.9", "speed_1.1", "speed_1.2",
         "speed_1.3", "tempo_0.8", "tempo_0.9", "tempo_1.1", "tempo_1.25", "pitch_-3",
         "pitch_+3", "speed_1.2+music_10db+aac_64k")
TARGETS: tuple[tuple[str, Sequence[str], str, float], ...] = (
    ("5 s, clean / MP3 32k / Opus 16k / noise 10 dB", _5S_TOP, "5s", 0.99),
    ("5 s, noise/music/voice 0 dB, reverb, phone, speed, tempo, pitch, combination",
     _HARD, "5s", 0.95),
    ("3 s, every one of those rows", _5S_TOP + _HARD, "3s", 0.90),
)
_NOISE_0DB = ("white_0db_band", "pink_0db_band")
_SONG = ("speed_1.25+music_0db_band+aac_48k_mp4",)
_REACTION = ("reaction_voice_0db+music_6db_band",)
#: Issue 15 (engine v3): a phone in a room, loud songs, 2 s clips.
TARGETS_V3: tuple[tuple[str, Sequence[str], str, float], ...] = (
    ("room near, 5 s", ("room_near",), "5s", 0.95),
    ("room near, 3 s", ("room_near",), "3s", 0.90),
    ("room far, 5 s", ("room_far",), "5s", 0.80),
    ("room far, 3 s", ("room_far",), "3s", 0.70),
    ("noise 0 dB in band, 5 s", _NOISE_0DB, "5s", 0.90),
    ("noise 0 dB in band, 3 s", _NOISE_0DB, "3s", 0.80),
    ("1.25x under a song at 0 dB, AAC 48k MP4, 5 s", _SONG, "5s", 0.95),
    ("1.25x under a song at 0 dB, AAC 48k MP4, 3 s", _SONG, "3s", 0.90),
    ("reaction (voice 0 dB, music 6 dB below), 5 s", _REACTION, "5s", 0.95),
    ("reaction (voice 0 dB, music 6 dB below), 3 s", _REACTION, "3s", 0.90),
    ("2 s, clean, codecs, speed", ("clean", "mp3_32k", "opus_16k", "aac_64k", "phone",
                                   "speed_0.75", "speed_0.8", "speed_0.9", "speed_1.1",
                                   "speed_1.2", "speed_1.3"), "2s", 0.95),
    ("2 s, music 6 dB below, voice-over", ("music_6db_band", "voice_0db_band"), "2s", 0.90),
)


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


def ms(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1f}"


def columns(tables: Iterable[dict[str, Any]]) -> list[str]:
    """The length keys (``"2s"`` ...) present in any of ``tables``, shortest first."""
    keys = {k for t in tables for k in t}
    return sorted(keys, key=lambda k: float(k.rstrip("s")))


def hits_md(r: dict[str, Any]) -> list[str]:
    hits = r.get("hits", {})
    if not hits:
        return []
    cols = columns(hits.values())
    head = "| distortion | " + " | ".join(f"{k[:-1]} s" for k in cols)
    rule = "|---|" + "---:|" * len(cols)
    lines = ["## Hits", "", head + " | wrong answers |", rule + "---:|"]
    for name, row in hits.items():
        cells = [pct(row[k]["share"]) if k in row else "" for k in cols]
        wrong = sum(c["wrong_answers"] for c in row.values())
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {wrong or ''} |")
    n = ", ".join(f"{max(row[k]['clips'] for row in hits.values() if k in row)} at {k[:-1]} s"
                  for k in cols)
    total = {o: sum(c.get(o, 0) for row in hits.values() for c in row.values())
             for o in ("clips", "hits", "no_match", "ambiguous", "wrong_episode",
                       "wrong_place", "wrong_same_recording")}
    tail = r.get("from_tail", 1.0)
    where = (f"in the last {tail:.0%} of each episode (the part the learned front end never "
             "trained on), " if tail < 1.0 else "")
    lines += ["", f"Clips a cell: {n}, cut at random places {where}outside shared material (the "
              "same places for every distortion). A hit is a `match` naming the right "
              "episode with the clip's start within ±1 s. Every other clip is a miss "
              "(`no_match`, or `ambiguous`) or a **wrong answer** (a `match` naming another "
              "episode, or this one more than 1 s from the start). In all: "
              f"{total['hits']} hits of {total['clips']} clips; misses: {total['no_match']} "
              f"`no_match`, {total['ambiguous']} `ambiguous`; **wrong answers: "
              f"{total['wrong_episode'] + total['wrong_place']}** ({total['wrong_episode']} "
              f"wrong episode, {total['wrong_place']} wrong place; "
              f"{total['wrong_same_recording']} of them name a place that holds the same "
              "recording as the clip, a repeat the corpus's manifest does not declare, listed "
              "in `report.json` under `wrong_answers`). "
              "`_full16k`: SNR over 0-8 kHz at 16 kHz, mixed before resampling (the old "
              "rows); `_band` and the rows of issue 15 (rooms, stacked edits): SNR inside the "
              "analysed band at 8 kHz (see the SNR table).", "",
              "### Misses and wrong answers", "",
              "Per cell: `no_match` / `ambiguous` / wrong answers (wrong episode + wrong "
              "place); rows where every clip was a hit are left out.", "",
              head + " |", rule]

    def cell(c: dict[str, Any]) -> str:
        wrong = (f"**{c['wrong_answers']}** ({c['wrong_episode']}+{c['wrong_place']})"
                 if c["wrong_answers"] else "0")
        return f"{c['no_match']} / {c['ambiguous']} / {wrong}"

    for name, row in hits.items():
        if any(c["hits"] < c["clips"] for c in row.values()):
            lines.append(f"| {name} | " + " | ".join(cell(row[k]) if k in row else ""
                                                      for k in cols) + " |")
    wrong = r.get("wrong_answers", [])
    if wrong:
        lines += ["", "Every wrong answer (same recording: the clean clip's waveform is found "
                  "at the place named, two 0.5 s windows at one alignment or one at ≥ 0.95):",
                  "", "| row | length | clip | named | score | same recording (correlation) |",
                  "|---|---|---|---|---:|---|"]
        for w in wrong:
            lines.append(f"| {w['distortion']} | {w['length_s']:g} s | {w['source']} at "
                         f"{w['start_s']:.1f} s | {w['episode_file']} at {w['offset_s']:.1f} s | "
                         f"{w['score']} | {w['identical_audio']} ({w['correlation']}) |")
    lines.append("")
    return lines


def target_lines(hits: dict[str, Any],
                 targets: Sequence[tuple[str, Sequence[str], str, float]]) -> list[str]:
    lines = []
    for what, rows, length, least in targets:
        got = [(name, hits[name][length]["share"]) for name in rows
               if name in hits and length in hits[name]]
        if not got:
            continue
        worst = min(got, key=lambda g: g[1] if g[1] is not None else 0.0)
        misses = [f"{n} {pct(s)}" for n, s in got if s is None or s < least]
        lines.append(f"| {what}: ≥ {100 * least:.0f}% | lowest {worst[0]} {pct(worst[1])}"
                     + (f"; below: {', '.join(misses)}" if misses else "") + " | "
                     + ("yes" if not misses else "no") + " |")
    return lines


def targets_md(r: dict[str, Any]) -> list[str]:
    hits = r.get("hits", {})
    lines = ["## Against the targets", "", "| target | measured | met |", "|---|---|---|"]
    lines += target_lines(hits, TARGETS)
    o = r.get("outside", {})
    if o:
        held = o["held_out"]
        total = held["clips"] + o["calibration"]["clips"]
        fh = held["false_hits"] + held["identical_audio"]
        lines.append(f"| 0 false hits in ≥ 1,000 outside clips | held out: {fh} answered of "
                     f"{held['clips']} ({held['identical_audio']} of them identical audio); "
                     f"{total} clips in all | "
                     + ("yes" if fh == 0 and held["clips"] >= 1000 else "no") + " |")
    sh = r.get("shared", {}).get("total", {})
    for length in ("3s", "5s"):
        if length in sh:
            s = sh[length]
            ok = (s["ambiguous_share"] or 0) >= 0.95 and s["single_confident"] == 0
            lines.append(f"| shared material {length}: ≥ 95% ambiguous, 0 single confident | "
                         f"{pct(s['ambiguous_share'])} of {s['clips']}, "
                         f"{s['single_confident']} single | {'yes' if ok else 'no'} |")
    lat = r.get("latency", {})
    ratio = lat.get("no_match_over_match_p50_5s")
    if ratio is not None:
        lines.append(f"| a clip matching nothing costs ≤ 2x one that matches (p50, 5 s) | "
                     f"{ratio:.2f}x | {'yes' if ratio <= 2 else 'no'} |")
    f = lat.get("file_to_answer", {}).get("library", {})
    if f.get("p50_ms") is not None:
        lines.append(f"| file to answer, 5 s MP3, p50 ≤ 60 ms | {ms(f['p50_ms'])} ms | "
                     f"{'yes' if f['p50_ms'] <= 60 else 'no'} |")
    i = r.get("ingest")
    if i:
        lines.append(f"| ingest ≤ 1.3x ffmpeg decode | {i['ingest_over_ffmpeg']:.2f}x | "
                     f"{'yes' if i['ingest_over_ffmpeg'] <= 1.3 else 'no'} |")
        lines.append(f"| index ≤ 1.5 MB per hour | {i['index_mb_per_hour']:.2f} | "
                     f"{'yes' if i['index_mb_per_hour'] <= 1.5 else 'no'} |")
    lines += ["", "Scale targets: `bench/scale.py` (its own report).", ""]
    v3 = target_lines(hits, TARGETS_V3)
    if v3:
        cells = [c for row in hits.values() for c in row.values()]
        wrong = sum(c["wrong_answers"] for c in cells)
        v3.append(f"| 0 wrong answers (every cell) | {wrong} in {sum(c['clips'] for c in cells)}"
                  f" clips | {'yes' if wrong == 0 else 'no'} |")
        lines += ["### Issue 15 (engine v3)", "", "| target | measured | met |",
                  "|---|---|---|", *v3, "",
                  "The issue's targets are on its held-out recordings; these rows are the "
                  "bench's own clips made the same way.", ""]
    return lines


def snr_md(r: dict[str, Any]) -> list[str]:
    snr = r.get("snr", {})
    if not snr:
        return []
    lines = ["## SNR: over which band", "",
             "| row | added | nominal SNR | measured over "
             "| in the analysed band: mean (min..max) |",
             "|---|---|---:|---|---:|"]
    for name, s in snr.items():
        lines.append(f"| {name} | {s['kind']} | {s['nominal_db']:g} dB | {s['measured_over']} | "
                     f"{s['in_band_db_mean']:.1f} dB ({s['in_band_db_min']:.1f}.."
                     f"{s['in_band_db_max']:.1f}) |")
    lines += ["", "The last column is measured on 20 clips from the two parts of each mix "
              "(clip and addition) after resampling to 8 kHz. Rows of layers (`row: what`) set "
              "each addition against the clip as it arrives: sped up, or at the phone after "
              "the room (the talker through the room too); the phone's high-pass and codec "
              "follow. The older combination row lays its music at 10 dB over 0-8 kHz at "
              "16 kHz after speeding up; its line says what that gives in band.",
              ""]
    return lines


def outside_md(r: dict[str, Any]) -> list[str]:
    o, c = r.get("outside"), r.get("calibration")
    if not o or not c:
        return []
    th = ", ".join(f"{k} {v:.2f}" for k, v in c["thresholds"].items())
    eth = ", ".join(f"{k} {v:.2f}" for k, v in c["engine_thresholds"].items())
    best = ", ".join(f"{k} {v:.2f}" for k, v in c["best_calibration_score"].items())
    lines = [
        "## Outside audio: calibration and false hits", "",
        f"The outside files are split by file (seeded shuffle, seed {c['split_seed']}, each "
        f"kind on both sides): calibration {', '.join(c['calibration_files'])}; held out "
        f"{', '.join(c['held_out_files'])}. Clips are 3/5/10 s in turn, each through one of "
        "clean, MP3 32k, Opus 16k, AAC 64k, -20 dB, phone band in turn.", "",
        f"Threshold: the best candidate's score on every calibration clip, with the threshold "
        f"out of the way (`{c['threshold_field']}` = -1e9), gives the best score per length "
        f"({best}); each length needs (1 + {c['margin']:g}) x that. The smallest "
        f"`{c['threshold_field']}` meeting all lengths is **{c['calibrated_value']:g}** "
        f"(engine default {c['engine_value']:g}). Used for every other clip in this report: "
        f"**{c['used']}** ({c['threshold_field']} = {c['used_value']:g}; needed score {th}; "
        f"engine default would need {eth}).", "",
        "The calibration clips with the highest raw scores (correlation: of the clip's "
        "waveform with the place they would name; ≥ 0.95 is the same recording):", "",
        "| clip | variant | would name | raw score | correlation |", "|---|---|---|---:|---:|",
        *[f"| {t['source']} {t['start_s']:.1f} s +{t['length_s']:g} s | {t['distortion']} | "
          f"{t['named']} at {t['at_s']:.1f} s | {t['score']} | {t['correlation']} |"
          for t in c.get("top_calibration_clips", [])], "",
        "| part | clips | `no_match` | answered, other audio (false hits) | answered, "
        "identical audio | answered at the engine's default threshold |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for part in ("calibration", "held_out"):
        p = o[part]
        lines.append(f"| {part.replace('_', ' ')} | {p['clips']} | {p['no_match']} | "
                     f"**{p['false_hits']}** | {p['identical_audio']} | "
                     f"{p.get('answered_at_engine_threshold', 'n/a')} |")
    lines += ["", "| part | length | clips | false hits | identical audio | best raw score "
              "| needed |", "|---|---|---:|---:|---:|---:|---:|"]
    for part in ("calibration", "held_out"):
        for length, b in o[part]["by_length"].items():
            lines.append(f"| {part.replace('_', ' ')} | {length} | {b['clips']} | "
                         f"{b['false_hits']} | {b['identical_audio']} | "
                         f"{ms(b['max_raw_score'])} | {ms(b['threshold'])} |")
    answered = [a for part in ("calibration", "held_out") for a in o[part]["answered"]]
    lines.append("")
    if answered:
        lines += ["Every answer on outside audio (identical audio: a 0.5 s window of the clip "
                  "correlates ≥ 0.95 with the place named; they stay in the clip count):", "",
                  "| clip | variant | named | score | correlation | identical audio |",
                  "|---|---|---|---:|---:|---|"]
        for a in answered:
            lines.append(f"| {a['source']} {a['start_s']} s +{a['length_s']:g} s | "
                         f"{a['variant']} | {a['named']} at {ms(a['at_s'])} s | {a['score']} | "
                         f"{a['correlation']} | {a['identical_audio']} |")
    else:
        lines.append("No outside clip was answered.")
    lines.append("")
    return lines


def shared_md(r: dict[str, Any]) -> list[str]:
    s = r.get("shared")
    if not s or not s["by_material"]:
        return []
    lines = ["## Shared material", "",
             "| material | length | clips | `ambiguous` | every holder listed | single "
             "confident | `no_match` |", "|---|---|---:|---:|---:|---:|---:|"]
    for name, by_len in s["by_material"].items():
        for length, c in by_len.items():
            lines.append(f"| {name} | {length} | {c['clips']} | {c['ambiguous']} | "
                         f"{c['all_holders_listed']} | {c['single_confident']} | "
                         f"{c['no_match']} |")
    for length, c in s["total"].items():
        lines.append(f"| **all** | {length} | {c['clips']} | {c['ambiguous']} "
                     f"({pct(c['ambiguous_share'])}) | {c['all_holders_listed']} | "
                     f"**{c['single_confident']}** | |")
    lines += ["", "Each clip is cut from one copy (one episode's file) and lies wholly inside "
              "the material; \"every holder listed\": every episode holding it is among the "
              "candidates. Clips below -50 dBFS are skipped "
              f"({r.get('shared_skipped', {}).get('silent_skipped', 0)})."]
    for length, c in s["straddling"].items():
        lines.append(f"Half shared, half the episode's own ({length}): {c['named_episode']} of "
                     f"{c['clips']} name the episode (`match`, start within 1 s), "
                     f"{c['ambiguous']} `ambiguous`.")
    lines.append("")
    return lines


def reliability_md(r: dict[str, Any]) -> list[str]:
    rel = r.get("reliability")
    if not rel:
        return []

    def cell(b: dict[str, Any]) -> str:
        return f"{b['right']}/{b['answered']} ({pct(b['share_right'])})" if b["answered"] else ""

    def table(sec: dict[str, Any]) -> list[str]:
        cols = columns([sec["by_length"]])
        lines = ["| score | " + " | ".join(f"{k[:-1]} s" for k in cols)
                 + " | all | of which outside |", "|---|" + "---:|" * (len(cols) + 2)]
        for i, b in enumerate(sec["all"]):
            label = f"{b['lo']:g} to {b['hi']:g}" if b["hi"] is not None else f"≥ {b['lo']:g}"
            row = [cell(sec["by_length"][k][i]) for k in cols]
            if b["answered"]:
                lines.append(f"| {label} | " + " | ".join(row) + f" | {cell(b)} | "
                             f"{b['outside']} |")
        return lines

    none = rel["raw"]["no_candidate"]
    return ["## Reliability by score", "",
            "Right / clips per bin of the best candidate's score (right: the right episode "
            "and start within 1 s; outside clips are always wrong). With the threshold out "
            "of the way (every library clip under every distortion, every outside clip):", "",
            *table(rel["raw"]), "",
            f"No candidate at all: {none['library']} library clips, {none['outside']} "
            "outside clips. The answers actually given at the threshold used:", "",
            *table(rel["answered"]), "",
            "Confidence mapping (`MatchParams.reliability`: score, share right; bins of 5 "
            "clips or more, pooled where a higher score was less often right): "
            + ", ".join(f"({x:g}, {y:.3f})" for x, y in rel["raw"].get("mapping", [])), ""]


def latency_md(r: dict[str, Any]) -> list[str]:
    lat = r.get("latency")
    if not lat:
        return []
    lines = ["## Latency", "",
             "Every identification is timed (decoded clip → answer, this process pinned to one "
             "core, single-threaded BLAS/FFT).", "",
             "| group | n (5 s) | p50 ms | p99 ms | n (all lengths) | p50 ms | p99 ms |",
             "|---|---:|---:|---:|---:|---:|---:|"]

    def row(label: str, g: dict[str, Any]) -> str:
        a, b = g["5s"], g["all"]
        return (f"| {label} | {a['n']} | {ms(a['p50_ms'])} | {ms(a['p99_ms'])} | {b['n']} | "
                f"{ms(b['p50_ms'])} | {ms(b['p99_ms'])} |")

    for g, v in lat["by_group"].items():
        lines.append(row(g, v))
    for s, v in lat["by_status"].items():
        lines.append(row(f"answered `{s}`", v))
    lines.append(row("**every decoded clip**", lat["every_decoded_clip"]))
    lines += ["", "| file to answer (5 s MP3 64k, decode included, not pinned) | n | p50 ms | "
              "p99 ms |", "|---|---:|---:|---:|"]
    for part, s in lat["file_to_answer"].items():
        lines.append(f"| cut from {part} | {s['n']} | {ms(s['p50_ms'])} | {ms(s['p99_ms'])} |")
    ratio = lat.get("no_match_over_match_p50_5s")
    if ratio is not None:
        lines.append(f"\n`no_match` answers over `match` answers, p50 at 5 s: {ratio:.2f}x.")
    lines.append("")
    return lines


def ingest_md(r: dict[str, Any]) -> list[str]:
    lines = []
    if "ingest" in r:
        i = r["ingest"]
        lines += ["## Ingest and index", "",
                  f"- Ingest of {i['audio_h']:.2f} h: {i['ingest_s']:.1f} s "
                  f"({i['ingest_x_realtime']:.0f}x real time, "
                  f"{i['ingest_x_realtime_per_core']:.0f}x per core) vs ffmpeg decode alone "
                  f"{i['ffmpeg_decode_s']:.1f} s ({i['ffmpeg_x_realtime']:.0f}x): ratio "
                  f"**{i['ingest_over_ffmpeg']:.2f}**.",
                  f"- Index: {i['index_bytes'] / 1e6:.2f} MB, "
                  f"**{i['index_mb_per_hour']:.2f} MB per hour** ({i['peaks']} peaks, "
                  f"{i['hashes']} hashes)."]
    if "fingerprint" in r:
        lines.append(f"- Fingerprinting decoded audio (the ingest job on 8 kHz WAV): "
                     f"{r['fingerprint']['fingerprint_x_realtime_per_core']:.0f}x real time "
                     "per core.")
    if "peak_rss_mb" in r:
        lines.append(f"- Peak RSS of the bench process: {r['peak_rss_mb']:.0f} MB.")
    return [*lines, ""] if lines else []


def markdown(r: dict[str, Any]) -> str:
    head = (f"Measured {r['date']} on {r['machine']}; engine `{r['engine']}`; the run took "
            f"{r.get('wall_s', 0) / 60:.1f} min (seed {r['seed']}).")
    parts = [head, ""]
    for section in (hits_md, targets_md, snr_md, outside_md, shared_md, reliability_md,
                    latency_md, ingest_md):
        parts += section(r)
    return "\n".join(parts)


def write_report(r: dict[str, Any], out: Path) -> str:
    text = markdown(r)
    (out / "report.json").write_text(json.dumps(r, indent=1))
    (out / "report.md").write_text(text)
    if "reliability" in r:
        (out / "reliability.json").write_text(json.dumps(r["reliability"], indent=1))
    return text
