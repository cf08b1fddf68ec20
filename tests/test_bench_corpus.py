"""The benchmark's corpus is not in the repository: a run without it says what it needs."""

from pathlib import Path

import pytest

from bench.corpus import load_corpus


def test_a_folder_that_is_not_the_corpus_says_what_is_wanted(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"not a benchmark corpus \(library/, outside/, "
                       r"manifest.json\); bench/README.md#the-corpus"):
        load_corpus(tmp_path / "corpus")
