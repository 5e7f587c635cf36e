"""The progress display of the commands: a one-line bar on a terminal,
plain lines otherwise.  Methods report into it through ``ctx.progress``."""
from __future__ import annotations

import sys
import time


class Progress:
    """A one-line progress bar on a terminal; plain lines otherwise."""

    def __init__(self, total: int, stream=None):
        stream = stream if stream is not None else sys.stderr   # the stream of the moment, not of the import
        self.total, self.done, self.stream = total, 0, stream
        self.tty = stream.isatty()
        self.start = time.perf_counter()
        self.current = ""

    def _bar(self, done: float) -> str:
        width = 24
        filled = int(width * done / max(1, self.total))
        return "#" * filled + "." * (width - filled)

    def begin(self, label: str) -> None:
        """A run starts: the methods' ``ctx.progress`` calls now refer to it."""
        self.current = label
        self.step(0.0)

    def step(self, fraction: float, message: str = "") -> None:
        """A method's ``ctx.progress(fraction, message)``: redraw the bar (terminals only)."""
        if not self.tty or not self.current:
            return
        fraction = min(max(float(fraction), 0.0), 1.0)
        elapsed = time.perf_counter() - self.start
        line = (f"[{self._bar(self.done + fraction)}] {self.done}/{self.total} {elapsed:6.0f}s  "
                f"{self.current} {100 * fraction:3.0f}% {message}")
        self.stream.write("\r\033[K" + line[:160])
        self.stream.flush()

    def log(self, message: str) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
        self.stream.write(f"  {message}\n")
        self.stream.flush()

    def update(self, label: str, status: str = "") -> None:
        self.done += 1
        self.current = ""
        elapsed = time.perf_counter() - self.start
        line = f"[{self._bar(self.done)}] {self.done}/{self.total} {elapsed:6.0f}s  {label} {status}"
        if self.tty:
            self.stream.write("\r\033[K" + line[:160])
            if self.done == self.total:
                self.stream.write("\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
