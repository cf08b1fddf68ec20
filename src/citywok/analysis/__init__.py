"""The analysis stages, pure functions over arrays: decode → spectrogram → peaks, and the
sketch; ``fingerprint`` runs them over a whole file (the work of one ingest job)."""
