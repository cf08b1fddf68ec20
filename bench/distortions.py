"""What a re-upload does to a clip: codecs, noise, overlays, reverb, speed, tempo, pitch.

Every distortion takes a clip at 16 kHz and returns what the engine is given: 8 kHz.

Signal-to-noise ratios are stated with the band they are measured over (:class:`Mix`):

* ``full16k``: both powers over the whole 0-8 kHz band at 16 kHz, mixed there, then
  resampled (the bench's first rows). White noise puts half its power above 4 kHz,
  where resampling drops it and the engine never looks, so "0 dB" is several dB easier
  in the analysed band (the report measures by how much).
* ``band``: the clip is first brought to 8 kHz, the noise or overlay made at 8 kHz, and
  both powers are measured inside the analysed band (150-3400 Hz by default) before
  mixing: the SNR the engine actually faces.

The rows of issue 15 (rooms, the stacked edits, ``music_6db_band``) set every SNR inside
the analysed band too. Those that lay more than one thing over the clip, or lay it in a
room, say what they lay as :class:`Layers` (the clip as it arrives, each addition scaled
to its in-band SNR against it), and what follows the mix (a microphone, a codec) apart:
the report measures each addition's in-band SNR on the layers.

Every row draws from its own generator (``bench.run`` seeds one per cell from the row's
name), so adding a row changes no other row's clips.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import butter, fftconvolve, sosfilt

from bench.corpus import SR, SR_IN, Audio, to_8k
from bench.rooms import RoomSpec, simulate

Transform = Callable[[Audio, np.random.Generator], Audio]

MP3_32K = ("-c:a", "libmp3lame", "-b:a", "32k")
OPUS_16K = ("-c:a", "libopus", "-b:a", "16k")
AAC_64K = ("-c:a", "aac", "-b:a", "64k")
AAC_48K = ("-c:a", "aac", "-b:a", "48k")
#: What the page's Listen button records (MediaRecorder, WebM Opus at 32 kb/s).
OPUS_32K = ("-c:a", "libopus", "-b:a", "32k")
PHONE = ("highpass=f=300:poles=2,highpass=f=300:poles=2,lowpass=f=3400:poles=2,"
         "lowpass=f=3400:poles=2")


def ffmpeg(x: Audio, filt: str | None = None, *, codec: Sequence[str] = (),
           fmt: str = "wav", rate_in: int = SR_IN, rate_out: int = SR) -> Audio:
    """Run ``x`` through an ffmpeg filter and/or a lossy codec (encode, then decode)."""
    base = ["ffmpeg", "-nostdin", "-v", "error", "-f", "f32le", "-ar", str(rate_in), "-ac",
            "1", "-i", "pipe:0", *(["-af", filt] if filt else [])]
    data = x.astype(np.float32).tobytes()
    if codec:
        enc = subprocess.run([*base, *codec, "-f", fmt, "pipe:1"], input=data,
                             capture_output=True, check=True)
        data = enc.stdout
        base = ["ffmpeg", "-nostdin", "-v", "error", "-i", "pipe:0", "-ac", "1"]
    out = subprocess.run([*base, "-ar", str(rate_out), "-f", "f32le", "pipe:1"], input=data,
                         capture_output=True, check=True)
    return np.frombuffer(out.stdout, np.float32).copy()


def through_file(x: Audio, *, codec: Sequence[str], suffix: str, rate_in: int = SR_IN,
                 rate_out: int = SR) -> Audio:
    """Encode ``x`` into a file of a container (``.mp4``, ``.webm``: muxers that want a
    seekable output, as a phone or a browser writes them), then decode that file."""
    with tempfile.TemporaryDirectory(prefix="citywok-bench-") as tmp:
        path = Path(tmp) / f"clip{suffix}"
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "f32le", "-ar", str(rate_in),
                        "-ac", "1", "-i", "pipe:0", *codec, str(path)],
                       input=x.astype(np.float32).tobytes(), capture_output=True, check=True)
        out = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-ac", "1",
                              "-ar", str(rate_out), "-f", "f32le", "pipe:1"],
                             capture_output=True, check=True)
    return np.frombuffer(out.stdout, np.float32).copy()


def codec(args: Sequence[str], fmt: str) -> Transform:
    return lambda x, r: ffmpeg(x, codec=args, fmt=fmt)


def band_power(x: Audio, *, rate_hz: int, band_hz: tuple[float, float]) -> float:
    """Mean power of ``x`` inside ``band_hz`` (Parseval over the FFT bins in the band)."""
    spec = np.fft.rfft(x.astype(np.float64))
    f = np.fft.rfftfreq(len(x), 1.0 / rate_hz)
    sel = (f >= band_hz[0]) & (f <= band_hz[1])
    return float(2.0 * np.sum(np.abs(spec[sel]) ** 2) / len(x) ** 2) + 1e-20


def at_snr(signal: Audio, other: Audio, snr_db: float, *, rate_hz: int,
           band_hz: tuple[float, float]) -> Audio:
    """``other`` scaled so that ``signal`` is ``snr_db`` above it inside ``band_hz``."""
    ps = band_power(signal, rate_hz=rate_hz, band_hz=band_hz)
    po = band_power(other, rate_hz=rate_hz, band_hz=band_hz)
    return np.asarray(other * np.sqrt(ps / po / 10 ** (snr_db / 10)), dtype=np.float32)


def in_band_snr(signal: Audio, other: Audio, *, rate_hz: int,
                band_hz: tuple[float, float]) -> float:
    """How far ``signal`` is above ``other`` inside ``band_hz``, in dB."""
    return 10 * float(np.log10(band_power(signal, rate_hz=rate_hz, band_hz=band_hz)
                               / band_power(other, rate_hz=rate_hz, band_hz=band_hz)))


def white(n: int, rng: np.random.Generator) -> Audio:
    return rng.standard_normal(n).astype(np.float32)


def pink(n: int, rng: np.random.Generator) -> Audio:
    """Noise whose power falls 3 dB per octave (1/f), by shaping white noise's spectrum."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    y = np.fft.irfft(spec / np.sqrt(f), n)
    return (y / (np.std(y) + 1e-12)).astype(np.float32)


@dataclass(frozen=True)
class Mix:
    """An additive distortion: what is added, at which SNR, measured over which band."""

    #: ``white``, ``pink``, ``music`` or ``voice``.
    kind: str
    snr_db: float
    #: ``full16k`` or ``band`` (see the module docstring).
    band: str

    def describe(self, band_hz: tuple[float, float]) -> str:
        if self.band == "full16k":
            return "0-8000 Hz at 16 kHz, mixed before resampling"
        return f"{band_hz[0]:g}-{band_hz[1]:g} Hz at 8 kHz, mixed after resampling"


class Overlays:
    """Sources of music and voice to lay over clips (outside audio at 16 kHz)."""

    def __init__(self, music: list[Audio], voices: list[Audio]) -> None:
        self.pools = {"music": music, "voice": voices}

    def take(self, kind: str, n: int, rng: np.random.Generator) -> Audio:
        pool = self.pools[kind]
        src = pool[int(rng.integers(len(pool)))]
        s = int(rng.integers(0, len(src) - n))
        return src[s : s + n]


def mix_parts(x: Audio, mix: Mix, rng: np.random.Generator, overlays: Overlays,
              band_hz: tuple[float, float]) -> tuple[Audio, Audio]:
    """The clip and the scaled addition, both at 8 kHz (their sum is the distorted clip)."""
    if mix.band == "full16k":
        other = (white(len(x), rng) if mix.kind == "white" else pink(len(x), rng)
                 if mix.kind == "pink" else overlays.take(mix.kind, len(x), rng))
        px = float(np.mean(x.astype(np.float64) ** 2)) + 1e-20
        po = float(np.mean(other.astype(np.float64) ** 2)) + 1e-20
        scaled = (other * np.sqrt(px / po / 10 ** (mix.snr_db / 10))).astype(np.float32)
        return to_8k(x), to_8k(scaled)
    y = to_8k(x)
    if mix.kind in ("white", "pink"):
        other = white(len(y), rng) if mix.kind == "white" else pink(len(y), rng)
    else:
        other = to_8k(overlays.take(mix.kind, len(x), rng))[: len(y)]
    py = band_power(y, rate_hz=SR, band_hz=band_hz)
    po = band_power(other, rate_hz=SR, band_hz=band_hz)
    return y, (other * np.sqrt(py / po / 10 ** (mix.snr_db / 10))).astype(np.float32)


def in_band_snr_db(x: Audio, mix: Mix, rng: np.random.Generator, overlays: Overlays,
                   band_hz: tuple[float, float]) -> float:
    """The SNR a mix really gives inside the analysed band, measured on its two parts."""
    y, n = mix_parts(x, mix, rng, overlays, band_hz)
    return 10 * float(np.log10(band_power(y, rate_hz=SR, band_hz=band_hz)
                               / band_power(n, rate_hz=SR, band_hz=band_hz)))


@dataclass(frozen=True)
class Layers:
    """A clip as it arrives and what is laid over it, before what follows the mix."""

    rate_hz: int
    #: The clip as it arrives: sped up, or through the room from the TV to the phone.
    signal: Audio
    #: (what, the SNR asked in dB, the addition scaled to it), at ``rate_hz``.
    added: tuple[tuple[str, float, Audio], ...]
    #: Over which band the SNR was asked (:class:`Mix`): ``band`` for every row of issue
    #: 15; ``full16k`` for the older combination row, whose audit shows what it gives.
    band: str = "band"

    def mixed(self) -> Audio:
        return (self.signal + sum(a for _, _, a in self.added)).astype(np.float32)

    def snr_db(self, band_hz: tuple[float, float]) -> list[tuple[str, float, float]]:
        """(what, asked, measured) for each addition: the SNR inside ``band_hz`` at 8 kHz,
        both parts brought there as the engine is."""
        def at_8k(a: Audio) -> Audio:
            return a if self.rate_hz == SR else to_8k(a)
        sig = at_8k(self.signal)
        return [(what, asked, in_band_snr(sig, at_8k(a), rate_hz=SR, band_hz=band_hz))
                for what, asked, a in self.added]


@dataclass(frozen=True)
class Distortion:
    name: str
    #: Latency and summary group: ``clean``, ``codec``, ``noise``, ``overlay``, ``room``,
    #: ``speed``, ``tempo``, ``pitch``, ``combination``.
    group: str
    #: Clip speed relative to the episode: the clip covers ``length * speed`` of episode.
    speed: float
    apply: Transform
    mix: Mix | None = None
    #: Rows that lay things over the clip in layers (the SNR audit measures them).
    layers: Callable[[Audio, np.random.Generator], Layers] | None = None
    #: Seconds of the episode before the clip that go through the distortion first and
    #: are then cut off (a room still rings with them when the phone starts recording).
    #: Only for rows at speed 1.
    lead_in_s: float = 0.0

    def __call__(self, x: Audio, rng: np.random.Generator, before: Audio | None = None
                 ) -> Audio:
        """The distorted clip (8 kHz); ``before``: the episode's audio just before ``x``
        (16 kHz), of which the last :attr:`lead_in_s` are used (silence where short)."""
        if not self.lead_in_s:
            return self.apply(x, rng)
        n = round(self.lead_in_s * SR_IN)
        pre = np.zeros(0, np.float32) if before is None else before[-n:]
        pre = np.concatenate([np.zeros(n - len(pre), np.float32), pre])
        return self.apply(np.concatenate([pre, x]).astype(np.float32), rng)[n * SR // SR_IN :]


#: The phone's microphone and its recording app cut the rumble below this (2 poles).
PHONE_MIC_HIGHPASS_HZ = 200.0


def mic_highpass(x: Audio, *, rate_hz: int = SR_IN) -> Audio:
    """A 2-pole Butterworth high-pass at :data:`PHONE_MIC_HIGHPASS_HZ`."""
    sos = butter(2, PHONE_MIC_HIGHPASS_HZ, btype="highpass", fs=rate_hz, output="sos")
    return np.asarray(sosfilt(sos, x), dtype=np.float32)


def phone_mic(x: Audio, *, rate_hz: int = SR_IN) -> Audio:
    """What a phone records of the sound at its microphone: :func:`mic_highpass`, and its
    gain brought to -20 dBFS RMS (peaks kept below full scale)."""
    return fit_level(mic_highpass(x, rate_hz=rate_hz), rms=0.1)


def fit_level(x: Audio, *, rms: float | None = None, peak: float = 0.98) -> Audio:
    """``x`` at ``rms`` (unchanged where ``None``), scaled down where it would clip."""
    y = x.astype(np.float64)
    if rms is not None:
        y *= rms / (float(np.sqrt(np.mean(y**2))) + 1e-12)
    top = float(np.max(np.abs(y))) if len(y) else 0.0
    if top > peak:
        y *= peak / top
    return y.astype(np.float32)


#: The rooms of issue 15 (``bench/rooms.py`` draws one per clip): a phone held up to
#: the TV in a living room, and the Listen button's test room.
ROOM_NEAR = RoomSpec(rt60_s=(0.3, 0.6), distance_m=(1.0, 2.5))
ROOM_FAR = RoomSpec(rt60_s=(0.6, 1.0), distance_m=(3.0, 5.0), talker=True)
ROOM_LISTEN = RoomSpec(rt60_s=(0.5, 0.5), distance_m=(2.0, 2.0))
#: Ambient noise (pink) this far below the TV's sound at the phone, in band.
ROOM_NOISE_DB = 15.0
#: A person talking in the far room this far below the TV's sound at the phone, in band.
ROOM_TALKER_DB = 5.0
#: Seconds of the episode the room hears before the clip (its reverberation carries over).
ROOM_LEAD_IN_S = 1.0


def speed_filter(s: float) -> str:
    """Resampled speed change (pitch follows), as a player or an editor does it."""
    return f"asetrate={round(SR_IN * s)},aresample={SR_IN}"


def distortions(overlays: Overlays, band_hz: tuple[float, float]) -> list[Distortion]:
    def mixed(name: str, group: str, mix: Mix) -> Distortion:
        def apply(x: Audio, r: np.random.Generator) -> Audio:
            y, n = mix_parts(x, mix, r, overlays, band_hz)
            return (y + n).astype(np.float32)
        return Distortion(name, group, 1.0, apply, mix)

    def reverb(x: Audio, rng: np.random.Generator) -> Audio:
        n = int(0.6 * SR_IN)
        ir = rng.standard_normal(n) * np.exp(-np.arange(n) / (0.1 * SR_IN))
        ir[0] = 1.0 / 0.35
        y = fftconvolve(x, ir * 0.35)[: len(x)]
        return to_8k((y / (np.abs(y).max() + 1e-9) * 0.5).astype(np.float32))

    def through(filt: str) -> Transform:
        return lambda x, r: ffmpeg(x, filt)

    def combination(x: Audio, rng: np.random.Generator) -> Audio:
        # 1.2x fast, then music laid over at 10 dB (full band, as an editor mixes it),
        # then AAC 64 kb/s as a platform re-encodes it.
        fast = ffmpeg(x, speed_filter(1.2), rate_out=SR_IN)
        music = overlays.take("music", len(fast), rng)
        px = float(np.mean(fast.astype(np.float64) ** 2)) + 1e-20
        pm = float(np.mean(music.astype(np.float64) ** 2)) + 1e-20
        y = (fast + music * np.sqrt(px / pm / 10)).astype(np.float32)
        return ffmpeg(y, codec=AAC_64K, fmt="adts")

    def combination_layers(x: Audio, rng: np.random.Generator) -> Layers:
        # The same two parts, for the SNR audit only (its clips stay as they were made):
        # the music is set at 10 dB over 0-8 kHz, the audit says what that is in band.
        fast = ffmpeg(x, speed_filter(1.2), rate_out=SR_IN)
        music = overlays.take("music", len(fast), rng)
        px = float(np.mean(fast.astype(np.float64) ** 2)) + 1e-20
        pm = float(np.mean(music.astype(np.float64) ** 2)) + 1e-20
        return Layers(SR_IN, fast, (("music", 10.0, (music * np.sqrt(px / pm / 10))
                                     .astype(np.float32)),), band="full16k")

    d = [
        Distortion("clean", "clean", 1.0, lambda x, r: to_8k(x)),
        Distortion("mp3_32k", "codec", 1.0, codec(MP3_32K, "mp3")),
        Distortion("opus_16k", "codec", 1.0, codec(OPUS_16K, "ogg")),
        Distortion("aac_64k", "codec", 1.0, codec(AAC_64K, "adts")),
        Distortion("phone", "codec", 1.0, through(PHONE)),
        Distortion("level_-20db", "codec", 1.0, lambda x, r: to_8k((x * 0.1).astype(np.float32))),
        mixed("white_10db_full16k", "noise", Mix("white", 10, "full16k")),
        mixed("white_0db_full16k", "noise", Mix("white", 0, "full16k")),
        mixed("white_10db_band", "noise", Mix("white", 10, "band")),
        mixed("white_0db_band", "noise", Mix("white", 0, "band")),
        mixed("pink_10db_band", "noise", Mix("pink", 10, "band")),
        mixed("pink_0db_band", "noise", Mix("pink", 0, "band")),
        mixed("music_0db_full16k", "overlay", Mix("music", 0, "full16k")),
        mixed("music_0db_band", "overlay", Mix("music", 0, "band")),
        mixed("music_6db_band", "overlay", Mix("music", 6, "band")),
        mixed("voice_0db_full16k", "overlay", Mix("voice", 0, "full16k")),
        mixed("voice_0db_band", "overlay", Mix("voice", 0, "band")),
        Distortion("reverb", "room", 1.0, reverb),
    ]
    for s in (0.75, 0.8, 0.9, 1.1, 1.2, 1.3):
        d.append(Distortion(f"speed_{s:g}", "speed", s, through(speed_filter(s))))
    for s in (0.8, 0.9, 1.1, 1.25):
        d.append(Distortion(f"tempo_{s:g}", "tempo", s, through(f"atempo={s}")))
    for st in (-3, -1.5, 1.5, 3):
        d.append(Distortion(f"pitch_{st:+g}", "pitch", 1.0,
                            through(f"rubberband=pitch={2 ** (st / 12):.6f}")))
    d.append(Distortion("speed_1.2+music_10db+aac_64k", "combination", 1.2, combination,
                        layers=combination_layers))
    d += issue_15_rows(overlays, band_hz)
    return d


def issue_15_rows(overlays: Overlays, band_hz: tuple[float, float]) -> list[Distortion]:
    """Rooms, and the stacked edits: every SNR set inside ``band_hz`` (module docstring)."""

    def room_row(name: str, spec: RoomSpec, talker_db: float | None,
                 codec_args: Sequence[str], suffix: str) -> Distortion:
        def layers(x: Audio, rng: np.random.Generator) -> Layers:
            room = simulate(spec, rng, rate_hz=SR_IN)
            tv = fftconvolve(x, room.ir_tv)[: len(x)].astype(np.float32)
            added = []
            if room.ir_talker is not None and talker_db is not None:
                voice = fftconvolve(overlays.take("voice", len(x), rng), room.ir_talker)
                added.append(("voice", talker_db, at_snr(tv, voice[: len(x)], talker_db,
                                                         rate_hz=SR_IN, band_hz=band_hz)))
            added.append(("pink", ROOM_NOISE_DB, at_snr(tv, pink(len(x), rng), ROOM_NOISE_DB,
                                                        rate_hz=SR_IN, band_hz=band_hz)))
            return Layers(SR_IN, tv, tuple(added))

        def apply(x: Audio, rng: np.random.Generator) -> Audio:
            return through_file(phone_mic(layers(x, rng).mixed()), codec=codec_args,
                                suffix=suffix)

        return Distortion(name, "room", 1.0, apply, layers=layers, lead_in_s=ROOM_LEAD_IN_S)

    def song_layers(x: Audio, rng: np.random.Generator) -> Layers:
        # 1.25x fast (resampled), under a song as loud as the clip inside the band.
        fast = ffmpeg(x, speed_filter(1.25), rate_out=SR_IN)
        song = overlays.take("music", len(fast), rng)
        return Layers(SR_IN, fast, (("music", 0.0, at_snr(fast, song, 0.0, rate_hz=SR_IN,
                                                          band_hz=band_hz)),))

    def song(x: Audio, rng: np.random.Generator) -> Audio:
        return through_file(fit_level(song_layers(x, rng).mixed()), codec=AAC_48K,
                            suffix=".mp4")

    def reaction_layers(x: Audio, rng: np.random.Generator) -> Layers:
        # Somebody talking over the clip as loud as it, their music 6 dB below it.
        y = to_8k(x)
        voice = to_8k(overlays.take("voice", len(x), rng))[: len(y)]
        music = to_8k(overlays.take("music", len(x), rng))[: len(y)]
        return Layers(SR, y, (
            ("voice", 0.0, at_snr(y, voice, 0.0, rate_hz=SR, band_hz=band_hz)),
            ("music", 6.0, at_snr(y, music, 6.0, rate_hz=SR, band_hz=band_hz))))

    return [
        room_row("room_near", ROOM_NEAR, None, AAC_64K, ".m4a"),
        room_row("room_far", ROOM_FAR, ROOM_TALKER_DB, AAC_64K, ".m4a"),
        room_row("room_listen", ROOM_LISTEN, None, OPUS_32K, ".webm"),
        Distortion("speed_1.25+music_0db_band+aac_48k_mp4", "combination", 1.25, song,
                   layers=song_layers),
        Distortion("reaction_voice_0db+music_6db_band", "overlay", 1.0,
                   lambda x, r: reaction_layers(x, r).mixed(), layers=reaction_layers),
    ]


#: What outside clips go through (cycled): the ways a real no-match query arrives.
OUTSIDE_VARIANTS = ("clean", "mp3_32k", "opus_16k", "aac_64k", "level_-20db", "phone")
