"""Old module names, kept importable for one release after the house was laid out by stage
(0.2): `import monitor.consumer` gives `monitor.delivery.consumer`, and so on."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from types import ModuleType

MOVED = {
    "monitor.alerts": "monitor.delivery.alerts",
    "monitor.queue": "monitor.delivery.queue",
    "monitor.consumer": "monitor.delivery.consumer",
    "monitor.forward": "monitor.delivery.forward",
    "monitor.sinks": "monitor.delivery.sinks",
    "monitor.retention": "monitor.store.retention",
    "monitor.poll": "monitor.ingest.poll",
    "monitor.fetch": "monitor.ingest.fetch",
    "monitor.feeds": "monitor.ingest.feeds",
    "monitor.schedule": "monitor.ingest.schedule",
    "monitor.registry": "monitor.ingest.registry",
    "monitor.opml": "monitor.ingest.opml",
    "monitor.analysis": "monitor.dedup.analysis",
    "monitor.runtime": "monitor.pipeline.runtime",
    "monitor.replay": "monitor.pipeline.replay",
    "monitor.backfill": "monitor.pipeline.backfill",
    "monitor.desk": "monitor.retained.cards",
    "monitor.progress": "monitor.cli.progress",
    "monitor.connection": "monitor.store.connection",
    "monitor.embedded": "monitor.store.embedded",
    "monitor.localcluster": "monitor.store.localcluster",
    "monitor.batched": "monitor.store.batched",
    "monitor.redisguard": "monitor.store.redisguard",
    "monitor.scripts": "monitor.store.scripts",
    "monitor.layout": "monitor.store.layout",
    "monitor.keys": "monitor.store.keys",
}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old name (or a module under an old package name) and hands out the new
    module itself, so both names share one module object."""

    @staticmethod
    def _target(name: str) -> str | None:
        for old, new in MOVED.items():
            if name == old or name.startswith(old + "."):
                return new + name[len(old) :]
        return None

    def find_spec(self, name: str, path: object = None, target: object = None):  # type: ignore[override]
        new = self._target(name)
        return importlib.util.spec_from_loader(name, self) if new else None

    def create_module(self, spec) -> ModuleType:  # type: ignore[no-untyped-def]
        new = self._target(spec.name)
        assert new is not None
        module = importlib.import_module(new)
        sys.modules[spec.name] = module
        return module

    def exec_module(self, module: ModuleType) -> None:
        pass


def install() -> None:
    if not any(isinstance(finder, _Alias) for finder in sys.meta_path):
        sys.meta_path.append(_Alias())
