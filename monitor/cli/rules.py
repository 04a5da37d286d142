"""`monitor rules check | test | explain | backfill`."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from monitor.cli.output import Command, clip, counted, iso_time, story_json
from monitor.cli.progress import Progress
from monitor.config import Settings
from monitor.errors import MonitorError
from monitor.pipeline import runtime
from monitor.rules import Document, load_rules
from monitor.rules.match import evaluate, explain


def register(commands: Any, command: Command) -> None:
    p = command(commands, "rules", "check or test rule files")
    sub = p.add_subparsers(title="rules commands", metavar="ACTION", required=True)
    q = command(sub, "check", "validate every rule; errors name file, line and column")
    q.add_argument("dir", nargs="?", type=Path, help="rules directory (default rules/)")
    q.set_defaults(run=cmd_rules_check)
    q = command(sub, "test", "run each rule's own examples")
    q.add_argument("dir", nargs="?", type=Path, help="rules directory (default rules/)")
    q.set_defaults(run=cmd_rules_test)
    q = command(sub, "explain", "whether a rule matches a text, and why")
    q.add_argument("rule", help="rule id")
    given = q.add_mutually_exclusive_group(required=True)
    given.add_argument("--text", help="the article text")
    given.add_argument("--file", type=Path, help="a file with the article text (- for stdin)")
    given.add_argument("--url-from-replay", metavar="GUID", help="an item of the replay feeds")
    q.add_argument("--title", default="", help="the title, with --text or --file")
    q.add_argument(
        "--feeds",
        type=Path,
        default=Path("sample_feeds"),
        help="where --url-from-replay looks (default sample_feeds/)",
    )
    q.add_argument("--rules", type=Path, help="rules directory (default rules/)")
    q.set_defaults(run=cmd_rules_explain)
    q = command(sub, "backfill", "run a rule over the retained items of the past")
    q.add_argument("rule", help="rule id")
    q.add_argument("--since", default="3d", help="how far back: 90m, 12h, 3d, 2w (default 3d)")
    q.add_argument("--dry-run", action="store_true", help="print what would match; publish nothing")
    q.add_argument("--json", action="store_true", help="one JSON object per story, then a summary")
    q.add_argument("--rules", type=Path, help="rules directory (default rules/)")
    q.set_defaults(run=cmd_rules_backfill)


def cmd_rules_check(args: argparse.Namespace, settings: Settings) -> int:
    """Every problem of every file in one run: errors (exit 1) and lint warnings."""
    from monitor.rules.load import check_rules

    directory = args.dir or settings.rules_dir
    checked = check_rules(directory)
    for error in checked.errors:
        print(error, file=sys.stderr)
    for warning in checked.warnings:
        print(f"{warning} (warning)", file=sys.stderr)
    aliases = counted(len(checked.aliases), "alias", "aliases")
    counts = f"{counted(len(checked.rules), 'rule')}, {aliases}"
    lint = f", {counted(len(checked.warnings), 'warning')}" if checked.warnings else ""
    if checked.errors:
        files = len({e.path for e in checked.errors})
        print(
            f"{directory}: {counted(len(checked.errors), 'error')} in {counted(files, 'file')}; "
            f"{counts} valid{lint}"
        )
        return 1
    print(f"{directory}: {counts}, all valid{lint}")
    return 0


def cmd_rules_test(args: argparse.Namespace, settings: Settings) -> int:
    rules = load_rules(args.dir or settings.rules_dir)
    failures = 0
    for rule in rules.rules:
        for expected, examples in ((True, rule.examples_match), (False, rule.examples_no_match)):
            for text in examples:
                got = rule.match(Document(text=text)) is not None
                if got != expected:
                    failures += 1
                    want = "match" if expected else "not match"
                    print(f"FAIL {rule.id}: expected to {want}: {text!r}")
    total = sum(len(r.examples_match) + len(r.examples_no_match) for r in rules.rules)
    print(f"{total - failures} passed, {failures} failed")
    return 1 if failures else 0


def cmd_rules_explain(args: argparse.Namespace, settings: Settings) -> int:
    rules = load_rules(settings.rules_dir)
    rule = rules.get(args.rule)
    if rule is None:
        known = ", ".join(r.id for r in rules.rules)
        raise MonitorError(f"no rule {args.rule!r} in {settings.rules_dir} (rules: {known})")
    doc = _explain_document(args)
    result = rule.match(doc)
    status = f"MATCH, score {result.score}" if result else "NO MATCH"
    print(f"{rule.id} ({rule.name}): {status} (min_score {rule.min_score})")
    print(f"  query: {rule.query}")
    for clause in rule.clauses:
        spans = evaluate(clause, doc)
        print(f"  {'✓' if spans is not None else '✗'} {clause}")
        for hit in explain(spans or [], doc)[:6]:
            print(f"      {hit.field}: {hit.term} — {hit.snippet}")
    if result is None and rule.languages and doc.lang and doc.lang not in rule.languages:
        print(f"  language {doc.lang!r} is not one of {', '.join(rule.languages)}")
    return 0 if result else 1


def _explain_document(args: argparse.Namespace) -> Document:
    from monitor.extract import detect_language
    from monitor.ingest.fetch import LocalFetcher
    from monitor.pipeline.process import article_of
    from monitor.pipeline.replay import feed_files, read_feeds

    if args.text is not None or args.file is not None:
        if args.file is not None:
            text = sys.stdin.read() if str(args.file) == "-" else _read_text(args.file)
        else:
            text = args.text
        return Document(title=args.title, text=text, lang=detect_language(text))
    files = feed_files([args.feeds])
    item = next((i for i in read_feeds(files) if args.url_from_replay in (i.guid, i.url)), None)
    if item is None:
        raise MonitorError(f"no item with GUID or URL {args.url_from_replay!r} in {args.feeds}")
    fetcher = LocalFetcher(*{f.parent for f in files})
    article, _ = article_of(item, fetcher)
    return Document(
        title=item.title or article.title,
        text=article.text,
        source=item.source,
        lang=article.language,
        url=article.canonical_url or item.url,
    )


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MonitorError(f"{path}: {exc}") from exc


def cmd_rules_backfill(args: argparse.Namespace, settings: Settings) -> int:
    from monitor.ingest.fetch import LocalFetcher
    from monitor.pipeline import backfill
    from monitor.units import parse_duration

    rules = load_rules(settings.rules_dir)
    rule = rules.get(args.rule)
    if rule is None:
        raise MonitorError(f"no rule {args.rule!r} in {settings.rules_dir}")
    try:
        since = time.time() - parse_duration(args.since)
    except ValueError as exc:
        raise MonitorError(f"--since: {exc}") from exc
    with runtime.redis_client(settings) as client:
        pipeline = runtime.pipeline(client, settings, rules, LocalFetcher())
        assert pipeline.retained is not None
        progress = Progress(
            pipeline.retained.count(), "backfill", enabled=False if args.json else None
        )
        report = backfill.run(
            rule,
            pipeline.retained,
            pipeline,
            since=since,
            dry_run=args.dry_run,
            progress=progress.advance,
        )
        progress.close()
    summary = {
        "rule": rule.id,
        "items": report.items,
        "matched": report.matched,
        "stories": len(report.stories),
        "alerts_published": report.alerts,
        "dry_run": args.dry_run,
    }
    if args.json:
        for story in report.stories.values():
            print(json.dumps(story_json(story), ensure_ascii=False))
        print(json.dumps({"summary": summary}))
        return 0
    for story in report.stories.values():
        _, match = story.matches[0]
        state = "already alerted live" if story.already_alerted else "no alert before"
        print(
            f"story {story.story_id[:8]}: {counted(len(story.matches), 'matching item')}, {state}"
        )
        for kept, _ in story.matches:
            line = f"{kept.item.source}: {clip(kept.item.title, 60)}  ({kept.placement.outcome})"
            print(f"  {iso_time(kept.processed_at)}  {line}")
        for hit in match.hits[:4]:
            print(f"    {hit.field}: {hit.term} — {hit.snippet}")
        if story.alerts:
            print(f"  published: {', '.join(story.alerts)}")
    verb = "would match" if args.dry_run else "matched"
    print(
        f"\n{rule.id}: {counted(report.items, 'retained item')} since {args.since}, "
        f"{report.matched} {verb}, "
        f"{counted(len(report.stories), 'story', 'stories')}, "
        f"{counted(report.alerts, 'alert')} published" + (" (dry run)" if args.dry_run else "")
    )
    return 0
