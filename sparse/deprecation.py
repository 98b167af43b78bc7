"""Former public names kept for one release: each call through one warns and names the new one.

The warnings are ``DeprecationWarning`` with ``stacklevel`` pointing at the user's call, so
that ``python -W error::DeprecationWarning`` finds every old spelling in a user's code.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

__all__ = ["renamed_method", "warn_renamed"]


def warn_renamed(old: str, new: str, *, stacklevel: int = 3) -> None:
    """Warn that ``old`` is deprecated in favour of ``new`` (both as the user reads them)."""
    warnings.warn(f"{old} is deprecated; use {new}", DeprecationWarning, stacklevel=stacklevel)


def renamed_method(old: str, new: str) -> Callable[..., Any]:
    """A method named ``old`` that warns and calls the method ``new`` with the same arguments.

    Used in a class body: ``init_state = renamed_method("init_state", "initial_state")``.
    """

    def alias(self: Any, *args: Any, **kwargs: Any) -> Any:
        warn_renamed(f"{type(self).__name__}.{old}", f"{type(self).__name__}.{new}")
        return getattr(self, new)(*args, **kwargs)

    alias.__name__ = old
    alias.__doc__ = f"Deprecated spelling of :meth:`{new}` (kept for one release)."
    return alias
