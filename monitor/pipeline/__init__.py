"""The one place where the stages meet.

    ingest -> extract -> dedup -> rules -> delivery
    (items)   (article)  (story)  (matches) (alerts)

`process` runs one item through the stages (`Pipeline.process`); `runtime` builds a
pipeline from the settings; `replay` feeds files through it; `backfill` raises a new rule's
alerts over retained items.

May import: every stage, `retained`, the store and the vocabulary. Imported only by the
daemon, the desk and the CLI.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    # `monitor.pipeline.Pipeline` kept working when pipeline.py became this package.
    if name in {"Pipeline", "Processed"}:
        from monitor.pipeline import process

        return getattr(process, name)
    raise AttributeError(name)
