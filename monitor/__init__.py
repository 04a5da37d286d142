"""news-monitor: one alert per story, not per copy.

The house, by stage (imports run downward only; tests/test_layers.py holds it):

    cli, daemon, web      the ways in: the command, the long-running daemon, the desk
    pipeline              the one place where the stages meet
    delivery              alerts, the alerts stream, consumers, forwarding, sinks
    rules                 topic rules: files -> queries -> explained matches
    dedup                 analysis, fingerprints, the story index
    extract               article text and metadata from a page
    ingest                feeds, polling, the items stream
    retained              retained items and the desk's cards
    store                 Redis: connections, keys, scripts, streams
    config, sinkconfig, alertfilter, model, units, errors, log, text   the vocabulary

May import: only `_moved`, the old module names kept importable for one release.
"""

from monitor import _moved

__version__ = "0.1.0"

_moved.install()
