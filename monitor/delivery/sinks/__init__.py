"""Notification sinks: where `monitor forward` delivers alerts (`[[sinks]]` in monitor.toml).

A sink's settings and the filter of what it takes are vocabulary (`monitor.sinkconfig`,
`monitor.alertfilter`). Here, one module per concern: `message` (the text people read),
`webhook` and `notify` (the two kinds of sink), `build` (a sink from its settings), `digest`
(batching into periods), `runner` (the delivery loop of one sink, and of all), `overview`
(what a sink would send, its backlog).

May import: the rest of `delivery`, the store and the vocabulary.
"""
