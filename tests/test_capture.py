"""Live audio through ffmpeg (``citywok listen``'s source)."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

from citywok.analysis.decode import ffmpeg_binary, input_url
from citywok.long.capture import live_chunks


def test_a_source_ffmpeg_complains_about_all_along_still_streams(tmp_path: Path) -> None:
    # A damaged MP3: ffmpeg says something about nearly every frame (over 64 kB, more
    # than a pipe holds, in 200 s). Left unread, that blocked ffmpeg and the sound stopped.
    good = tmp_path / "tone.mp3"
    subprocess.run([ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                    "sine=f=440:d=200", "-c:a", "libmp3lame", "-b:a", "32k", str(good)],
                   check=True, capture_output=True)
    data = bytearray(good.read_bytes())
    for i in range(4000, len(data), 97):
        data[i] ^= 0xFF
    bad = tmp_path / "damaged.mp3"
    bad.write_bytes(bytes(data))
    heard: list[float] = []

    def listen() -> None:
        chunks = live_chunks(["-i", input_url(bad)], sample_rate_hz=8000)
        heard.append(sum(len(c) for c in chunks) / 8000)

    reader = threading.Thread(target=listen, daemon=True)
    reader.start()
    reader.join(60)
    assert not reader.is_alive(), "ffmpeg blocked on its own messages"
    assert heard and heard[0] > 150.0
