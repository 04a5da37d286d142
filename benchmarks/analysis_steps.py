"""The daemon's CPU per item outside extraction and Redis: each sub-step of the text analysis
(`monitor.dedup.analysis.analyse`) and language detection, in ms per item, on the texts the
pipeline benchmark builds (ten NeuS leads, ~590 words) and on the three story development
sets (their reports as they are).

Each step is timed alone, over all texts, in rounds (the median round is printed), by the
public function the analysis calls:

    tokens      monitor.text.tokens of title and text (folded words with offsets)
    words       monitor.text.words of the text (folded words only)
    shingles    fingerprint.shingle_hashes of the folded words
    minhash     fingerprint.minhash of those hashes (dedup calls it, not the analysis)
    counts      fingerprint.features of title and text words
    names       signals.names of "title. text"
    figures     signals.figures of "title. text"
    wires       wires.credited of the text
    analyse     the whole analysis, as Pipeline.process calls it
    language    monitor.extract.detect_language of the text

`--baseline DIR` measures another checkout too (its `monitor` package, with this
environment's dependencies), in a subprocess, alternating with this one round by round, so
a shared machine's drift falls on both alike:

    python benchmarks/analysis_steps.py [--rounds 5] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from _support import ROOT, report
from corpora import CORPORA, load

STEPS = (
    "tokens",
    "words",
    "shingles",
    "minhash",
    "counts",
    "names",
    "figures",
    "wires",
    "analyse",
    "language",
)


def texts() -> dict[str, list[tuple[str, str]]]:
    """Title and text of each report, per set: "pages" as the pipeline benchmark composes
    its articles (ten random NeuS leads), then the development sets' reports."""
    sets: dict[str, list[tuple[str, str]]] = {}
    neus = [(r.title, r.text) for split in ("train", "val") for r in load("neus", split)]
    rng = random.Random(7)
    sets["pages"] = [
        (neus[k[0]][0], "\n".join(neus[i][1] for i in k))
        for k in (rng.sample(range(len(neus)), 10) for _ in range(600))
    ]
    for corpus in CORPORA:
        sets[corpus] = [(r.title, r.text) for r in load(corpus)][:1500]
    return sets


def steps() -> dict[str, Callable[[str, str], Any]]:
    """Each sub-step as a function of (title, text), with what it needs computed before."""
    from monitor.dedup import fingerprint, signals, wires
    from monitor.dedup.analysis import analyse
    from monitor.extract import detect_language
    from monitor.model import Article, Item
    from monitor.text import tokens, words

    folded: dict[str, list[str]] = {}
    hashed: dict[str, Any] = {}

    def fold(text: str) -> list[str]:
        if text not in folded:
            folded[text] = words(text)
        return folded[text]

    def shingles(text: str) -> Any:
        if text not in hashed:
            hashed[text] = fingerprint.shingle_hashes(fold(text))
        return hashed[text]

    def whole(title: str, text: str) -> Any:
        item = Item(guid="g", url="https://news.example/a", title=title, source="s", feed="f")
        return analyse(item, Article(text=text, title=title, from_page=True))

    return {
        "tokens": lambda title, text: (tokens(title), tokens(text)),
        "words": lambda title, text: words(text),
        "shingles": lambda title, text: fingerprint.shingle_hashes(fold(text)),
        "minhash": lambda title, text: fingerprint.minhash(shingles(text)),
        "counts": lambda title, text: fingerprint.features(fold(title), fold(text)),
        "names": lambda title, text: signals.names(f"{title}. {text}"),
        "figures": lambda title, text: signals.figures(f"{title}. {text}"),
        "wires": lambda title, text: wires.credited(text),
        "analyse": whole,
        "language": lambda title, text: detect_language(text),
    }


def measure(rounds: int) -> Iterator[dict[str, Any]]:
    """`rounds` rounds over every set: each round's ms per item of each step."""
    sets, functions = texts(), steps()
    for title, text in sets["pages"][:20]:  # warm up: caches, the language model
        for function in functions.values():
            function(title, text)
    for n in range(rounds):
        figures: dict[str, dict[str, float]] = {}
        for name, reports in sets.items():
            figures[name] = {}
            for step, function in functions.items():
                started = time.perf_counter()
                for title, text in reports:
                    function(title, text)
                figures[name][step] = (time.perf_counter() - started) / len(reports) * 1000
        yield {"round": n, "ms_per_item": figures}


def child(rounds: int) -> None:
    """One JSON line per round, each round started by a line on stdin (so two checkouts
    measured side by side take turns, never run at once)."""
    found = measure(rounds)
    while sys.stdin.readline():
        figures = next(found, None)
        if figures is None:
            return
        print(json.dumps(figures), flush=True)


def median(rounds: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    first = rounds[0]["ms_per_item"]
    return {
        name: {
            step: round(statistics.median(r["ms_per_item"][name][step] for r in rounds), 3)
            for step in first[name]
        }
        for name in first
    }


def spawn(code: Path, rounds: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(code)}
    return subprocess.Popen(
        [sys.executable, __file__, "--child", "--rounds", str(rounds)],
        env=env,
        cwd=Path(__file__).parent,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline", type=Path, help="another checkout to measure alike")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.rounds)
        return
    checkouts = {"this": ROOT}
    if args.baseline is not None:
        if not (args.baseline / "monitor").is_dir():
            sys.exit(f"--baseline {args.baseline}: no monitor package there")
        checkouts = {"baseline": args.baseline.resolve(), "this": ROOT}
    processes = {label: spawn(code, args.rounds) for label, code in checkouts.items()}
    rounds: dict[str, list[dict[str, Any]]] = {label: [] for label in checkouts}
    for _ in range(args.rounds):  # one round of each in turn
        for label, process in processes.items():
            assert process.stdout is not None and process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
            line = process.stdout.readline()
            if not line:
                sys.exit(f"{label}: the measuring process ended early")
            rounds[label].append(json.loads(line))
    for process in processes.values():
        assert process.stdin is not None
        process.stdin.close()
        process.wait()
    load_average = os.getloadavg()[0]
    results = {label: median(r) for label, r in rounds.items()}
    report("analysis_steps", rounds=args.rounds, load=round(load_average, 1), **results)
    print(f"ms per item, median of {args.rounds} rounds (load average {load_average:.1f})")
    for name in results["this"]:
        print(f"  {name}")
        for step in STEPS:
            row = "  ".join(f"{label} {results[label][name][step]:7.3f}" for label in checkouts)
            print(f"    {step:9} {row}")


if __name__ == "__main__":
    main()
