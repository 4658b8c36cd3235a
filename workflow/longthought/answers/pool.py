"""A process pool with a hard per-item deadline: a stuck worker is killed and replaced.

`concurrent.futures` cannot kill one stuck task, and math-verify's own timeout (`signal.alarm`)
works only in a main thread and cannot interrupt a long C-level computation such as
`9**(9**9)`. So each worker is a separate process, started as `python -c` (a fresh interpreter:
no fork of a big parent, and no re-import of the caller's main script as multiprocessing's
"spawn" would do), fed small chunks over a socket pair; it reports every item as it finishes,
and the parent kills a worker whose current item runs past its deadline
(recording a timeout for that item), restarts it, and re-queues the rest of its chunk. A worker that
dies (segfault, memory limit) costs only the item it was on. The batch always finishes.

Workers run `handler(item)` where `handler` is named "module:function" so it can be imported in a
fresh interpreter; they also cap their own address space (`memory_mb`) so a runaway allocation ends
in a MemoryError (reported as an error) rather than in the machine swapping.
"""

from __future__ import annotations

import importlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

OK, TIMEOUT, CRASHED = "ok", "timeout", "crashed"
READY = ("ready",)


class SoftTimeout(BaseException):
    """Raised inside a worker by its own alarm, shortly before the parent would kill it."""


def _resolve(name: str) -> Callable[[Any], Any]:
    module, _, func = name.partition(":")
    return getattr(importlib.import_module(module), func)


def _on_alarm(signum: int, frame: Any) -> None:
    raise SoftTimeout()


def _die_with_parent() -> None:
    """Linux: get SIGKILL if the parent dies, so no worker outlives a killed run."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def worker_main(conn: Connection, handler_name: str, memory_mb: int | None, soft_s: float) -> None:
    """Worker loop: receive chunks of (index, item); send (index, status, result) per item."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    _die_with_parent()
    if memory_mb:
        import resource

        limit = int(memory_mb) * 1024 * 1024
        try:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        except (ValueError, OSError):
            pass
    handler = _resolve(handler_name)
    signal.signal(signal.SIGALRM, _on_alarm)
    conn.send(READY)  # imports done: the parent starts the first item's clock now
    while True:
        try:
            chunk = conn.recv()
        except (EOFError, OSError):
            return
        if chunk is None:
            return
        for index, item in chunk:
            try:
                signal.setitimer(signal.ITIMER_REAL, soft_s)
                try:
                    result = (index, OK, handler(item))
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            except SoftTimeout:
                result = (index, TIMEOUT, None)
            except MemoryError:
                result = (index, CRASHED, "MemoryError")
            except Exception as exc:  # a handler bug or unexpected input: report, keep serving
                result = (index, CRASHED, f"{type(exc).__name__}: {str(exc)[:200]}")
            conn.send(result)


def _child_main() -> None:
    """Entry point of a worker process: `python -c ... FD HANDLER MEMORY_MB SOFT_S`."""
    fd, handler, memory_mb, soft_s = sys.argv[1:5]
    worker_main(Connection(int(fd)), handler, int(memory_mb) or None, float(soft_s))


@dataclass
class _Worker:
    proc: Any
    conn: Connection
    inflight: deque = field(default_factory=deque)
    since: float = 0.0  # when the current item started (last send or last result)
    ready: bool = False  # imports finished (until then the startup grace applies)


class DeadlinePool:
    """Run `handler` over items in `workers` processes, each item bounded by `timeout_s`.

    Use as a context manager, or call `close()`. Workers start on first use and are reused across
    `map` calls, so the import cost (sympy, ~1 s) is paid once per worker, not per batch.
    """

    def __init__(self, handler: str, workers: int = 2, timeout_s: float = 5.0,
                 memory_mb: int | None = 2048, chunk: int = 8):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.handler = handler
        self.n_workers = workers
        self.timeout_s = float(timeout_s)
        self.memory_mb = memory_mb
        self.chunk = max(1, chunk)
        self._workers: list[_Worker] = []
        self.restarts = 0  # workers killed or lost (for tests and logs)
        # A fresh worker needs time to import before its first item's clock is fair.
        self.startup_grace_s = 60.0

    def _start(self) -> _Worker:
        parent, child = socket.socketpair()
        soft = max(0.05, self.timeout_s * 0.8)
        env = dict(os.environ)
        pkg_root = str(Path(__file__).resolve().parents[2])  # the dir holding `longthought/`
        env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_root, env.get("PYTHONPATH")) if p)
        boot = "from longthought.answers.pool import _child_main; _child_main()"
        cmd = [sys.executable, "-c", boot, str(child.fileno()), self.handler,
               str(self.memory_mb or 0), str(soft)]
        proc = subprocess.Popen(cmd, pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL, env=env)
        child.close()
        return _Worker(proc, Connection(parent.detach()))

    def _kill(self, w: _Worker) -> None:
        try:
            w.proc.kill()
        except Exception:
            pass
        try:
            w.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        w.conn.close()

    def map(self, items: Sequence[Any]) -> list[tuple[str, Any]]:
        """(status, result) per item, in order.

        Status is "ok" (result = the handler's value), "timeout" (None) or "crashed" (why).
        """
        results: list[tuple[str, Any] | None] = [None] * len(items)
        if not items:
            return []
        while len(self._workers) < min(self.n_workers, len(items)):
            self._workers.append(self._start())
        queue: deque[int] = deque(range(len(items)))
        active = list(self._workers)
        while queue or any(w.inflight for w in active):
            now = time.monotonic()
            for slot, w in enumerate(active):
                if not w.inflight and queue:
                    if w.proc.poll() is not None:  # died while idle: no item to blame
                        self._replace(w, active)
                        w = active[slot]
                    chunk = [queue.popleft() for _ in range(min(self.chunk, len(queue)))]
                    try:
                        w.conn.send([(i, items[i]) for i in chunk])
                    except (BrokenPipeError, OSError):
                        queue.extendleft(reversed(chunk))
                        self._replace(w, active)
                        continue
                    w.inflight.extend(chunk)
                    w.since = now
            busy = [w for w in active if w.inflight]
            if not busy:
                continue
            deadlines = [self._deadline(w) for w in busy]
            ready = wait([w.conn for w in busy], timeout=max(0.0, min(deadlines) - now))
            by_conn = {id(w.conn): w for w in busy}
            for conn in ready:
                w = by_conn[id(conn)]
                try:
                    while conn.poll():
                        msg = conn.recv()
                        w.since = time.monotonic()
                        if msg == READY:
                            w.ready = True
                            continue
                        index, status, value = msg
                        results[index] = (status, value)
                        if w.inflight and w.inflight[0] == index:
                            w.inflight.popleft()
                except (EOFError, OSError):  # the worker died on its current item
                    lost = w.inflight.popleft()
                    try:
                        code = w.proc.wait(timeout=2)
                    except subprocess.TimeoutExpired:
                        code = None
                    results[lost] = (CRASHED, f"worker died (exit code {code})")
                    queue.extendleft(reversed(w.inflight))
                    w.inflight.clear()
                    self._replace(w, active)
            now = time.monotonic()
            for w in list(active):
                if w.inflight and now > self._deadline(w):
                    stuck = w.inflight.popleft()
                    results[stuck] = (TIMEOUT, None)
                    queue.extendleft(reversed(w.inflight))
                    w.inflight.clear()
                    self._replace(w, active)
        return [r if r is not None else (CRASHED, "lost") for r in results]

    def _deadline(self, w: _Worker) -> float:
        grace = 0.0 if w.ready else self.startup_grace_s
        return w.since + self.timeout_s + grace

    def _replace(self, w: _Worker, active: list[_Worker]) -> None:
        self._kill(w)
        self.restarts += 1
        fresh = self._start()
        active[active.index(w)] = fresh
        self._workers[self._workers.index(w)] = fresh

    def close(self) -> None:
        """Ask every worker to stop; kill any that has not exited within a second."""
        for w in self._workers:
            try:
                w.conn.send(None)
            except Exception:
                pass
        deadline = time.monotonic() + 1.0
        for w in self._workers:
            try:
                w.proc.wait(timeout=max(0.01, deadline - time.monotonic()))
                w.conn.close()
            except subprocess.TimeoutExpired:
                self._kill(w)
        self._workers = []

    def __enter__(self) -> DeadlinePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # best effort; workers are daemons and also die with us
        if getattr(self, "_workers", None):
            try:
                self.close()
            except Exception:
                pass
