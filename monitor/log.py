"""structlog set-up: key-value events, JSON when not on a terminal, one stream for
structlog and stdlib loggers (APScheduler, aiohttp, httpx) alike."""

from __future__ import annotations

import logging
import sys

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
