"""The control plane: the rules in force, reloaded when their files change (or on SIGHUP)
with the old ones kept if the new ones do not load, and the automatic backfill of a rule
that asks for it (`backfill: 3d`), once per version of the rule."""

from __future__ import annotations

import time

import redis
import structlog

from monitor.config import Settings
from monitor.daemon.metrics import Metrics
from monitor.model import stable_id
from monitor.pipeline import backfill
from monitor.pipeline.process import Pipeline
from monitor.rules import RuleFiles, RuleSet
from monitor.store.keys import Keys

log = structlog.get_logger("monitor.daemon")


class RuleControl:
    def __init__(self, settings: Settings, client: redis.Redis, metrics: Metrics) -> None:
        self.settings = settings
        self.client = client
        self.keys = Keys(settings.prefix)
        self.metrics = metrics
        self.files = RuleFiles(settings.rules_dir)
        self.metrics.rules.set(len(self.files.rules.rules))

    @property
    def rules(self) -> RuleSet:
        return self.files.rules

    def reload(self) -> RuleSet | None:
        """The new rules when the directory changed and they load; None otherwise (a
        broken change is logged once, and the rules in force keep running)."""
        rules = self.files.reload()
        if not isinstance(rules, RuleSet):
            return None
        self.metrics.rules.set(len(rules.rules))
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
