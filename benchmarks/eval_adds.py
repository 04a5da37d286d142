"""What reports add to their stories, on the story development sets (../shared/data/
stories-dev, read at run time, never copied here; without them the script says so).

    python benchmarks/eval_adds.py [--examples 3] [--replay] [--limit 100]

- wire copies: every report republished as eval_dedup.py makes them (a dateline, words
  swapped, the tail cut, outlet boilerplate) must add nothing: the share with `adds: []`
  (target >= 95%);
- updated copies: a copy with one sentence of another story's report appended (one that
  names someone or gives a figure) must add that sentence: the share that do, and the
  share that add anything else as well;
- real follow-ups: each later report of a multi-report story (dated sets, by report time)
  measured against the earlier ones: the share that add something, with examples.

`--replay` also measures through what a user runs: per set, the reports of its first
`--limit` stories, each followed by its wire copy and its updated copy (an hour and two
hours later), written as one feed (each line a paragraph, `<p>`, as news feeds carry them)
and run through `monitor replay --json --fresh`
(eval_replay.py; NeuS dated over a day in its order, so that a copy comes after its
original): the copies placed in their original's story, and what their `adds` say;
then each dated set alone: of the reports that joined a story, the share adding something.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import re
import tempfile
from datetime import timedelta
from pathlib import Path

from _support import ROOT, report
from corpora import CORPORA, DATA, Report, load
from eval_dedup import dated, wire_copy
from eval_replay import replayed_rows

from monitor.retained.adds import additions, facts_of, sentences

_INFORMATIVE = re.compile(r"\d|\b[A-Z][a-z]+ [A-Z][a-z]+\b")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=3)
    parser.add_argument("--replay", action="store_true", help="also through `monitor replay`")
    parser.add_argument("--limit", type=int, default=100, help="--replay: first N stories a set")
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
    if args.replay:
        for corpus in CORPORA:
            through_replay(corpus, load(corpus, limit=args.limit), args.examples)


def _spaced(text: str) -> str:
    return " ".join(text.split())


def _later(r: Report, key: str, title: str, text: str, hours: float) -> Report:
    when = r.time + timedelta(hours=hours) if r.time else None
    return dataclasses.replace(r, key=f"{r.key}~{key}", title=title, text=text, time=when)


def through_replay(corpus: str, reports: list[Report], examples: int) -> None:
    """Copies and updated copies, then the set's own follow-ups, through `monitor replay`.
    An undated set (NeuS) is dated over a day in its order, so that each copy comes after
    its original (undated items go by id: monitor.model.oldest_first)."""
    rng = random.Random(33)
    given: list[Report] = []
    appended: dict[str, str] = {}  # updated copy's key -> the sentence appended
    for r in reports if any(r.time for r in reports) else dated(reports, 24):
        title, copy = wire_copy(r.title, r.text, rng)
        given += [r, _later(r, "copy", title, copy, 1)]
        other = rng.choice(reports)
        extra = [s for s in sentences(other.text) if _INFORMATIVE.search(s) and len(s) > 40]
        if other.story != r.story and extra:
            sentence = rng.choice(extra)
            given.append(_later(r, "update", title, copy + "\n" + sentence, 2))
            appended[given[-1].key] = sentence
    with tempfile.TemporaryDirectory(prefix="monitor-eval-") as work:
        rows = replayed_rows(given, ROOT, Path(work), paragraphs=True)
    copies = [(rows[r.key], rows[r.key + "~copy"]) for r in reports]
    in_story = [c for o, c in copies if c.get("story_id") == o.get("story_id")]
    loud = [c["adds"][0]["sentence"] for c in in_story if c.get("adds")]
    joined = [  # (the sentence appended, what its copy added), spaces as feed text gives them
        (_spaced(sentence), {_spaced(a["sentence"]) for a in rows[key].get("adds") or []})
        for key, sentence in appended.items()
        if rows[key].get("story_id") == rows[key.split("~")[0]].get("story_id")
    ]
    figures = {
        "wire_copies": len(copies),
        "wire_copies_in_their_story": round(len(in_story) / len(copies), 4),
        "wire_copies_adding_nothing": round(1 - len(loud) / max(1, len(in_story)), 4),
        "updated_copies": len(appended),
        "updated_copies_in_their_story": round(len(joined) / max(1, len(appended)), 4),
        "updated_copies_adding_the_sentence": round(
            sum(s in got for s, got in joined) / max(1, len(joined)), 4
        ),
        "updated_copies_adding_more": round(
            sum(bool(got - {s}) for s, got in joined) / max(1, len(joined)), 4
        ),
        "copies_that_added": loud[:examples],
    }
    if any(r.time for r in reports):  # the set's own reports: what joining ones add
        with tempfile.TemporaryDirectory(prefix="monitor-eval-") as work:
            own = replayed_rows(reports, ROOT, Path(work), paragraphs=True)
        joining = [row for row in own.values() if row.get("dedup") == "same_story"]
        figures["joining_reports"] = len(joining)
        figures["joining_reports_adding_something"] = round(
            sum(bool(row.get("adds")) for row in joining) / max(1, len(joining)), 4
        )
    report("eval_adds", path="monitor replay", corpus=corpus, **figures)


if __name__ == "__main__":
    main()
