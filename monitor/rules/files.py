"""The rules in force for a long-running process (the daemon, the desk): the rules directory
loaded again when its files change, the previous set kept when a change does not load."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import structlog

from monitor.rules.load import load_rules
from monitor.rules.model import RuleSet

log = structlog.get_logger(__name__)


class RuleFiles:
    """A rules directory's rule set in force, loaded again when its files change (names,
    sizes, times): the daemon's rules, and a desk's. A change that does not load keeps the
    rules in force, logged once and told (`error`) until the files change again."""

    def __init__(self, directory: Path, *, every: float = 0.0) -> None:
        self.directory = Path(directory)
        self.every = every  # seconds at least between two looks at the files (`current`)
        self._lock = threading.Lock()  # one reload at a time (a desk serves from threads)
        self._looked = time.monotonic()
        self._mark = self._signature()
        self.rules = load_rules(self.directory)  # the first load must succeed: raises
        self.error = ""  # why the directory's files are not the rules in force ("": they are)

    def _signature(self) -> tuple:
        try:
            return tuple(
                sorted(
                    (p.name, p.stat().st_mtime_ns, p.stat().st_size)
                    for p in self.directory.iterdir()
                )
            )
        except OSError:
            return ()

    def reload(self) -> RuleSet | Exception | None:
        """The new rules when the files changed and they load, the error when they do not
        (the rules in force kept), None when nothing changed."""
        with self._lock:
            mark = self._signature()
            if mark == self._mark:
                return None
            self._mark = mark  # a broken change is tried (and logged) once
            try:
                rules = load_rules(self.directory)
            except Exception as exc:  # whatever a rule file does, the old rules keep running
                self.error = str(exc)
                log.error("rules_reload_failed", error=self.error, kept=len(self.rules.rules))
                return exc
            self.rules, self.error = rules, ""
            log.info("rules_reloaded", rules=len(rules.rules))
            return rules

    def current(self) -> RuleSet:
        """The rules in force, loaded again first if the files changed (looked at once
        every `every` seconds at most)."""
        now = time.monotonic()
        if now - self._looked >= self.every:
            self._looked = now
            self.reload()
        return self.rules
