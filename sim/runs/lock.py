"""One writer per results folder: an exclusive lock that every command writing a folder holds.

The lock is ``fcntl.flock`` on the file ``DIR/.sim-lock``. The flock is the truth: the
kernel drops it when its holder's process ends, however it ends (SIGKILL included), so a
lock left by a dead writer is free and the next writer simply takes it. The file's content
(the holder's pid, host, command and start time, as JSON) only informs: a second writer
names the holder in its refusal, and a writer that takes over a lock left behind says whose
it was. A writer removes the file when it is done, while it still holds the flock; a
writer that finds the file it locked already removed (by the holder it waited for) opens
the new one, so two writers never hold locks on two different files.

Within one process the lock is re-entrant (a command locks its folder, then its batch
locks it again). Readers never take the flock (it would make a writer that arrives at that
moment fail): they read the file's content to tell a folder being written from one whose
writer stopped (:func:`current_holder`).

Commands hold their locks for their whole run in a :func:`session` (the command line opens
one per command): :func:`hold` then keeps a lock until the session ends. Outside a session
(the library called from Python), :func:`hold` takes the lock only while it prepares the
folder, and :func:`holding` for as long as its ``with`` block lasts (a batch).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import os
import platform
import stat
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sim.runs.manifest import COMMAND_LINE, now_utc
from sim.scenario.yamlio import InputError

#: The lock file, inside the folder it locks.
LOCK_FILE = ".sim-lock"
#: Most bytes of a lock file read (its content is a short JSON record).
MAX_LOCK_BYTES = 64_000


class FolderBusy(InputError):
    """Another process holds the folder's lock (the command line exits 2)."""

    def __init__(self, folder: Path, holder: Holder | None):
        self.folder, self.holder = folder, holder
        who = holder.describe() if holder is not None else "a process that is starting (it has not yet said who it is)"
        super().__init__(
            f"{folder}: another sim process is writing this folder: {who}; wait for it to end, "
            "or write elsewhere (another --out)"
        )


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) a folder's lock, as its lock file says."""

    pid: int
    host: str
    command: str
    started: str

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}, `{self.command}`, since {self.started}"

    def is_this_process(self) -> bool:
        return self.pid == os.getpid() and self.host == platform.node()

    def alive(self) -> bool:
        """Whether the holder's process still runs (on this host; on another, it is taken as running)."""
        if self.host != platform.node():
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def _this_holder() -> Holder:
    argv = COMMAND_LINE.get()
    command = " ".join(["sim", *argv[1:]] if argv else ["python"])
    return Holder(os.getpid(), platform.node(), command[:2000], now_utc())


def _parse(raw: bytes) -> Holder | None:
    try:
        data = json.loads(raw.decode("utf-8", "replace"))
        return Holder(int(data["pid"]), str(data["host"]), str(data["command"]), str(data["started"]))
    except (ValueError, KeyError, TypeError):
        return None


def _read_fd(fd: int) -> Holder | None:
    os.lseek(fd, 0, os.SEEK_SET)
    return _parse(os.read(fd, MAX_LOCK_BYTES))


def current_holder(folder: str | Path) -> Holder | None:
    """What ``folder``'s lock file says (None without one): the writer at work, or one that stopped
    without removing it (:meth:`Holder.alive` tells them apart). Takes no lock."""
    path = Path(folder) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        return _read_fd(fd) if stat.S_ISREG(os.fstat(fd).st_mode) else None
    except OSError:
        return None
    finally:
        os.close(fd)


@dataclass
class _Held:
    fd: int
    path: Path
    pid: int
    count: int = 1


#: Locks this process holds, by the folder's real path.
_HELD: dict[str, _Held] = {}
_GUARD = threading.Lock()


def _key(folder: Path) -> str:
    return os.path.realpath(folder)


def _held(key: str) -> _Held | None:
    h = _HELD.get(key)
    # A forked child inherits the table but not the right to release its parent's lock.
    return h if h is not None and h.pid == os.getpid() else None


def acquire(folder: str | Path, prepare: Callable[[], Any] | None = None) -> Holder | None:
    """Take ``folder``'s lock (it must exist), then run ``prepare`` under it.

    Args:
        folder: the folder to lock.
        prepare: checks and prepares the folder (e.g. refuses a non-empty one, or clears it for
            ``--force``); if it raises, the lock is released and the lock file left as it was.

    Returns:
        The holder named by a lock file left behind by a writer that ended without removing it
        (now taken over), else None.

    Raises:
        FolderBusy: another process holds the lock.
        InputError: the lock file cannot be created (a read-only folder, permissions).
    """
    folder = Path(folder)
    key = _key(folder)
    with _GUARD:
        held = _held(key)
        if held is not None:
            held.count += 1
    if held is not None:
        try:
            if prepare is not None:
                prepare()
        except BaseException:
            release(folder)
            raise
        return None
    path = folder / LOCK_FILE
    fd = _lock_file(folder, path)
    try:
        previous = _read_fd(fd)
        empty = os.fstat(fd).st_size == 0
        if prepare is not None:
            prepare()
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(asdict(_this_holder())).encode())
    except BaseException:
        if empty:
            _unlink_quietly(path)
        os.close(fd)
        raise
    with _GUARD:
        _HELD[key] = _Held(fd, path, os.getpid())
    return previous


def _lock_file(folder: Path, path: Path) -> int:
    """An open descriptor of ``path`` with the flock taken (the file that is at ``path`` now)."""
    while True:
        try:
            # Not through a symbolic link, and without waiting on a FIFO put in its place.
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            raise InputError(f"{folder}: cannot lock the folder for writing: {exc.strerror or exc}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise InputError(f"{folder}: {LOCK_FILE} is not a regular file; remove it")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = _read_fd(fd)
            finally:
                os.close(fd)
            raise FolderBusy(folder, holder) from None
        except OSError as exc:
            os.close(fd)
            raise InputError(f"{folder}: cannot lock the folder for writing: {exc.strerror or exc}") from None
        # The holder we waited for may have removed the file between our open and our flock:
        # then the lock that counts is on the file at the path now.
        try:
            now, ours = os.stat(path), os.fstat(fd)
            if (now.st_dev, now.st_ino) == (ours.st_dev, ours.st_ino):
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def release(folder: str | Path) -> None:
    """Release a lock taken by :func:`acquire` (the last release removes the lock file)."""
    key = _key(Path(folder))
    with _GUARD:
        held = _held(key)
        if held is None:
            return
        held.count -= 1
        if held.count > 0:
            return
        del _HELD[key]
    _unlink_quietly(held.path)  # while the flock is held: a waiter then sees the file gone
    os.close(held.fd)


@atexit.register
def _release_all() -> None:
    """At a normal exit, remove the lock files this process still holds (the flocks go with the process)."""
    with _GUARD:
        held = [h for h in _HELD.values() if h.pid == os.getpid()]
        _HELD.clear()
    for h in held:
        _unlink_quietly(h.path)
        os.close(h.fd)


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass  # the folder is gone (a temporary one) or read-only: the flock dies with the descriptor anyway


@contextlib.contextmanager
def holding(folder: str | Path, prepare: Callable[[], Any] | None = None) -> Iterator[Holder | None]:
    """``folder``'s lock for the ``with`` block (re-entrant); yields what :func:`acquire` returns."""
    previous = acquire(folder, prepare)
    try:
        yield previous
    finally:
        release(folder)


#: The locks the running command holds until it ends (see :func:`session`).
_SESSION: ContextVar[contextlib.ExitStack | None] = ContextVar("sim_lock_session", default=None)


@contextlib.contextmanager
def session() -> Iterator[None]:
    """Keep every lock :func:`hold` takes inside the block until the block ends (one command)."""
    with contextlib.ExitStack() as stack:
        token = _SESSION.set(stack)
        try:
            yield
        finally:
            _SESSION.reset(token)


def hold(folder: str | Path, prepare: Callable[[], Any] | None = None) -> Holder | None:
    """Lock ``folder`` and run ``prepare`` under the lock; keep the lock until the session ends.

    Outside a :func:`session` the lock is released when ``prepare`` has run (a batch then locks
    the folder again while it writes, :func:`holding`).

    Returns:
        As :func:`acquire`: the holder of a lock left behind and now taken over, else None.
    """
    stack = _SESSION.get()
    if stack is None:
        with holding(folder, prepare) as previous:
            return previous
    previous = acquire(folder, prepare)
    stack.callback(release, folder)
    return previous
