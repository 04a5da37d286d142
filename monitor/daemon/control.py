"""The control plane: the rules in force, reloaded when their files change (or on SIGHUP)
with the old ones kept if the new ones do not load, and the automatic backfill of a rule
that asks for it (`backfill: 3d`), once per version of the rule."""

from __future__ import annotations

import time
from pathlib import Path

import redis
import structlog

from monitor.config import Settings
from monitor.daemon.metrics import Metrics
from monitor.model import stable_id
from monitor.pipeline import backfill
from monitor.pipeline.process import Pipeline
from monitor.rules import RuleSet, load_rules
from monitor.store.keys import Keys

log = structlog.get_logger("monitor.daemon")


class RuleControl:
    def __init__(self, settings: Settings, client: redis.Redis, metrics: Metrics) -> None:
        self.settings = settings
        self.client = client
        self.keys = Keys(settings.prefix)
        self.metrics = metrics
        self.rules, self._mark = self._load()

    def _signature(self) -> tuple:
        directory = self.settings.rules_dir
        try:
            return tuple(
                sorted(
                    (p.name, p.stat().st_mtime_ns, p.stat().st_size)
                    for p in Path(directory).iterdir()
                )
            )
        except OSError:
            return ()

    def _load(self) -> tuple[RuleSet, tuple]:
        mark = self._signature()
        rules = load_rules(self.settings.rules_dir)
        self.metrics.rules.set(len(rules.rules))
        return rules, mark

    def reload(self) -> RuleSet | None:
        """The new rules when the directory changed and they load; None otherwise (a
        broken change is logged once, and the rules in force keep running)."""
        if self._signature() == self._mark:
            return None
        try:
            rules, mark = self._load()
        except Exception as exc:  # whatever a rule file does, the old rules keep running
            self._mark = self._signature()  # do not log it again every check
            log.error("rules_reload_failed", error=str(exc), kept=len(self.rules.rules))
            return None
        self.rules, self._mark = rules, mark
        log.info("rules_reloaded", rules=len(rules.rules))
        return rules

    def backfill_new(self, pipeline: Pipeline) -> None:
        """Run each rule that asks for it (`backfill: 3d`) over that past, once per version
        of the rule (a changed query backfills again; alert ids keep it idempotent)."""
        assert pipeline.retained is not None
        for rule in self.rules.rules:
            if not rule.backfill or not rule.enabled:
                continue
            version = stable_id(rule.query, ",".join(rule.languages), str(rule.min_score))
            marker = self.keys.backfilled(rule.id)
            if self.client.get(marker) == version:
                continue
            report = backfill.run(
                rule,
                pipeline.retained,
                pipeline,
                since=time.time() - rule.backfill,
                dry_run=False,
            )
            self.client.set(marker, version)
            self.metrics.alerts.inc(report.alerts)
            log.info(
                "rule_backfilled",
                rule=rule.id,
                items=report.items,
                matched=report.matched,
                stories=len(report.stories),
                alerts=report.alerts,
            )
