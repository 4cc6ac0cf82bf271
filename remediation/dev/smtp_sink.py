"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives: the demo's mail
sink (`manage.py smtp_sink`, started by `dev.py up`) and the notification tests' server.

Each message is kept in memory and, with a folder, written there as <n>.eml (the portal
lists that folder when EMAIL_SINK_DIR points at it). Faults for tests: per recipient, a
list of RCPT replies to give first ("451 4.3.0 try later", "550 5.1.1 no such user"); and
`hold`, recipients whose DATA is stored and then not answered until `release` is set (a
worker killed while waiting for the reply); `drop`, recipients whose DATA is stored and the
connection closed without a reply.
"""

from __future__ import annotations

import email
import email.policy
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)


@dataclass
class SinkHandler:
    folder: Path | None = None
    received: list[Received] = field(default_factory=list)
    rcpt_faults: dict[str, list[str]] = field(default_factory=dict)
    data_faults: dict[str, list[str]] = field(default_factory=dict)
    hold: set[str] = field(default_factory=set)
    drop: set[str] = field(default_factory=set)  # store, then hang up without a reply
    release: threading.Event = field(default_factory=threading.Event)
    held: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        with self.lock:
            faults = self.rcpt_faults.get(address.lower())
            if faults:
                return faults.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        rcpts = [r.lower() for r in envelope.rcpt_tos]
        with self.lock:
            for r in rcpts:
                faults = self.data_faults.get(r)
                if faults:
                    return faults.pop(0)
            item = Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content))
            self.received.append(item)
            number = len(self.received)
            if self.folder is not None:
                self.folder.mkdir(parents=True, exist_ok=True)
                (self.folder / f"{time.time_ns()}-{number}.eml").write_bytes(item.data)
        if self.drop.intersection(rcpts):
            server.transport.close()
            return "250 never seen by the client"
        if self.hold.intersection(rcpts):
            self.held.set()
            while not self.release.is_set():  # the client waits for the reply meanwhile
                await _sleep(0.05)
        return f"250 2.0.0 OK queued as sink-{number}"

    def to(self, address: str) -> list[Received]:
        """The messages received for `address`."""
        with self.lock:
            return [m for m in self.received if address.lower() in (r.lower() for r in m.rcpt_tos)]


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


def start_sink(
    handler: SinkHandler, host: str = "127.0.0.1", port: int = 0
) -> tuple[Controller, int]:
    """Start the server in a thread; returns the controller (stop() it) and the port."""
    if port == 0:
        import socket

        with socket.socket() as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
    import logging

    # aiosmtpd logs every command, addresses included: only its warnings, please.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    controller = Controller(handler, hostname=host, port=port)
    controller.start()
    return controller, port
