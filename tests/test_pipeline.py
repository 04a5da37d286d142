"""The whole path on the seed feed against a real Redis: extraction, dedup, rules, alerts."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
import redis

from monitor.config import Settings
from monitor.ingest.feeds import canonical_url
from monitor.ingest.fetch import LocalFetcher
from monitor.model import AlertKind, Item, Outcome, alert_id
from monitor.pipeline import runtime
from monitor.pipeline.process import Pipeline, article_of
from monitor.pipeline.replay import read_feeds
from monitor.rules import load_rules

from .conftest import FIXTURES, ROOT, RULES, SAMPLE_FEEDS

SCHEMA = json.loads((ROOT / "docs" / "alert.schema.json").read_text())
EXTRA = FIXTURES / "feeds"


def make_pipeline(redis_url: str, client: redis.Redis) -> Pipeline:
    settings = Settings(redis_url=redis_url)
    return runtime.pipeline(client, settings, load_rules(RULES), LocalFetcher(ROOT))


def alerts_in_stream(client: redis.Redis) -> list[dict]:
    return [json.loads(f["alert"]) for _, f in client.xrange("monitor:alerts")]


def test_seed_feed_is_one_story_with_one_new_alert(redis_url: str, client: redis.Redis) -> None:
    pipeline = make_pipeline(redis_url, client)
    results = [pipeline.process(item) for item in read_feeds([SAMPLE_FEEDS])]

    assert len(results) == 5
    assert all(r.article.from_page for r in results)  # full text came through trafilatura
    assert len({r.placement.story_id for r in results}) == 1
    outcomes = [r.placement.outcome for r in results]
    assert outcomes[0] is Outcome.NEW_STORY
    assert set(outcomes[1:]) == {Outcome.SAME_STORY}
    assert all(r.placement.duplicate_of is None for r in results)
    # the seeds are not about missiles or Taiwan
    assert {m.rule_id for r in results for m in r.matches} == {"dprk-russia-treaty"}

    alerts = alerts_in_stream(client)
    kinds = [a["kind"] for a in alerts]
    assert kinds[0] == "new" and kinds.count("new") == 1 and kinds.count("update") <= 1
    for alert in alerts:
        jsonschema.validate(alert, SCHEMA)
        assert alert["rule"]["id"] == "dprk-russia-treaty"
        assert alert["story"]["id"] == results[0].placement.story_id
        assert any("«" in m["snippet"] for m in alert["matches"])
    first = alerts[0]
    # the story already holds the items that came before the first matching one
    assert first["story"]["size"] == len(first["story"]["sources"]) >= 2
    assert first["item"]["language"] == "en"
    assert [r.alerts for r in results if r.alerts] == [[a["id"]] for a in alerts]


def test_processing_again_publishes_nothing(redis_url: str, client: redis.Redis) -> None:
    pipeline = make_pipeline(redis_url, client)
    items = read_feeds([SAMPLE_FEEDS])
    first = [pipeline.process(item) for item in items]
    before = client.xlen("monitor:alerts")
    again = [pipeline.process(item) for item in items]
    assert client.xlen("monitor:alerts") == before >= 1
    assert {r.placement.outcome for r in again} == {Outcome.SEEN}
    assert [r.placement.story_id for r in again] == [r.placement.story_id for r in first]
    assert [[m.rule_id for m in r.matches] for r in again] == [
        [m.rule_id for m in r.matches] for r in first
    ]
    assert not any(r.alerts for r in again)


def test_near_duplicate_joins_the_original_and_unrelated_starts_a_story(
    redis_url: str, client: redis.Redis
) -> None:
    labels = json.loads((EXTRA / "labels.json").read_text())["extra.xml"]
    pipeline = make_pipeline(redis_url, client)
    seeds = {r.item.guid: r for r in map(pipeline.process, read_feeds([SAMPLE_FEEDS]))}
    before = client.xlen("monitor:alerts")
    for item in read_feeds([EXTRA / "extra.xml"]):
        result = pipeline.process(item)
        label = labels[item.guid]
        if label["label"] == "near-duplicate":
            original = seeds[label["duplicate_of"]]
            assert result.placement.outcome is Outcome.NEAR_DUPLICATE
            assert result.placement.duplicate_of == original.item.id
            assert result.placement.story_id == original.placement.story_id
            assert result.placement.similarity >= 0.5
        else:
            assert label["label"] == "unrelated"
            assert result.placement.outcome is Outcome.NEW_STORY
            assert result.placement.story_id not in {r.placement.story_id for r in seeds.values()}
            assert result.matches == []
        assert result.alerts == []
    assert client.xlen("monitor:alerts") == before  # a copy never alerts


def wire_copy(text: str, rng: random.Random) -> str:
    """The text as another outlet republishes a wire story: a dateline in front, one word in
    thirty changed, the last paragraph dropped, the outlet's boilerplate at the end."""
    paragraphs = [p for p in text.split("\n") if p.strip()]
    words = " ".join(paragraphs[:-1] if len(paragraphs) > 3 else paragraphs).split()
    for at in rng.sample(range(len(words)), len(words) // 30):
        words[at] = rng.choice(["reportedly", "also", "on Wednesday", "officials"])
    dateline = rng.choice(["SEOUL, June 19 (Reuters) - ", "MOSCOW (AP) — ", "(BTA) "])
    return f"{dateline}{' '.join(words)} Follow us for more world news. (c) 2024 Example Media"


def test_generated_wire_copies_of_the_seeds_are_near_duplicates(
    redis_url: str, client: redis.Redis
) -> None:
    pipeline = make_pipeline(redis_url, client)
    seeds = [pipeline.process(item) for item in read_feeds([SAMPLE_FEEDS])]
    alerts = client.xlen("monitor:alerts")
    rng = random.Random(19)
    for seed in seeds:
        copy = Item(
            guid=f"urn:copy:{seed.item.id}",
            url=f"https://copies.example/{seed.item.id}",
            title="UPDATE: " + seed.item.title,
            source="Example Media",
            feed="copies",
            content=wire_copy(seed.article.text, rng),
            published=seed.item.published,
        )
        result = pipeline.process(copy)
        assert result.placement.outcome is Outcome.NEAR_DUPLICATE, seed.item.source
        assert result.placement.duplicate_of == seed.item.id
        assert result.placement.story_id == seed.placement.story_id
        assert result.alerts == []
    assert client.xlen("monitor:alerts") == alerts  # copies never alert


def test_tracking_parameters_make_the_same_item(redis_url: str, client: redis.Redis) -> None:
    pipeline = make_pipeline(redis_url, client)
    seeds = {canonical_url(r.url): r for r in map(pipeline.process, read_feeds([SAMPLE_FEEDS]))}
    (item,) = read_feeds([EXTRA / "tracking.xml"])
    result = pipeline.process(item)
    original = seeds[canonical_url(item.guid)]
    assert result.placement.outcome is Outcome.SAME_ITEM
    assert result.placement.duplicate_of == original.item.id
    assert result.alerts == []


def test_an_item_redelivered_after_a_crash_still_alerts_once(
    redis_url: str, client: redis.Redis
) -> None:
    """A crash after placing the item, before its alerts: the retry publishes the alert."""
    pipeline = make_pipeline(redis_url, client)
    items = read_feeds([SAMPLE_FEEDS])
    korea_herald = next(i for i in items if "koreaherald" in i.guid)
    for item in items[: items.index(korea_herald)]:
        pipeline.process(item)
    article, _ = article_of(korea_herald, pipeline.fetcher)
    pipeline.index.place(korea_herald, article)  # ...then the process dies
    assert client.xlen("monitor:alerts") == 0

    result = pipeline.process(korea_herald)  # re-delivered
    assert result.placement.outcome is Outcome.SEEN
    assert len(result.alerts) == 1
    assert pipeline.process(korea_herald).alerts == []  # and only once
    assert [a["kind"] for a in alerts_in_stream(client)] == ["new"]


def test_no_crash_leaves_a_claim_without_its_alert(redis_url: str, client: redis.Redis) -> None:
    """The claim and the XADD are one script: when the process dies before it (here: while
    building the alert), nothing is claimed, so if that item goes dead the next report of the
    story that matches raises the `new` (the claim used to be written first: it was lost)."""
    pipeline = make_pipeline(redis_url, client)
    items = read_feeds([SAMPLE_FEEDS])
    matching = [r for r in map(pipeline.process, items) if r.matches]
    assert len(matching) == 3 and len(matching[0].alerts) == 1
    client.flushall()

    def dies(kind: AlertKind, update: int) -> dict:
        raise SystemExit("killed while building the alert")

    first, second = matching[0], matching[1]
    with pytest.raises(SystemExit):
        pipeline.queue.claim_and_publish(
            first.placement.story_id,
            "dprk-russia-treaty",
            first.item.id,
            dies,
        )
    assert client.exists(f"monitor:story:{first.placement.story_id}:alerts") == 0  # no claim
    # `first` went dead; `second` (same story) is processed: the story's `new` is not lost.
    story = first.placement.story_id
    built = pipeline.queue.claim_and_publish(
        story,
        "dprk-russia-treaty",
        second.item.id,
        lambda kind, n: {"id": alert_id("dprk-russia-treaty", story, kind, n), "kind": str(kind)},
    )
    assert built.alert is not None and built.alert["kind"] == "new" and built.entry is not None
    assert [a["kind"] for a in alerts_in_stream(client)] == ["new"]


def test_a_missing_page_falls_back_to_the_feed_summary(redis_url: str, client: redis.Redis) -> None:
    pipeline = make_pipeline(redis_url, client)
    item = Item(
        guid="urn:test:missing",
        url=(ROOT / "sample_feeds" / "pages" / "gone.html").as_uri(),
        title="Putin and Kim sign a treaty",
        source="Test",
        feed="test",
        summary="Putin and Kim Jong Un signed a treaty in Pyongyang on Wednesday.",
    )
    result = pipeline.process(item)
    assert not result.article.from_page
    assert result.article.text == item.summary
    assert result.warnings and "gone.html" in result.warnings[0]
    assert [m.rule_id for m in result.matches] == ["dprk-russia-treaty"]
    assert len(result.alerts) == 1


@pytest.mark.parametrize("url", ["https://example.org/a.html", "file:///etc/hostname"])
def test_replay_fetches_nothing_outside_its_feeds(url: str, redis_url: str, client) -> None:
    pipeline = make_pipeline(redis_url, client)
    pipeline.fetcher = LocalFetcher(Path(SAMPLE_FEEDS))
    item = Item(guid=f"urn:test:{url}", url=url, title="t", source="s", feed="f", summary="x")
    result = pipeline.process(item)
    assert not result.article.from_page
    assert result.warnings


def test_updates_come_at_most_once_per_quiet_period(redis_url: str, client: redis.Redis) -> None:
    from monitor.delivery.queue import AlertQueue
    from monitor.store.keys import Keys

    queue = AlertQueue(client, Keys(), maxlen=1000, id_ttl=3600, quiet=600)

    def claim(item: str, at: float) -> tuple[AlertKind, int] | None:
        def build(kind: AlertKind, n: int) -> dict:
            return {"id": alert_id("r", "s1", kind, n), "kind": str(kind), "n": n}

        done = queue.claim_and_publish("s1", "r", item, build, at=at)
        return None if done.alert is None else (AlertKind(done.alert["kind"]), done.alert["n"])

    claims = [
        claim("a", at=1000),  # new
        claim("b", at=1100),  # within the quiet period after the new
        claim("c", at=1700),  # update 1
        claim("d", at=1900),  # quiet again
        claim("e", at=2400),  # update 2
        claim("c", at=9999),  # a re-delivered item: the same answer
        claim("a", at=9999),
    ]
    assert claims == [
        (AlertKind.NEW, 0),
        None,
        (AlertKind.UPDATE, 1),
        None,
        (AlertKind.UPDATE, 2),
        (AlertKind.UPDATE, 1),
        (AlertKind.NEW, 0),
    ]
    assert [a["n"] for a in alerts_in_stream(client)] == [0, 1, 2]  # each published once
    ids = {
        alert_id("r", "s1", AlertKind.NEW),
        alert_id("r", "s1", AlertKind.UPDATE, 1),
        alert_id("r", "s1", AlertKind.UPDATE, 2),
    }
    assert len(ids) == 3  # each update its own stable id


def test_a_held_update_says_until_when(redis_url: str, client: redis.Redis) -> None:
    """The claim script says when the quiet period ends; the item says it per rule (and its
    `item_processed` line), apart from a muted rule and an item that alerted already."""
    from datetime import UTC, datetime

    from structlog.testing import capture_logs

    from monitor.delivery.queue import AlertQueue
    from monitor.pipeline.process import ALREADY_ALERTED, MUTED, quiet_until
    from monitor.store.keys import Keys

    queue = AlertQueue(client, Keys(), maxlen=1000, id_ttl=3600, quiet=600)

    def build(kind: AlertKind, n: int) -> dict:
        return {"id": alert_id("r", "s1", kind, n), "kind": str(kind)}

    assert queue.claim_and_publish("s1", "r", "a", build, at=1000).alert is not None
    held = queue.claim_and_publish("s1", "r", "b", build, at=1100)
    assert held.alert is None and held.held_until == 1600  # the new's time + quiet
    guessed = queue.claim_and_publish("s1", "r", "b", build, at=1100, guess=0)
    assert guessed.alert is None and guessed.held_until == 1600
    now = datetime(2026, 3, 5, 13, 0, tzinfo=UTC)
    assert quiet_until(now.timestamp() + 3980, now) == "update held: quiet until 14:07 UTC"
    assert (
        quiet_until(now.timestamp() + 86400, now) == "update held: quiet until 2026-03-06 13:00 UTC"
    )

    pipeline = make_pipeline(redis_url, client)
    with capture_logs() as logs:
        results = {r.item.source: r for r in map(pipeline.process, read_feeds([SAMPLE_FEEDS]))}
    reasons = {source: r.alerts_held for source, r in results.items() if r.matches}
    assert reasons["The Korea Herald"] == {}  # it raised the `new`
    for source in ("Newser", "RT"):
        (why,) = reasons[source].values()
        assert why.startswith("update held: quiet until ") and why.endswith(" UTC")
        assert results[source].alerts == [] and results[source].alert_suppressed is None
    lines = {e["item"]: e for e in logs if e["event"] == "item_processed"}
    assert lines[results["Newser"].item.id]["alerts_held"] == reasons["Newser"]
    assert lines[results["Fakti.bg"].item.id]["alerts_held"] is None

    again = {r.item.source: r for r in map(pipeline.process, read_feeds([SAMPLE_FEEDS]))}
    assert again["The Korea Herald"].alerts_held == {"dprk-russia-treaty": ALREADY_ALERTED}
    assert again["Newser"].alerts_held == reasons["Newser"]
    story = results["Newser"].placement.story_id
    assert pipeline.desk is not None
    pipeline.desk.mute("dprk-russia-treaty", "story", story)
    muted = pipeline.process(next(i for i in read_feeds([SAMPLE_FEEDS]) if "newser" in i.guid))
    assert muted.alerts_held == {"dprk-russia-treaty": MUTED}


def test_wire_attribution_on_items_and_stories(redis_url: str, client: redis.Redis) -> None:
    pipeline = make_pipeline(redis_url, client)
    credited = {r.item.source: r.wires for r in map(pipeline.process, read_feeds([SAMPLE_FEEDS]))}
    assert credited == {
        "Fakti.bg": ("Reuters", "BTA"),  # "reported Reuters, cited by BTA"
        "Al Mayadeen English": ("KCNA", "Interfax"),  # "KCNA, reported", "according to … Interfax"
        "The Korea Herald": ("Sputnik",),  # "as quoted by state-run Sputnik News"
        "Newser": ("AP", "KCNA"),  # "the AP reports", "Korean Central News Agency said"
        "RT": (),
    }
    (alert,) = alerts_in_stream(client)
    assert alert["item"]["wires"] == ["Sputnik"]
    assert alert["story"]["wires"] == ["BTA", "Interfax", "KCNA", "Reuters", "Sputnik"]


def test_a_name_alone_is_not_a_credit() -> None:
    from monitor.dedup.wires import credited

    assert credited("WASHINGTON (Reuters) - The Senate voted.") == ("Reuters",)
    assert credited("A Reuters photographer and an AP Moller ship were there.") == ()
    assert credited("Tass said on Monday, citing the Kremlin") == ("TASS",)


@pytest.mark.slow
def test_a_huge_article_is_placed_with_bounded_work(redis_url: str, client: redis.Redis) -> None:
    import random

    from monitor.dedup.index import DedupIndex
    from monitor.model import Article
    from monitor.store.keys import Keys

    rng = random.Random(3)
    text = " ".join(f"w{rng.randrange(10**6)}" for _ in range(300_000))  # ~2.4 MB, 260k terms
    index = DedupIndex(client, Keys(), window=3600, near_threshold=0.5, story_threshold=0.3)
    item = Item(guid="urn:huge", url="https://example.org/huge", title="Huge", source="s", feed="f")
    placement = index.place(item, Article(text=text, title="Huge"))
    assert placement.outcome is Outcome.NEW_STORY
    assert index.place(item, Article(text=text, title="Huge")).outcome is Outcome.SEEN


def test_the_server_weighs_terms_as_the_reference_tfidf(client: redis.Redis) -> None:
    """The TF-IDF vector is computed by the daemon from the frequencies Redis keeps
    (dedup/gather.py); it must be the one fingerprint.tfidf gives from the same counts — ties
    at the cut included."""
    import json
    import random

    from monitor.dedup.fingerprint import features, tfidf
    from monitor.dedup.index import QUERY_TERMS, DedupIndex
    from monitor.model import Article
    from monitor.store.keys import Keys

    rng = random.Random(7)
    vocabulary = [f"term{n}" for n in range(300)]
    index = DedupIndex(client, Keys(), window=3600, near_threshold=0.5, story_threshold=0.99)
    df: dict[str, int] = {}
    for n in range(40):
        title = " ".join(rng.choices(vocabulary, k=5))
        text = " ".join(rng.choices(vocabulary, k=rng.randrange(20, 120)))
        item = Item(
            guid=f"urn:t:{n}", url=f"https://example.org/{n}", title=title, source="s", feed="f"
        )
        assert index.place(item, Article(text=text, title=title)).outcome is Outcome.NEW_STORY
        counts = features(title, text)
        expected = tfidf(counts, df, n)
        stored = json.loads(client.hget(Keys().entry(item.id), "terms"))
        assert stored.keys() == expected.weights.keys()
        assert all(abs(stored[t] - w) <= 1.0001e-4 for t, w in expected.weights.items())
        for term in expected.top(QUERY_TERMS):  # posted under its heaviest terms
            assert client.zscore(Keys().term(term), item.id) is not None
        for term in counts:
            df[term] = df.get(term, 0) + 1


def test_the_index_counts_the_originals_of_every_generation_it_keeps(
    client: redis.Redis,
) -> None:
    """Generations go by report time: an archive's reports, placed today, count in the old
    generations they fill (`monitor status`: "N items indexed")."""
    from monitor.dedup.index import DedupIndex
    from monitor.model import Article
    from monitor.store.keys import Keys

    keys = Keys(prefix="gen:")
    index = DedupIndex(client, keys, window=3600, near_threshold=0.5, story_threshold=0.3)
    start = 1_000 * 3600.0  # a generation's first second

    def place(n: int, published: float) -> None:
        item = Item(
            guid=f"urn:w:{n}",
            url=f"https://example.org/w{n}",
            title=f"Item {n}",
            source="s",
            feed="f",
            published=datetime.fromtimestamp(published, UTC),
        )
        index.place(item, Article(text=f"word{n} other{n} text{n}", title=f"Item {n}"))

    assert index.originals() == 0
    for n in range(4):
        place(n, start + 10)
    place(4, start + 3600 + 900)  # the next generation
    place(5, start + 30 * 3600)  # a day later
    assert index.originals() == 6
    assert len(list(client.scan_iter(match=keys.df_pattern))) == 3


def test_an_item_matching_several_rules_reads_its_story_once(
    redis_url: str, client: redis.Redis
) -> None:
    from monitor.rules import RuleSet, ad_hoc_rule

    rules = RuleSet(
        tuple(
            ad_hoc_rule(q, {}, f"r{n}") for n, q in enumerate(("Putin", "Kim", "treaty", "Russia"))
        ),
        {},
    )
    pipeline = runtime.pipeline(client, Settings(redis_url=redis_url), rules, LocalFetcher(ROOT))
    before = client.info("commandstats")
    result = pipeline.process(next(iter(read_feeds([SAMPLE_FEEDS]))))
    after = client.info("commandstats")
    assert len(result.alerts) == len(result.matches) >= 3  # a new story: `new` for each rule
    calls = {k[8:]: v["calls"] - before.get(k, {}).get("calls", 0) for k, v in after.items()}
    assert calls["zcard"] == 1
    # Its scripts: one to decide (the look's reads of buckets and postings), one to record,
    # one to measure what it adds, one to retain, one to index, one per alert (a new story's
    # first report claims `new` without asking first); each once more after NOSCRIPT.
    assert calls["evalsha"] - calls.get("script", 0) == 5 + len(result.alerts)
