"""Work spread over forked processes, each with its own interpreter lock: how a pass over the files uses every core.

A pass spends most of its time inflating (which releases the GIL), but between files each thread needs the GIL for
a few SIMD searches and a little Python, and with two threads on two cores each waits for the other's: ~20% of a
cold pass. Processes forked from the one that asks share nothing to wait for. They take batches of files from a
pipe filled with the batches' numbers (a 4-byte read is one batch, whoever reads it), may tell each other what
they learnt as they go (``Mail``: a pipe per worker, read between files), and hand back what they found as they go
(read meanwhile by the process that asked) and a last answer each.

Only on Linux, and only while the process has one thread (forking a threaded process is unsafe: a notebook's
kernel has several); ``usable()`` says so, and the caller then runs the same work on threads.
"""
from __future__ import annotations

import fcntl
import gc
import os
import pickle
import select
import struct
import sys
import termios
import threading
import time

_INDEX = struct.Struct("<I")
_MAX_BATCHES = 16_000  # their numbers fill a pipe's 64 KiB without blocking the writer
SMALLEST = 64  # files: fewer are read on threads (forking costs more than it spares)


def usable(workers: int) -> bool:
    """Whether ``run`` can fork ``workers`` processes here."""
    return workers > 1 and sys.platform.startswith("linux") and hasattr(os, "fork") and \
        threading.active_count() == 1


def batch_size(count: int, smallest: int = 32) -> int:
    """Files per batch for ``count`` files: small batches balance the workers, as many as one pipe holds."""
    return max(smallest, -(-count // _MAX_BATCHES))


class Mail:
    """What a worker tells the others (``send``) and what they told it (``received``): small pickled messages on
    a pipe per worker. A message to a worker that has finished, or whose pipe is full, is dropped: mail only
    spares work that the caller otherwise does after the pass."""

    def __init__(self, inboxes: list[tuple[int, int]], me: int):
        self._in = inboxes[me][0]
        self._out = [w for i, (_, w) in enumerate(inboxes) if i != me]
        self._pending = b""
        self._ready = select.poll()  # asked between every two files: no read (and no exception) when empty
        self._ready.register(self._in, select.POLLIN)

    def send(self, message) -> None:
        body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        framed = _INDEX.pack(len(body)) + body
        if len(framed) > select.PIPE_BUF:  # written whole or not at all: a longer one could interleave
            return
        for fd in self._out:
            try:
                os.write(fd, framed)
            except (BlockingIOError, BrokenPipeError):
                pass

    def received(self) -> list:
        if not self._ready.poll(0):
            return []
        try:
            while chunk := os.read(self._in, 65536):
                self._pending += chunk
        except BlockingIOError:
            pass
        out = []
        while len(self._pending) >= 4:
            size = _INDEX.unpack_from(self._pending)[0]
            if len(self._pending) < 4 + size:
                break
            out.append(pickle.loads(self._pending[4:4 + size]))
            self._pending = self._pending[4 + size:]
        return out


def run(workers: int, batches: int, work, progress=None, meanwhile=None, received=None) -> list | None:
    """``work(next_batch, mail, post)`` in ``workers`` forked processes, their answers in order; None if they
    cannot be started here (pipes, processes, a pipe too small for the batches' numbers) or one failed (the caller
    then does the work itself). ``next_batch()`` gives the number of a batch no other worker took, or None when
    there are none left; ``post(part)`` hands ``part`` to ``received(part)`` here at once (what a worker found so
    far is read while it goes on, not all at its end). ``progress(batches_taken, seconds)`` is called here as the
    workers go; ``meanwhile()`` runs here on a thread once they are started (what the caller needs next)."""
    fds, children, answers, helper = [], [], [], None
    gc.freeze()  # the workers' collector never walks (and so never copies) what they inherit
    try:
        try:
            queue_r, queue_w = _pipe(fds)
            numbers = b"".join(_INDEX.pack(i) for i in range(batches))
            try:  # a user over the kernel's pipe allowance gets pipes of a page or two: then threads
                fcntl.fcntl(queue_w, _SETPIPE_SIZE, max(len(numbers), 4096))
            except OSError:
                pass
            os.set_blocking(queue_w, False)
            if os.write(queue_w, numbers) != len(numbers):
                return None
            inboxes = [_pipe(fds) for _ in range(workers)]
            for r, w in inboxes:
                os.set_blocking(r, False)
                os.set_blocking(w, False)
            parent = os.getpid()
            import ctypes  # noqa: F401 - each worker asks to die with this process through it: imported once here,
            #                not in each worker (a few ms each, while the workers start)
            for me in range(workers):
                answer_r, answer_w = _pipe(fds)
                try:
                    fcntl.fcntl(answer_w, _SETPIPE_SIZE, 1 << 20)  # fewer waits for the reader (best effort)
                except OSError:
                    pass
                pid = os.fork()
                if pid == 0:  # never returns
                    _child(me, work, parent, queue_r, queue_w, inboxes, answer_r, answer_w)
                children.append((pid, answer_r))
                _close(fds, answer_w)
        except OSError:  # no more files, processes or memory: the caller does the work itself
            return None
        for fd in [queue_w, *(fd for pair in inboxes for fd in pair)]:
            _close(fds, fd)
        if meanwhile is not None:
            (helper := threading.Thread(target=meanwhile, daemon=True)).start()
        answers = _collect(children, queue_r, batches, progress, received)
    finally:
        gc.unfreeze()
        if len(answers) != len(children) or any(status != "ok" for status, _ in answers):
            for pid, _ in children:  # stopped, or one failed: the others' work is wasted
                _kill(pid)
        for fd in list(fds):
            _close(fds, fd)
        for pid, _ in children:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        if helper is not None:
            helper.join()
    if any(status != "ok" for status, _ in answers):
        return None
    return [answer for _, answer in answers]


def _pipe(fds: list) -> tuple[int, int]:
    r, w = os.pipe()
    fds += [r, w]
    return r, w


def _close(fds: list, fd: int) -> None:
    fds.remove(fd)
    os.close(fd)


_SETPIPE_SIZE = 1031  # F_SETPIPE_SZ
_FRAME = struct.Struct("<Q")


def _child(me: int, work, parent: int, queue: int, queue_w: int, inboxes: list, answer_r: int, answer: int) -> None:
    from .scan import _die_with_parent

    def post(kind: str, obj) -> None:
        body = pickle.dumps((kind, obj), protocol=pickle.HIGHEST_PROTOCOL)
        out.write(_FRAME.pack(len(body)))
        out.write(body)
        if kind == "part":
            out.flush()

    gc.disable()  # a worker makes little garbage, none of it cyclic worth the collector's walks, and ends soon
    out = os.fdopen(answer, "wb")
    try:
        _die_with_parent(parent)
        import signal

        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # Ctrl-C stops the workers at once
            signal.signal(signal.SIGINT, signal.SIG_DFL)                    # (unless the parent ignores it)
        for fd in [queue_w, answer_r, inboxes[me][1], *(r for i, (r, _) in enumerate(inboxes) if i != me)]:
            os.close(fd)

        def next_batch():
            got = os.read(queue, 4)
            return _INDEX.unpack(got)[0] if len(got) == 4 else None

        payload = ("ok", work(next_batch, Mail(inboxes, me), lambda part: post("part", part)))
    except BaseException as e:  # noqa: B036 - whatever happens is reported, then the child exits
        payload = ("error", f"{type(e).__name__}: {e}")
    try:
        post(*payload)
        out.close()
    finally:
        os._exit(0)  # no atexit handlers, no flushing of the parent's buffers


def _collect(children: list, queue: int, batches: int, progress, received) -> list:
    """Every worker's answer, and what they posted as it comes (a pipe holds little), reporting progress."""
    pending = {fd: bytearray() for _, fd in children}
    final: dict = {}

    def answers() -> list:  # a worker that stopped without one failed
        return [final.get(fd, ("error", "a worker stopped without an answer")) for _, fd in children]

    open_fds, began = set(pending), time.monotonic()
    ready = select.poll()  # (not select(): a process may hold more than 1,024 files)
    for fd in open_fds:
        ready.register(fd, select.POLLIN)
    into = memoryview(bytearray(1 << 20))  # read into one buffer: a fresh 1 MB bytes a read costs ~0.1 ms
    while open_fds:
        for fd, _ in ready.poll(100):
            chunk = into[:os.readv(fd, [into])]
            if not chunk:
                open_fds.discard(fd)
                ready.unregister(fd)
                if fd not in final:  # a worker gone without an answer: the others need not finish
                    return answers()
                continue
            buffer = pending[fd]
            buffer += chunk
            at = 0
            while len(buffer) - at >= 8 and len(buffer) - at - 8 >= (size := _FRAME.unpack_from(buffer, at)[0]):
                kind, obj = pickle.loads(buffer[at + 8:at + 8 + size])
                at += 8 + size
                if kind == "part":
                    if received is not None:
                        received(obj)
                else:
                    final[fd] = (kind, obj)
                    if kind != "ok":  # one failed: the others need not finish
                        return answers()
            del buffer[:at]
        if progress is not None:
            left = struct.unpack("i", fcntl.ioctl(queue, termios.FIONREAD, b"\0\0\0\0"))[0] // 4
            progress(batches - left, time.monotonic() - began)
    return answers()


def _kill(pid: int) -> None:
    import signal

    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
