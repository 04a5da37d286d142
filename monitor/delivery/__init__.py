"""Delivery, the last stage: alerts out.

Owns building an alert (`alerts`), publishing it once to the alerts stream (`queue`, with
its claim script), reading it back as a consumer (`consumer`), forwarding to webhooks
(`forward`) and the notification sinks (`sinks/`: Apprise, Standard Webhooks, digests).

May import: earlier stages (`rules`, `dedup`, `extract`, `ingest`), the store and the
vocabulary. Never the pipeline, the daemon, the desk or the CLI.
"""
