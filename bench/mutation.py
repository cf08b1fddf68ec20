"""Mutation testing of the decision logic (a benchmark of the tests, not a CI gate).

    .venv/bin/python -m bench.mutation [--minutes 20] [--children 1]

Runs mutmut over ``match/`` (every function), ``match.decide.decide`` and
``match.query.match_clip``, and the sketch's agreement and score, with only the unit tests
meant to guard them (``tests/test_match*.py``, ``test_decide*.py``, ``test_sketch*.py``,
``test_pipeline.py``), in a scratch copy of ``src/``
and ``tests/`` (mutmut writes a ``mutants/`` folder beside its config; the checkout stays
clean), stops after ``--minutes``, and prints every surviving mutant with its diff: a
change to the decision that no test notices. Each mutant reruns the tests that reach
the mutated function, fixtures included: a few seconds each.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: What is mutated (files) and which of their mutants run (mutmut's names, globs).
FILES = ("src/citywok/match/places.py", "src/citywok/match/verify.py",
         "src/citywok/match/query.py", "src/citywok/match/decide.py",
         "src/citywok/store/reads.py", "src/citywok/families/sketch.py",
         "src/citywok/analysis/sketch.py")
#: Decision first: decide() (threshold, runner-up, ambiguity), match_clip() (the
#: plausibility filter, early stop), the verification and its chance term (match.verify,
#: sketch.agreement/score), place keeping, then the rest of the matcher.
MUTANTS = ("citywok.match.decide.x_decide*", "citywok.match.query.x_match_clip*",
           "citywok.match.verify.x_verify*", "citywok.families.sketch.x_agreement*",
           "citywok.analysis.sketch.x_score*",
           "citywok.match.verify.x_best_per_place*", "citywok.match.places.x_find_places*",
           "citywok.match.places.x__distinct_places*", "citywok.match.places.x__refine*",
           "citywok.store.reads.x_plan_reads*", "citywok.store.reads.x_read_postings*",
           "citywok.match.places.x__collect*", "citywok.match.places.x__median*")
TESTS = ("tests/test_match*.py", "tests/test_decide*.py", "tests/test_sketch*.py",
         "tests/test_pipeline.py")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=20.0, help="stop mutmut after this long")
    ap.add_argument("--children", type=int, default=1, help="mutants tested in parallel")
    ap.add_argument("--keep", type=Path, help="leave the scratch copy here (to browse it)")
    ap.add_argument("mutants", nargs="*", default=list(MUTANTS),
                    help="mutmut mutant-name globs (default: decide, match_clip, match/, "
                         "sketch scoring)")
    args = ap.parse_args()
    mutmut = Path(sys.executable).parent / "mutmut"
    if not mutmut.exists():
        print("mutmut is not installed: .venv/bin/pip install -e '.[bench]'", file=sys.stderr)
        return 2
    tests = sorted({str(p.relative_to(ROOT)) for pat in TESTS for p in ROOT.glob(pat)})
    scratch = args.keep or Path(tempfile.mkdtemp(prefix="citywok-mutation-"))
    try:
        shutil.copytree(ROOT / "src", scratch / "src", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "static"))
        shutil.copytree(ROOT / "tests", scratch / "tests", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(ROOT / "pyproject.toml", scratch / "pyproject.toml")
        (scratch / "setup.cfg").write_text(
            "[mutmut]\nsource_paths=src\n"
            + "only_mutate=\n" + "".join(f"    {f}\n" for f in FILES)
            + "pytest_add_cli_args_test_selection=\n" + "".join(f"    {t}\n" for t in tests)
            + "pytest_add_cli_args=\n    -x\n    -q\n    -p\n    no:cacheprovider\n")
        print(f"mutating {', '.join(FILES)} ({' '.join(args.mutants)}) against "
              f"{' '.join(tests)}; at most {args.minutes:g} min", flush=True)
        started = time.monotonic()
        try:
            subprocess.run([str(mutmut), "run", "--max-children", str(args.children),
                            *args.mutants], cwd=scratch, timeout=args.minutes * 60,
                           check=False, stdout=subprocess.DEVNULL)
            finished = True
        except subprocess.TimeoutExpired:
            finished = False
        took = (time.monotonic() - started) / 60
        res = subprocess.run([str(mutmut), "results", "--all", "true"], cwd=scratch,
                             capture_output=True, text=True, check=False).stdout
        status: dict[str, str] = {}
        for line in res.splitlines():
            m = re.match(r"\s*(\S+): (\w[\w ]*)$", line)
            if m and any(_glob_match(m.group(1), g) for g in args.mutants):
                status[m.group(1)] = m.group(2)
        counts: dict[str, int] = {}
        for s in status.values():
            counts[s] = counts.get(s, 0) + 1
        print(f"{'finished' if finished else 'stopped at the time limit'} after {took:.1f} min: "
              + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())), flush=True)
        survivors = sorted(k for k, s in status.items() if s == "survived")
        print(f"\n{len(survivors)} surviving mutants (no test failed):\n")
        for name in survivors:
            diff = subprocess.run([str(mutmut), "show", name], cwd=scratch, capture_output=True,
                                  text=True, check=False).stdout
            print(diff.rstrip() + "\n")
        return 0
    finally:
        if args.keep is None:
            shutil.rmtree(scratch, ignore_errors=True)


def _glob_match(name: str, pattern: str) -> bool:
    from fnmatch import fnmatchcase
    return fnmatchcase(name, pattern)


if __name__ == "__main__":
    sys.exit(main())
