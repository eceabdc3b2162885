"""Child processes that never outlive their parent, so a killed `los up` leaves no orphans."""

from __future__ import annotations

import ctypes
import signal

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a child (a `preexec_fn`, a pool's initializer): ask Linux to send it SIGTERM
    when its parent dies."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
