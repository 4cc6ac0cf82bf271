"""Edge calls of a batch in parallel: a bounded pool, one reused HTTP session per thread,
one backoff for the whole pool.

`run_pool(items, call, concurrency, budget_end)` hands the items, in order, to at most
`concurrency` threads (EDGE_CONCURRENCY); each thread takes an HTTP session from the
process's free list (connections are reused across batches), calls `call(item, http)` for
one item after another and closes its Django database connections when it is done. No
thread takes a new item once the batch's time budget has run out (a batch always gets at
least one call made); the items not taken go to the next batch. With a concurrency of 1
(or one item) everything runs in the calling thread.

The sessions retry as remediation/integrations/edge.py does (connect errors and
429/502/503/504, never after the request was sent), with one difference: a 429 or 503
pauses the whole process's pool (`GATE`), for the answer's Retry-After (capped at
EDGE_RETRY_AFTER_CAP) or else the backoff, and every call, its retries and every new call
wait for the gate to open. A rate-limited function is not hammered by the other threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import requests
from django.conf import settings
from django.db import connections
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError

from remediation.integrations.edge import _CappedRetry, retry_policy

GATED_STATUSES = frozenset({429, 503})
T = TypeVar("T")
R = TypeVar("R")


class Gate:
    """A pause every thread of the pool waits out: the latest end any call asked for."""

    def __init__(self) -> None:
        self._until = 0.0
        self._lock = threading.Lock()
        self.pauses = 0  # how many times a 429/503 closed it (tests, logs)

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._until = max(self._until, time.monotonic() + max(0.0, seconds))
            self.pauses += 1

    def wait(self) -> float:
        """Sleep until the gate is open; the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                left = self._until - time.monotonic()
            if left <= 0:
                return waited
            time.sleep(left)
            waited += left


GATE = Gate()


class GatedRetry(_CappedRetry):
    """The edge client's retry policy, with 429/503 waits taken at the pool's gate."""

    gate: Gate | None = None

    def new(self, **kw: Any) -> GatedRetry:
        retry = super().new(**kw)
        retry.gate = self.gate  # type: ignore[attr-defined]
        return retry  # type: ignore[return-value]

    def increment(self, *args: Any, **kw: Any) -> GatedRetry:
        response = kw.get("response") if "response" in kw else (args[2] if len(args) > 2 else None)
        try:
            retry = super().increment(*args, **kw)
        except MaxRetryError:
            self._close_gate(response, self)  # out of retries: the pool still waits
            raise
        self._close_gate(response, retry)
        return retry

    def _close_gate(self, response: Any, retry: _CappedRetry) -> None:
        if self.gate is None or response is None or response.status not in GATED_STATUSES:
            return
        after = retry.get_retry_after(response)
        if after is None:
            after = max(retry.get_backoff_time(), float(self.backoff_factor))
        self.gate.pause(after)

    def sleep(self, response: Any = None) -> None:
        if self.gate is not None and response is not None and response.status in GATED_STATUSES:
            self.gate.wait()  # the Retry-After (or backoff) this answer asked for, and others'
            return
        super().sleep(response)


def _retry(gate: Gate) -> GatedRetry:
    base = retry_policy(
        settings.EDGE_MAX_RETRIES, settings.EDGE_BACKOFF_BASE, settings.EDGE_RETRY_AFTER_CAP
    )
    retry = GatedRetry(
        total=base.total,
        connect=base.connect,
        read=base.read,
        status=base.status,
        redirect=base.redirect,
        other=base.other,
        allowed_methods=base.allowed_methods,
        status_forcelist=base.status_forcelist,
        backoff_factor=base.backoff_factor,
        backoff_jitter=base.backoff_jitter,
        respect_retry_after_header=True,
        raise_on_status=False,
        raise_on_redirect=False,
    )
    retry.retry_after_cap = settings.EDGE_RETRY_AFTER_CAP
    retry.gate = gate
    return retry


_free: list[tuple[tuple[Any, ...], requests.Session]] = []
_free_lock = threading.Lock()
sessions_made = 0  # HTTP sessions built by this process (tests: they are reused)


def _settings_key(gate: Gate) -> tuple[Any, ...]:
    return (
        id(gate),
        settings.EDGE_MAX_RETRIES,
        settings.EDGE_BACKOFF_BASE,
        settings.EDGE_RETRY_AFTER_CAP,
    )


def take_session(gate: Gate = GATE) -> requests.Session:
    """A session from the free list (built for the current retry settings), or a new one."""
    global sessions_made
    key = _settings_key(gate)
    with _free_lock:
        while _free:
            found_key, session = _free.pop()
            if found_key == key:
                return session
            session.close()
        sessions_made += 1
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=_retry(gate), pool_maxsize=1)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def give_back(session: requests.Session, gate: Gate = GATE) -> None:
    with _free_lock:
        _free.append((_settings_key(gate), session))


def run_pool(
    items: list[T],
    call: Callable[[T, requests.Session], R],
    *,
    concurrency: int,
    budget_end: float,
    gate: Gate = GATE,
) -> list[R]:
    """`call(item, http)` for the items in order, at most `concurrency` at a time, none
    taken after `budget_end` (time.monotonic()) once one was; the results, in the order
    the calls ended. An exception in a call is raised here once every thread stopped."""
    results: list[R] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    queue: Iterator[T] = iter(items)
    started = 0

    def take() -> tuple[bool, T | None]:
        nonlocal started
        gate.wait()
        with lock:
            if errors or (started and time.monotonic() >= budget_end):
                return False, None
            for item in queue:
                started += 1
                return True, item
            return False, None

    def work(own_connections: bool) -> None:
        http = take_session(gate)
        try:
            while True:
                ok, item = take()
                if not ok:
                    return
                result = call(item, http)  # type: ignore[arg-type]
                with lock:
                    results.append(result)
        except BaseException as exc:  # re-raised in the calling thread
            with lock:
                errors.append(exc)
        finally:
            give_back(http, gate)
            if own_connections:
                connections.close_all()

    width = max(1, min(concurrency, len(items)))
    if width == 1:
        work(own_connections=False)
    else:
        threads = [
            threading.Thread(target=work, args=(True,), name=f"edge-pool-{n}", daemon=True)
            for n in range(width)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    if errors:
        raise errors[0]
    return results
