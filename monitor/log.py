"""structlog set-up: key-value events, JSON when not on a terminal, one stream for
structlog and stdlib loggers (APScheduler, aiohttp, httpx) alike."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator

import structlog

_QUIET = ("apscheduler", "aiohttp", "httpx", "httpcore", "charset_normalizer", "apprise")
# Their ERRORs are about one page ("empty HTML tree"): the pipeline reports that page itself
# (`article_unavailable`, a warning), so only their critical messages pass.
_SILENT = ("trafilatura", "htmldate", "courlan", "justext")


_for_people = False


def for_people() -> bool:
    """Whether the log is rendered for a person (at a terminal) rather than as JSON: a
    command that prints what happened then need not log it too."""
    return _for_people


def configure(level: str = "warning", *, json: bool | None = None) -> None:
    global _for_people
    json = not sys.stderr.isatty() if json is None else json
    _for_people = not json
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor
    if json:
        renderer = structlog.processors.JSONRenderer()
        shared.append(
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            )
        )
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in _QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    for name in _SILENT:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


class _Leave(logging.Filter):
    def __init__(self, events: frozenset[str]) -> None:
        super().__init__()
        self.events = events

    def filter(self, record: logging.LogRecord) -> bool:
        # structlog hands the stdlib its event dict as the record's message
        event = record.msg.get("event") if isinstance(record.msg, dict) else record.msg
        return event not in self.events


@contextlib.contextmanager
def counted_instead(*events: str) -> Iterator[None]:
    """Leave these events out while inside: the command counts them and says so once.
    At level info or finer each is still logged, for whoever asked for the detail."""
    root = logging.getLogger()
    if root.getEffectiveLevel() <= logging.INFO:
        yield
        return
    leave = _Leave(frozenset(events))
    handlers = list(root.handlers)
    for handler in handlers:
        handler.addFilter(leave)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(leave)
