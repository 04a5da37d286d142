"""Notification sinks: where `monitor forward` delivers alerts (`[[sinks]]` in monitor.toml).

One module per concern: `config` (the settings of a sink), `routing` (which alerts a sink
takes), `message` (the text people read), `webhook` and `notify` (the two kinds of sink),
`digest` (batching into periods), `runner` (the delivery loop of one sink, and of all),
`overview` (what a sink would send, its backlog).
"""
