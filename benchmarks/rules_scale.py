"""Rule matching at scale: 100, 1,000 and 10,000 generated rules against real article text
(the five seed reports), median time per article, with the prefilter and with the naive
loop over every rule. Target (issue 5): <= 2 ms at 10,000 rules, time(10k)/time(100) <= 5.

The time per article includes building the article's token index (it is built once per
article whatever the number of rules). The rules have the shapes analysts write (AND/OR
groups, phrases, wildcards, NOT, NEAR, title scoping) over names and topic words of real
news: taken from the NeuS development set in ../shared/data when it is there (capitalised
words for names, other frequent words for topics), else from a built-in list of a few hundred
(then rules are far less selective than a newsroom's 10,000, and the figures are pessimistic).
Seeded: every run generates the same rules.

    python benchmarks/rules_scale.py
"""

from __future__ import annotations

import random
import re
import statistics
import time
from collections import Counter

from _support import ROOT, report

from monitor.rules.match import Document
from monitor.rules.model import Rule, RuleSet
from monitor.rules.query import parse

ENTITIES = """Putin Kim Pyongyang Moscow Kremlin Russia Ukraine Kyiv Zelensky Biden Washington
Beijing
Xi China Taiwan Taipei Tokyo Japan Seoul Yoon Korea NATO Stoltenberg Blinken Lavrov Shoigu Belousov
Iran Tehran Israel Gaza Hamas Hezbollah Lebanon Syria Damascus Turkey Erdogan Ankara Brussels
Macron Paris France Germany Berlin Scholz London Sunak Starmer Britain India Modi Delhi Pakistan
Islamabad Afghanistan Kabul Taliban Egypt Cairo Sudan Khartoum Ethiopia Nigeria Abuja Kenya Nairobi
Brazil Lula Argentina Milei Mexico Venezuela Maduro Cuba Canada Trudeau Australia Canberra Manila
Indonesia Jakarta Vietnam Hanoi Thailand Myanmar Yangon Bangladesh Dhaka Poland Warsaw Hungary
Orban Serbia Belgrade Kosovo Georgia Tbilisi Armenia Azerbaijan Baku Kazakhstan Belarus Minsk
Lukashenko Moldova Romania Bulgaria Sofia Greece Athens Italy Rome Meloni Spain Madrid Sanchez
Interfax KCNA Reuters BTA Sputnik Xinhua Yonhap Gazprom Rosneft Wagner Pentagon Congress Senate
""".split()
TOPICS = """treaty pact agreement alliance sanctions summit talks visit missile launch nuclear test
drills exercise blockade incursion ceasefire truce offensive strike drone attack troops army navy
election vote referendum protest coup arrest trial verdict court ruling embargo tariff trade export
import oil gas pipeline grain famine aid refugees border frontier annexation occupation partnership
cooperation defence defense security weapons munitions ammunition artillery shells satellite launch
cosmodrome rocket ballistic hypersonic warship submarine espionage spy hackers cyberattack leak
inflation currency payments bank default debt loan investment railway port airport bridge dam
earthquake flood wildfire hurricane typhoon cyclone drought outbreak epidemic vaccine""".split()


NEUS = ROOT.parent / "shared" / "data" / "stories-dev" / "neus" / "train.source"


def vocabulary() -> tuple[list[str], list[str], str]:
    """(names, topic words, where they came from)."""
    if not NEUS.exists():
        return ENTITIES, TOPICS, "built-in"
    names: Counter[str] = Counter()
    others: Counter[str] = Counter()
    for line in NEUS.read_text(encoding="utf-8").splitlines():
        for sentence in re.split(r"[.!?]\s+|\[SEP\]|=>", line):
            tokens = re.findall(r"[A-Za-z][a-z]+", sentence)
            for word in tokens[1:]:  # not the sentence's first word
                (names if word[0].isupper() else others)[word] += 1
    stop = {w for w, _ in others.most_common(300)}  # function words and the like
    topic_words = [w for w, c in others.most_common(6000) if w not in stop and len(w) > 3]
    name_words = [w for w, c in names.most_common(8000) if c >= 2 and w.lower() not in others]
    return name_words, topic_words, "NeuS train"


def generate(count: int, rng: random.Random, names: list[str], topics: list[str]) -> list[str]:
    e, t = (lambda: rng.choice(names)), (lambda: rng.choice(topics))
    shapes = [
        lambda: f"{e()} AND ({t()} OR {t()} OR {t()[:5]}*)",
        lambda: f'"{e()} {e()}" OR ({e()} AND {t()})',
        lambda: f"({e()} OR {e()}) AND ({t()} OR {t()}) AND NOT ({t()} OR {t()})",
        lambda: f"title:({e()} OR {e()}) AND {t()}",
        lambda: f"{e()} NEAR/5 ({t()} OR {t()})",
        lambda: f"{e()} AND {e()} AND {t()}* AND NOT {e()}",
    ]
    return [rng.choice(shapes)() for _ in range(count)]


def per_article(rule_set: RuleSet, texts: list[tuple[str, str]], naive: bool) -> float:
    times = []
    for _ in range(20):
        for title, text in texts:
            started = time.perf_counter()
            doc = Document(title=title, text=text, lang="en")
            (rule_set.match_all if naive else rule_set.match)(doc)
            times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    seeds = sorted((ROOT / "tests" / "fixtures" / "seeds").glob("*.txt"))
    texts = [(p.read_text().split("\n", 1)[0], p.read_text()) for p in seeds]
    words = statistics.mean(len(t.split()) for _, t in texts)
    names, topics, origin = vocabulary()
    results = {}
    for count in (100, 1_000, 10_000):
        queries = generate(count, random.Random(count), names, topics)
        rules = tuple(
            Rule(id=f"r{n}", name="r", query=q, node=parse(q)) for n, q in enumerate(queries)
        )
        started = time.perf_counter()
        rule_set = RuleSet(rules, {})
        build = (time.perf_counter() - started) * 1000
        doc = Document(title=texts[0][0], text=texts[0][1])
        assert rule_set.match(doc) == rule_set.match_all(doc)  # the prefilter loses nothing
        candidates = statistics.mean(
            len(rule_set.prefilter.candidates(Document(title=ti, text=tx).vocabulary()))
            for ti, tx in texts
        )
        matched = statistics.mean(
            len(rule_set.match(Document(title=ti, text=tx))) for ti, tx in texts
        )
        results[count] = per_article(rule_set, texts, naive=False)
        report(
            "rules_scale",
            rules=count,
            vocabulary=f"{origin}: {len(names)} names, {len(topics)} topic words",
            article_words=round(words),
            prefilter_build_ms=round(build, 1),
            candidates_per_article=round(candidates, 1),
            matches_per_article=round(matched, 1),
            median_ms_per_article=round(results[count], 3),
            naive_median_ms_per_article=round(per_article(rule_set, texts, naive=True), 3),
        )
    report("rules_scale_ratio", ratio_10k_to_100=round(results[10_000] / results[100], 2))


if __name__ == "__main__":
    main()
