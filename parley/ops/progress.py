"""A one-line progress bar on a terminal: records scanned of the total, and events sent.

Redrawn at most ``max_rate_hz`` times a second; disabled (silent) when the stream is not a
terminal, where the command prints a summary line instead.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["ProgressBar", "render_progress"]


def render_progress(label: str, scanned: int, total: int, sent: int, *, width: int = 24) -> str:
    """``label [#######-----]  1,200/5,000 records (24%)  34 sent``.

    ``scanned`` is clamped to ``total``; a total of 0 shows a full bar.
    """
    total = max(0, total)
    scanned = min(max(0, scanned), total)
    fraction = 1.0 if total == 0 else scanned / total
    filled = round(fraction * width)
    bar = "#" * filled + "-" * (width - filled)
    return (
        f"{label} [{bar}] {scanned:,}/{total:,} records ({int(fraction * 100)}%)  {sent:,} sent"
    )


class ProgressBar:
    def __init__(
        self,
        stream: TextIO,
        label: str,
        *,
        enabled: bool | None = None,
        max_rate_hz: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.label = label
        isatty = getattr(stream, "isatty", None)
        self.enabled = bool(isatty and isatty()) if enabled is None else enabled
        self._interval = 1.0 / max_rate_hz
        self._clock = clock
        self._last_draw: float | None = None
        self._drawn_width = 0
        self.draws = 0

    def update(self, scanned: int, total: int, sent: int, *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = self._clock()
        if not force and self._last_draw is not None and now - self._last_draw < self._interval:
            return
        self._last_draw = now
        columns = shutil.get_terminal_size((100, 24)).columns
        line = render_progress(self.label, scanned, total, sent)[: max(10, columns - 1)]
        padding = " " * max(0, self._drawn_width - len(line))
        self.stream.write("\r" + line + padding)
        self.stream.flush()
        self._drawn_width = len(line)
        self.draws += 1

    def close(self) -> None:
        """Erase the bar, so the summary that follows starts on a clean line."""
        if self.enabled and self._drawn_width:
            self.stream.write("\r" + " " * self._drawn_width + "\r")
            self.stream.flush()
            self._drawn_width = 0
