"""What reports add to their stories, on the story development sets (../shared/data/
stories-dev, read at run time, never copied here; without them the script says so).

    python benchmarks/eval_adds.py [--examples 3]

- wire copies: every report republished as eval_dedup.py makes them (a dateline, words
  swapped, the tail cut, outlet boilerplate) must add nothing: the share with `adds: []`
  (target >= 95%);
- updated copies: a copy with one sentence of another story's report appended (one that
  names someone or gives a figure) must add that sentence: the share that do, and the
  share that add anything else as well;
- real follow-ups: each later report of a multi-report story (dated sets, by report time)
  measured against the earlier ones: the share that add something, with examples.
"""

from __future__ import annotations

import argparse
import random
import re

from _support import report
from corpora import CORPORA, DATA, load
from eval_dedup import wire_copy

from monitor.retained.adds import additions, facts_of, sentences

_INFORMATIVE = re.compile(r"\d|\b[A-Z][a-z]+ [A-Z][a-z]+\b")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=3)
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"no development sets at {DATA}: nothing to measure")
        return
    rng = random.Random(33)
    reports = [r for c in CORPORA for s in (("train", "val") if c == "neus" else ("val",))
               for r in load(c, s)]  # fmt: skip
    copies_quiet = 0
    loud: list[str] = []
    added_right = added_more = updated = 0
    for r in reports:
        known = facts_of(r.title, r.text)
        _, copy = wire_copy(r.title, r.text, rng)
        found = additions(copy, known)
        copies_quiet += not found
        if found and len(loud) < args.examples:
            loud.append(found[0].sentence)
        other = rng.choice(reports)
        extra = [s for s in sentences(other.text) if _INFORMATIVE.search(s) and len(s) > 40]
        if other.story == r.story or not extra:
            continue
        sentence = rng.choice(extra)
        found = additions(copy + "\n" + sentence, known)
        updated += 1
        added_right += any(a.sentence == sentence for a in found)
        added_more += any(a.sentence != sentence for a in found)
    follow_ups = adding = 0
    shown: list[dict[str, object]] = []
    for corpus in ("gva-dev", "giveme5w1h"):
        stories: dict[str, list] = {}
        for r in load(corpus):
            stories.setdefault(r.story, []).append(r)
        for members in stories.values():
            known: set[int] = set()
            for n, r in enumerate(members):
                if n:
                    follow_ups += 1
                    found = additions(r.text, known)
                    adding += bool(found)
                    if found and len(shown) < args.examples:
                        a = found[0]
                        shown.append(
                            {"sentence": a.sentence, "names": a.names, "figures": a.figures}
                        )
                known |= facts_of(r.title, r.text)
    report(
        "eval_adds",
        reports=len(reports),
        wire_copies_adding_nothing=round(copies_quiet / len(reports), 4),
        updated_copies=updated,
        updated_copies_adding_the_sentence=round(added_right / updated, 4),
        updated_copies_adding_more=round(added_more / updated, 4),
        follow_ups=follow_ups,
        follow_ups_adding_something=round(adding / follow_ups, 4),
        copies_that_added=loud,
        follow_up_examples=shown,
    )


if __name__ == "__main__":
    main()
