"""Keeps the test data (and the Retrain answer key) away from a method while it runs.

The design in full: docs/design-notes.md#protocolguard.
"""
from __future__ import annotations

import functools
import os
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

from ..errors import InvalidResult

DATASET_LOAD_EVENT = "unlearnbench.datasets.load"
GC_EVENTS = ("gc.get_objects", "gc.get_referrers", "gc.get_referents")
# Audit events of starting a program or a process (PEP 578 / the audit events table), by what they do
PROCESS_EVENTS = {"subprocess.Popen": "started a subprocess", "os.system": "ran a shell command",
                  "os.exec": "executed a program", "os.posix_spawn": "spawned a program",
                  "os.spawn": "spawned a program", "os.fork": "forked the process",
                  "os.forkpty": "forked the process"}
# Files opened during a load that are not the data: code and configuration (imports happen during
# the first load), package metadata, system files.  Protecting them would refuse innocent methods.
_NOT_DATA_SUFFIXES = (".py", ".pyc", ".pyd", ".pyi", ".so", ".dylib", ".dll", ".pth", ".typed", ".pem", ".cfg",
                      ".ini", ".toml")
_NOT_DATA_PARTS = (".dist-info", ".egg-info")
_SYSTEM_DIRS = ("/proc/", "/sys/", "/dev/", "/etc/")


def _is_data_file(path: str) -> bool:
    """A file a loader read for its data — not code, metadata or a system file, and not an
    import-path entry (the import system probes e.g. lib/python311.zip on every new import)."""
    if path.endswith(_NOT_DATA_SUFFIXES) or path.startswith(_SYSTEM_DIRS) or any(p in path for p in _NOT_DATA_PARTS):
        return False
    return os.path.isfile(path) and path not in {os.path.realpath(entry) for entry in sys.path if entry}


class TestDataAccess(InvalidResult):
    """A method reached for data it must not see."""

    __test__ = False   # not a pytest test class


_protected_files: set[str] = set()
_guard: "_Guard | None" = None
_recording: set[str] | None = None
_installed = False
_busy = threading.local()   # re-entrancy: the hook's own calls must not re-enter it


class _Guard:
    def __init__(self, method: str, protected_dirs):
        self.method = method
        self.dirs = tuple(os.path.join(os.path.realpath(d), "") for d in protected_dirs)
        self.violation: str | None = None

    def refuse(self, what: str) -> None:
        if self.violation is None:
            self.violation = what
        raise TestDataAccess(self.message(what))

    def message(self, what: str) -> str:
        return (f"method {self.method!r} {what} while unlearning; a method may use only what its Context "
                f"holds (never the test data or the Retrain model)")


def _real(path) -> str | None:
    if isinstance(path, int):
        return None   # an already open file descriptor
    try:
        return os.path.realpath(os.fsdecode(os.fspath(path)))
    except (TypeError, ValueError):
        return None


def _command(event: str, args: tuple) -> str:
    """``: cat /data/file`` — the program an event starts, if it names one."""
    if event == "subprocess.Popen":
        command = args[1] if len(args) > 1 else None
    elif event in ("os.system", "os.exec", "os.posix_spawn"):
        command = [args[0], *(args[1] or [])[1:]] if event != "os.system" and len(args) > 1 else args[0]
    elif event == "os.spawn":
        command = [args[1], *(args[2] or [])[1:]]
    else:
        return ""
    try:
        text = (os.fsdecode(command) if isinstance(command, (str, bytes))
                else " ".join(os.fsdecode(c) for c in command))
    except TypeError:
        text = repr(command)
    return f": {text[:200]}"


def _reads(mode, flags) -> bool:
    if isinstance(mode, str):
        return not any(c in mode for c in "wax+")
    return isinstance(flags, int) and not flags & (os.O_WRONLY | os.O_RDWR)


def _hook(event: str, args: tuple) -> None:
    guard, recording = _guard, _recording
    if (guard is None and recording is None) or getattr(_busy, "flag", False):
        return
    _busy.flag = True
    try:
        if event == "open":
            path = _real(args[0])
            if path is None:
                return
            if recording is not None and _reads(args[1], args[2]) and _is_data_file(path):
                recording.add(path)
            if guard is not None:
                if path in _protected_files:
                    guard.refuse(f"opened {path}, a file of the benchmark's data,")
                if path.startswith(guard.dirs):
                    guard.refuse(f"opened {path}, a cached reference model,")
        elif guard is not None and event == DATASET_LOAD_EVENT:
            guard.refuse(f"loaded the dataset {args[0]!r}")
        elif guard is not None and event in GC_EVENTS:
            guard.refuse(f"called {event}() (which reaches every object, the test data included)")
        elif guard is not None and event in PROCESS_EVENTS:
            guard.refuse(f"{PROCESS_EVENTS[event]} ({event}{_command(event, args)}), whose reads the harness "
                         "cannot see,")
    finally:
        _busy.flag = False


def _install() -> None:
    global _installed
    if not _installed:
        sys.addaudithook(_hook)
        _installed = True


@contextmanager
def recording_data_files():
    """Record the files read inside the block (a dataset being loaded) as
    protected from methods."""
    global _recording
    _install()
    _recording, outer = set(), _recording
    try:
        yield
    finally:
        _protected_files.update(_recording)
        _recording = outer


def protected_files() -> frozenset[str]:
    return frozenset(_protected_files)


def lifted(handler):
    """``handler`` run with the guard lifted: for the harness's own signal
    handlers, which may fire while a method runs (submitit's, on a Slurm time
    limit, checkpoints the task and starts ``scontrol requeue``)."""
    @functools.wraps(handler)
    def run(*args, **kwargs):
        global _guard
        guard, _guard = _guard, None
        try:
            return handler(*args, **kwargs)
        finally:
            _guard = guard
    return run


HANDLED_SIGNALS = ("SIGUSR1", "SIGUSR2", "SIGTERM", "SIGCONT")   # the ones submitit's job environment handles


def lift_in_signal_handlers() -> None:
    """Lift the guard in the Python signal handlers installed now (see :func:`lifted`)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for name in HANDLED_SIGNALS:
        number = getattr(signal, name, None)
        handler = signal.getsignal(number) if number is not None else None
        if callable(handler) and not getattr(handler, "__wrapped__", None):
            signal.signal(number, lifted(handler))


@contextmanager
def method_guard(method: str, protected_dirs=()):
    """Run the block (a method call) with the test data out of reach; raises
    :class:`TestDataAccess` at the end if the method reached for it, even if
    the method caught the exception it got at the time."""
    global _guard
    _install()
    guard, outer = _Guard(method, [Path(d) for d in protected_dirs]), _guard
    _guard = guard
    try:
        yield guard
    except TestDataAccess:
        raise
    except Exception:
        if guard.violation is None:
            raise
    finally:
        _guard = outer
    if guard.violation is not None:
        raise TestDataAccess(guard.message(guard.violation))

