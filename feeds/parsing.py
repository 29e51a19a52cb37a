"""The pure half of a refresh, and the worker processes that run it.

``parse_job`` takes a fetched feed's bytes and returns the parse with every
entry made ready for storage (sanitized, plain text, slug, stems, hashes:
``feeds.decide.prepare_entries``). It is pure, so it can run anywhere: in
the fetch thread, or in a ``ParsePool`` worker process, where feedparser's
CPU work does not hold the writing thread's GIL.

A ``ParsePool`` is owned by whoever runs a pass (the scheduler process,
``syndicate poll``) and kept between passes; a web worker never starts one
(``feeds.ingest.refresh_source`` parses in its own thread). Bytes go in and
frozen dataclasses come out; errors cross as text and become ``ParseError``
again on the calling side, so failures stay values on the source's row.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, Callable

from feeds.decide import PreparedEntry, prepare_entries
from feeds.errors import SourceError
from feeds.parse import parse_feed
from feeds.types import ParsedFeed

log = logging.getLogger(__name__)

PARSE_TIMEOUT = 120.0  # seconds one feed may take (the largest allowed, 10 MiB, takes a few)
START_TIMEOUT = 60.0  # seconds a new worker process may take to import and say it is ready
_READY = "ready"


@dataclass(frozen=True)
class ParseJob:
    """What the pure step needs: the fetched bytes, where they came from, whose they are, and when."""

    source_id: int
    content: bytes
    headers: dict[str, str]
    url: str
    country_code: str
    now: datetime


@dataclass(frozen=True)
class ParseAnswer:
    """The parse and its prepared entries, or what was wrong (the message of a ``ParseError``)."""

    parsed: ParsedFeed | None = None
    prepared: tuple[PreparedEntry, ...] = ()
    error: str | None = None


def parse_job(job: ParseJob) -> ParseAnswer:
    """Parse a fetched feed and prepare its entries for storage. Pure; never raises."""
    try:
        parsed = parse_feed(job.content, headers=job.headers, url=job.url, resource_id=job.source_id)
        prepared = prepare_entries(parsed, country_code=job.country_code, now=job.now)
    except SourceError as exc:
        return ParseAnswer(error=exc.message)
    except Exception as exc:  # a bug must not stop the pass; it is recorded like any failure
        log.exception("parsing source %s failed unexpectedly", job.source_id)
        return ParseAnswer(error=f"unexpected {exc.__class__.__name__} while parsing: {exc}")
    return ParseAnswer(parsed, prepared)


# parse_job is Python under the GIL: threads running it at once only take turns, and the turns
# cost (with eight fetch threads parsing, a quarter more CPU time and wall time than one at a time).
_IN_THREADS = threading.Lock()


def parse_here(job: ParseJob) -> ParseAnswer:
    """``parse_job`` in the calling thread, one thread at a time (the others go on fetching)."""
    with _IN_THREADS:
        return parse_job(job)


def _usable_cpus() -> int:
    """The CPUs this process may run on (a container or taskset may allow fewer than the machine has)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on every platform
        return os.cpu_count() or 1


def _serve(conn: Connection, job: Callable[[ParseJob], ParseAnswer]) -> None:
    """A worker process: answer jobs until the pool closes its end of the pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the owner's to handle; it closes the pipe
    conn.send(_READY)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        conn.send(job(task))


class _Worker:
    """One worker process and the parent's end of its pipe; used by one thread at a time."""

    def __init__(self, process: BaseProcess, conn: Connection) -> None:
        self.process, self.conn = process, conn

    def stop(self, *, kill: bool = False) -> int | None:
        """End the process (at once with ``kill``, else by closing its pipe) and return its exit code."""
        self.conn.close()
        if kill:
            self.process.kill()
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
        return self.process.exitcode


class ParsePool:
    """Worker processes that run ``parse_job``, shared by the fetch threads of a pass.

    Thread-safe: a fetch thread hands its job to an idle process and waits
    for the answer, at most ``size`` jobs at a time (default: as many as
    the CPUs this process may use). Processes start lazily, one per job in flight, with the
    ``spawn`` method (or ``forkserver``; never a plain fork of a threaded
    process), and live until ``close``. A process that dies or overruns
    ``timeout`` costs only the feed it was parsing an error answer, and is
    replaced on the next job. If processes cannot be started here at all,
    ``parse`` falls back to ``parse_here``, in the calling thread.

    Not ``concurrent.futures.ProcessPoolExecutor``: there, one dead process
    breaks every pending job of the pool (so the culprit cannot be told
    apart), and a running job can be neither cancelled nor its process
    stopped. ``job`` replaces ``parse_job`` in the processes (tests use it to
    make one crash or hang).
    """

    def __init__(self, size: int | None = None, *, timeout: float = PARSE_TIMEOUT, start_method: str = "spawn",
                 job: Callable[[ParseJob], ParseAnswer] = parse_job) -> None:
        if start_method not in ("spawn", "forkserver"):
            raise ValueError("start_method must be 'spawn' or 'forkserver': the fetch threads are running")
        self.size = max(1, size or _usable_cpus())
        self.timeout = timeout
        self.started = 0  # processes started so far, replacements included
        self.unavailable: str | None = None  # why processes could not be started, if they could not
        self._context: Any = multiprocessing.get_context(start_method)
        self._job = job
        self._slots = threading.BoundedSemaphore(self.size)
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._closed = False

    def parse(self, job: ParseJob) -> ParseAnswer:
        """``parse_job(job)`` in a worker process; a crash or an overrun is an answer with an error."""
        with self._slots:
            worker = self._take()
            if worker is None:
                return parse_here(job)
            try:
                worker.conn.send(job)
                if not worker.conn.poll(self.timeout):
                    worker.stop(kill=True)
                    log.error("parsing source %s took longer than %g s; its process was stopped",
                              job.source_id, self.timeout)
                    return ParseAnswer(error=f"parsing took longer than {self.timeout:g} s; the parser "
                                             "process was stopped")
                answer: ParseAnswer = worker.conn.recv()
            except (EOFError, OSError):
                code = worker.stop(kill=True)
                log.error("the parser process died while parsing source %s (exit code %s)", job.source_id, code)
                return ParseAnswer(error=f"the parser process died while parsing this feed (exit code {code})")
            except Exception as exc:  # the exchange itself failed: the process's state is unknown, so it goes
                worker.stop(kill=True)
                log.exception("handing source %s to a parser process failed", job.source_id)
                return ParseAnswer(error=f"unexpected {exc.__class__.__name__} from the parser process: {exc}")
            self._give_back(worker)
            return answer

    def _take(self) -> _Worker | None:
        """An idle worker, else a new one; None when processes cannot be had (or after ``close``)."""
        with self._lock:
            if self._idle:
                return self._idle.pop()
            if self.unavailable is not None or self._closed:
                return None
        parent, child = self._context.Pipe()
        try:
            process = self._context.Process(target=_serve, args=(child, self._job), name="syndicate-parse",
                                            daemon=True)
            process.start()
        except Exception as exc:  # no processes here (a sandbox, a limit): parse in threads
            parent.close()
            self._give_up(f"{exc.__class__.__name__}: {exc}")
            return None
        finally:
            child.close()
        worker = _Worker(process, parent)
        try:
            if parent.poll(START_TIMEOUT) and parent.recv() == _READY:
                with self._lock:
                    self.started += 1
                return worker
            reason = f"no word from a new parser process within {START_TIMEOUT:g} s"
        except (EOFError, OSError):
            reason = "a new parser process ended before it was ready"
        code = worker.stop(kill=True)
        self._give_up(f"{reason} (exit code {code})")
        return None

    def _give_up(self, reason: str) -> None:
        log.warning("parser processes unavailable (%s); parsing in threads instead", reason)
        with self._lock:
            self.unavailable = reason

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(worker)
                return
        worker.stop()

    def close(self) -> None:
        """Stop the idle processes (a busy one stops when its job is done); later jobs run in threads."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.stop()

    def __enter__(self) -> ParsePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
