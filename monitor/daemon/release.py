"""Staged alerts shown to consumers (`alerts.durable_hold`): a thread that moves each staged
alert to the alerts stream once it is old enough (AlertQueue.release). It wakes when the
next one is due, at once when this daemon stages a new one, and every IDLE seconds besides
(for those of a daemon that died with some staged). Every daemon releases any daemon's.

At stop it goes on until nothing is staged or the hold has passed, so that the last alerts
do not wait for the next daemon to start. A daemon without a hold (0) runs it too, and
releases at once what daemons with one left staged (all daemons of a Redis should share the
setting)."""

from __future__ import annotations

import threading
import time

import structlog

from monitor.daemon.metrics import Metrics
from monitor.delivery.queue import AlertQueue

log = structlog.get_logger("monitor.daemon")

IDLE = 1.0  # seconds between two looks when nothing is staged
RETRY = 1.0  # seconds after a failed release (Redis away or refusing writes)


class Releaser:
    def __init__(self, queue: AlertQueue, metrics: Metrics) -> None:
        self.queue = queue
        self.metrics = metrics
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="release", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        """Release what is staged once it is due (within the hold), then end."""
        self.stopping.set()
        self.queue.staging.set()  # wake it
        if self.thread.is_alive():
            self.thread.join(self.queue.hold + 2 * RETRY + 1)

    def _run(self) -> None:
        failing = False
        until: float | None = None  # once stopping: when to give up
        while True:
            self.queue.staging.clear()
            try:
                done = self.queue.release()
                wait = done.wait
                self.metrics.alerts_staged.set(done.staged)
                if failing:
                    log.info("alerts_released_again")
                failing = False
            except Exception as exc:  # the thread's loop boundary: it must keep releasing
                if not failing:
                    log.warning("alerts_release_failed", error=str(exc), retry_in=RETRY)
                failing, wait = True, RETRY
            if self.stopping.is_set():
                now = time.monotonic()
                until = now + self.queue.hold + RETRY if until is None else until
                if wait is None or now >= until:
                    return
                time.sleep(min(wait, until - now))
            elif wait is None:
                self.queue.staging.wait(IDLE)
            else:
                self.stopping.wait(wait)
