"""MinHash of word 3-grams, three ways, in one run on the same articles: the project's numpy
code (monitor/dedup/fingerprint.py), datasketch, and rensa (a compiled MinHash from PyPI),
each with 128 permutations — what the near-duplicate tier computes for every item.

    python benchmarks/minhash_compare.py [--articles 2000]

Articles: NeuS leads from ../shared/data (evaluation use, read at run time), joined in
threes to ~300-word texts; without the data, generated text. datasketch and rensa are not
dependencies of the project: `pip install datasketch rensa` to measure them (they are
skipped, with a line saying so, when absent). Prints the median time per article of
tokenising + shingling + hashing and of the whole, and how close each one's Jaccard estimates
are to the exact 3-gram Jaccard on pairs of near-duplicates (a copy with 20 words edited).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.dedup.fingerprint import NUM_PERM, jaccard, minhash, shingle_hashes
from monitor.text import words

NEUS = Path(__file__).resolve().parent.parent.parent / "shared/data/stories-dev/neus/train.source"


def articles(count: int) -> list[str]:
    if NEUS.exists():
        leads = []
        for line in NEUS.read_text(encoding="utf-8").splitlines():
            for part in line.split(" [SEP] "):
                leads.append(part.split("ARTICLE=>", 1)[-1].strip())
        return [" ".join(leads[i : i + 3]) for i in range(0, 3 * count, 3)][:count]
    rng = random.Random(1)
    vocabulary = [f"w{n}" for n in range(20000)]
    return [" ".join(rng.choices(vocabulary, k=300)) for _ in range(count)]


def edited(text: str, rng: random.Random) -> str:
    toks = text.split()
    for at in rng.sample(range(len(toks)), min(20, len(toks))):
        toks[at] = "edited"
    return " ".join(toks)


def grams(text: str) -> list[str]:
    toks = words(text)
    return [" ".join(toks[i : i + 3]) for i in range(max(1, len(toks) - 2))]


def timed(function, items) -> float:
    times = []
    for item in items:
        started = time.perf_counter()
        function(item)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=2000)
    args = parser.parse_args()
    texts = articles(args.articles)
    rng = random.Random(7)
    pairs = [(t, edited(t, rng)) for t in texts[:300]]
    exact = [
        len(set(grams(a)) & set(grams(b))) / len(set(grams(a)) | set(grams(b))) for a, b in pairs
    ]
    words_per = statistics.mean(len(t.split()) for t in texts)
    print(f"{len(texts)} articles, {words_per:.0f} words each; {NUM_PERM} permutations")
    print(f"{'implementation':<34} {'ms/article':>10} {'mean |est - exact| J':>22}")

    def project(text: str):
        return minhash(shingle_hashes(text))

    ours = [jaccard(project(a), project(b)) for a, b in pairs]
    error = statistics.mean(abs(e - x) for e, x in zip(ours, exact, strict=True))
    print(f"{'project (numpy, crc32 3-grams)':<34} {timed(project, texts):>10.3f} {error:>22.4f}")

    try:
        import datasketch
    except ImportError:
        print("datasketch: not installed (pip install datasketch)")
    else:

        def sketch(text: str):
            m = datasketch.MinHash(num_perm=NUM_PERM)
            m.update_batch([g.encode() for g in grams(text)])
            return m

        est = [sketch(a).jaccard(sketch(b)) for a, b in pairs]
        error = statistics.mean(abs(e - x) for e, x in zip(est, exact, strict=True))
        label = f"datasketch {datasketch.__version__} (update_batch)"
        print(f"{label:<34} {timed(sketch, texts):>10.3f} {error:>22.4f}")

    try:
        import rensa
    except ImportError:
        print("rensa: not installed (pip install rensa)")
    else:

        def compiled(text: str):
            m = rensa.RMinHash(num_perm=NUM_PERM, seed=42)
            m.update(grams(text))
            return m

        est = [compiled(a).jaccard(compiled(b)) for a, b in pairs]
        error = statistics.mean(abs(e - x) for e, x in zip(est, exact, strict=True))
        print(f"{'rensa RMinHash (Rust)':<34} {timed(compiled, texts):>10.3f} {error:>22.4f}")
    print(f"{'(tokenising + 3-grams alone)':<34} {timed(grams, texts):>10.3f}")


if __name__ == "__main__":
    main()
