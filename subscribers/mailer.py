"""Handing mail over: SMTP (plain, STARTTLS, implicit TLS, AUTH), a Maildir, or memory.

Every mailer takes finished bytes (``subscribers.emails``) and raises
``TemporaryFailure`` (4xx, a dropped connection, a server that is down:
``ConnectionFailure``) or ``PermanentFailure`` (5xx) from
``subscribers.errors``. The SMTP mailer keeps one connection open across a
batch and reconnects after a drop.
"""

from __future__ import annotations

import mailbox
import smtplib
import socket
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from subscribers.errors import ConnectionFailure, DeliveryError, PermanentFailure, TemporaryFailure


class Mailer(Protocol):
    """Something that delivers one message to one recipient."""

    def send(self, sender: str, recipient: str, message: bytes) -> None: ...

    def close(self) -> None: ...


def _failure(code: int, text: str) -> DeliveryError:
    cls = PermanentFailure if 500 <= code < 600 else TemporaryFailure
    return cls(f"{code} {text}".strip(), code=code)


def _reply(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


class SMTPMailer:
    """SMTP submission with one reused connection.

    ``tls``: None (plain), ``"starttls"`` or ``"ssl"`` (implicit TLS, smtps).
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ) -> None:
        self.host, self.port, self.tls = host, port, tls
        self.username, self.password = username, password
        self.timeout = timeout
        self.ssl_context = ssl_context
        # smtplib would call getfqdn() (a DNS lookup) when given None
        self.local_hostname = local_hostname or socket.gethostname()
        self._conn: smtplib.SMTP | None = None
        self.connections = 0  # how many times we connected (tests: one per batch)

    def _connect(self) -> smtplib.SMTP:
        context = self.ssl_context or ssl.create_default_context()
        try:
            conn: smtplib.SMTP
            if self.tls == "ssl":
                conn = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=context, local_hostname=self.local_hostname
                )
            else:
                conn = smtplib.SMTP(self.host, self.port, timeout=self.timeout, local_hostname=self.local_hostname)
            conn.ehlo()
            if self.tls == "starttls":
                conn.starttls(context=context)
                conn.ehlo()
            if self.username:
                conn.login(self.username, self.password or "")
        except UnicodeEncodeError as exc:  # smtplib sends AUTH in ASCII only
            raise ConnectionFailure("SMTP user name and password must be ASCII") from exc
        except smtplib.SMTPAuthenticationError as exc:
            raise ConnectionFailure(f"SMTP login refused: {exc.smtp_code} {_reply(exc.smtp_error)}") from exc
        except smtplib.SMTPResponseException as exc:
            raise ConnectionFailure(f"SMTP server refused us: {exc.smtp_code} {_reply(exc.smtp_error)}") from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise ConnectionFailure(f"cannot reach SMTP server {self.host}:{self.port}: {exc}") from exc
        self.connections += 1
        return conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except OSError:
                pass

    def send(self, sender: str, recipient: str, message: bytes) -> None:
        if self._conn is None:
            self._conn = self._connect()
        conn = self._conn
        try:
            conn.sendmail(sender, [recipient], message)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = exc.recipients.get(recipient, (450, b"recipient refused"))
            raise _failure(code, _reply(text)) from exc
        except smtplib.SMTPSenderRefused as exc:
            # Our own sender address refused: not this recipient's fault.
            self._drop()
            raise ConnectionFailure(f"sender refused: {exc.smtp_code} {_reply(exc.smtp_error)}") from exc
        except smtplib.SMTPServerDisconnected as exc:
            self._drop()
            raise TemporaryFailure(f"connection dropped: {exc}") from exc
        except smtplib.SMTPResponseException as exc:  # SMTPDataError and friends
            if exc.smtp_code == 421:  # the server is closing the connection
                self._drop()
            raise _failure(exc.smtp_code, _reply(exc.smtp_error)) from exc
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            raise TemporaryFailure(f"connection failed: {exc}") from exc

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.quit()
            except (OSError, smtplib.SMTPException):
                conn.close()

    def __enter__(self) -> "SMTPMailer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MaildirMailer:
    """Writes each message as a file in a Maildir (``tmp/`` then ``new/``, unique names)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._box: mailbox.Maildir | None = None

    def send(self, sender: str, recipient: str, message: bytes) -> None:
        if self._box is None:
            for sub in ("tmp", "new", "cur"):  # mailbox only makes them for a new directory
                (self.path / sub).mkdir(parents=True, exist_ok=True)
            self._box = mailbox.Maildir(str(self.path), factory=None, create=True)
        # What a delivery agent adds, so a reader sees the envelope; LF line ends on disk.
        envelope = f"Return-Path: <{sender}>\nDelivered-To: {recipient}\n".encode("ascii")
        try:
            self._box.add(envelope + message.replace(b"\r\n", b"\n"))
        except OSError as exc:
            raise TemporaryFailure(f"cannot write to the maildir {self.path}: {exc}") from exc

    def close(self) -> None:
        self._box = None


@dataclass
class SentMessage:
    sender: str
    recipient: str
    message: bytes


@dataclass
class MemoryMailer:
    """A fake for tests: keeps what was sent; ``failures[recipient]`` is raised in turn."""

    sent: list[SentMessage] = field(default_factory=list)
    failures: dict[str, list[DeliveryError]] = field(default_factory=dict)
    closed: int = 0

    def send(self, sender: str, recipient: str, message: bytes) -> None:
        queue = self.failures.get(recipient)
        if queue:
            raise queue.pop(0)
        self.sent.append(SentMessage(sender, recipient, message))

    def close(self) -> None:
        self.closed += 1

    def to(self, recipient: str) -> list[bytes]:
        return [m.message for m in self.sent if m.recipient == recipient]


def mailer_from_url(url: str, *, timeout: float = 30.0) -> Mailer:
    """``smtp://user:pass@host:port[?starttls=1]``, ``smtps://…`` or ``maildir://PATH``."""
    parts = urlsplit(url)
    if parts.scheme == "maildir":
        path = unquote(parts.netloc + parts.path)
        if not path:
            raise ValueError("maildir:// needs a path")
        return MaildirMailer(path)
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError(f"unsupported mail URL scheme {parts.scheme!r}")
    query = parse_qs(parts.query)
    starttls = (query.get("starttls") or ["0"])[0].lower() in ("1", "true", "yes", "on")
    if parts.scheme == "smtps":
        tls, default_port = "ssl", 465
    elif starttls:
        tls, default_port = "starttls", 587
    else:
        tls, default_port = None, 25
    if query.get("timeout"):
        timeout = float(query["timeout"][0])
    return SMTPMailer(
        parts.hostname or "localhost",
        parts.port or default_port,
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        timeout=timeout,
        # gethostname, not getfqdn: no DNS lookup just to greet the server
        local_hostname=query["helo"][0] if query.get("helo") else socket.gethostname(),
    )


__all__ = [
    "Mailer",
    "MaildirMailer",
    "MemoryMailer",
    "SMTPMailer",
    "SentMessage",
    "mailer_from_url",
]
