"""Replacing a bundle folder so that it is never lost: the swap, its recovery, and the output lock.

A build writes into ``.NAME.tmp-*`` beside ``NAME``, marks it complete (``.sdrt-complete``), then swaps:
``NAME`` -> ``.NAME.old-PID``, the new folder -> ``NAME``, the marker and the old folder removed. A crash
at any point leaves one of these states, which :func:`recover_swap` (run by the next build, and by a load
that finds no bundle) resolves:

- ``NAME`` holds the marker: the swap was done; remove the marker and any ``.NAME.old-*``;
- old folders are deleted after a rename to ``.NAME.trash-*``, which no step restores: a kill while
  deleting never leaves a half folder that looks like the previous bundle;
- ``NAME`` is missing, a complete ``.NAME.tmp-*`` exists: complete the swap with it;
- ``NAME`` is missing, no complete new folder but an ``.NAME.old-*``: roll back to it;
- a ``.NAME.tmp-*`` without the marker is a build that never finished: removed by the next build only.

Builds into one output take ``.NAME.lock`` beside it (``output_lock``), so a second build waits for the
first instead of deleting its working folder.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

COMPLETE = ".sdrt-complete"
_KILL_AT = (
    "SDRT_TEST_KILL_AT"  # tests: name a point (see _test_kill_point) and the process kills itself there
)


def temp_prefix(target: Path) -> str:
    return f".{target.name}.tmp-"


def old_folders(target: Path) -> list[Path]:
    return sorted(p for p in target.parent.glob(f".{target.name}.old-*") if p.is_dir())


def trash_folders(target: Path) -> list[Path]:
    """Old folders a cleanup was deleting (never restored: they may be half gone)."""
    return sorted(p for p in target.parent.glob(f".{target.name}.trash-*") if p.is_dir())


def complete_temps(target: Path) -> list[Path]:
    """Finished new bundles waiting to be swapped in, newest first."""
    temps = [p for p in target.parent.glob(temp_prefix(target) + "*") if (p / COMPLETE).is_file()]
    return sorted(temps, key=lambda p: (p / COMPLETE).stat().st_mtime_ns, reverse=True)


def swap_in(work: Path, target: Path) -> None:
    """Make the complete folder ``work`` the bundle ``target``, keeping the old one until the new is in place."""
    (work / COMPLETE).touch()
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        if old.exists():
            discard(old)
        target.rename(old)
        _test_kill_point("between-renames")
    work.rename(target)
    _finish(target)


def recover_swap(target: Path) -> None:
    """Complete or roll back a swap a crash interrupted (see the module docstring); nothing to do otherwise."""
    if target.is_dir():
        if (target / COMPLETE).exists() or old_folders(target) or trash_folders(target):
            _finish(target)
        return
    done = complete_temps(target)
    olds = old_folders(target)
    if done:
        log.warning("completing the interrupted replacement of %s with %s", target, done[0].name)
        done[0].rename(target)
        _finish(target)
    elif olds:
        log.warning("restoring %s from %s: its replacement was interrupted", target, olds[-1].name)
        olds[-1].rename(target)
        _finish(target)


def _finish(target: Path) -> None:
    (target / COMPLETE).unlink(missing_ok=True)
    for old in old_folders(target):
        discard(old)
    for trash in trash_folders(target):
        shutil.rmtree(trash, ignore_errors=True)


def discard(folder: Path) -> None:
    """Delete ``folder`` after renaming it ``.NAME.trash-*``: a kill while deleting leaves a name that
    recovery never restores (a half-deleted ``.old`` folder would be taken for the previous bundle)."""
    base = folder.name.split(".old-")[0]
    trash = folder.with_name(f"{base}.trash-{os.getpid()}-{folder.name.rsplit('-', 1)[-1]}")
    try:
        folder.rename(trash)
    except OSError:
        trash = folder
    _test_kill_point("during-cleanup")
    shutil.rmtree(trash, ignore_errors=True)


@contextlib.contextmanager
def output_lock(target: Path, *, wait: bool = True) -> Iterator[bool]:
    """Hold ``.NAME.lock`` beside ``target``; yields whether it was taken (always, when ``wait``).

    The holder removes the lock file when done, so nothing is left beside the bundle; a waiter that
    finds it has locked a removed file locks the new one instead.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield True
        return
    path = target.parent / f".{target.name}.lock"
    handle = _locked(fcntl, path, wait)
    if handle is None:
        yield False
        return
    try:
        yield True
    finally:
        path.unlink(missing_ok=True)
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def _locked(fcntl: Any, path: Path, wait: bool) -> IO[str] | None:
    said = False
    while True:
        handle = open(path, "a+")  # held open until the lock is released
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                handle.close()
                return None
            if not said:
                log.warning(
                    "another build is writing %s; waiting for it to finish", path.with_name(path.name[1:-5])
                )
                said = True
            fcntl.flock(handle, fcntl.LOCK_EX)
        if path.exists() and path.stat().st_ino == os.fstat(handle.fileno()).st_ino:
            return handle
        handle.close()  # its holder removed that file when done: lock the one now at ``path``


def _test_kill_point(name: str) -> None:
    """For the kill tests only: SIGKILL this process here when ``SDRT_TEST_KILL_AT`` names this point."""
    if os.environ.get(_KILL_AT) == name:
        os.kill(os.getpid(), signal.SIGKILL)
