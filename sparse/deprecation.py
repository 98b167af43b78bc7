"""Former public names kept for one release: each call through one warns and names the new one.

A former function, method or attribute warns with ``DeprecationWarning``; a former keyword or
settings key (what users write in scripts and hyperparameter files, like the former config
keys and command-line flags) with ``FutureWarning``, which Python shows by default. Either
way ``stacklevel`` points at the user's call, so that ``python -W error`` finds every old
spelling in a user's code.
"""

from __future__ import annotations

import functools
import importlib
import warnings
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

__all__ = ["moved_names", "renamed_attribute", "renamed_fields", "renamed_keys",
           "renamed_keywords", "renamed_method", "warn_renamed"]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T", bound=type)


def warn_renamed(old: str, new: str, *, stacklevel: int = 3,
                 category: type[Warning] = DeprecationWarning) -> None:
    """Warn that ``old`` is deprecated in favour of ``new`` (both as the user reads them)."""
    warnings.warn(f"{old} is deprecated; use {new}", category, stacklevel=stacklevel)


def renamed_keys(values: Mapping[str, Any], renamed: Mapping[str, str], spelling: str, *,
                 stacklevel: int = 2, error: type[Exception] = TypeError) -> dict[str, Any]:
    """``values`` with each former key of ``renamed`` (former -> new) given under its new
    name, each with a ``FutureWarning`` naming the new spelling.

    Args:
        values: keyword arguments or settings as given.
        renamed: former name -> new name.
        spelling: how the user writes a key, with ``{key}`` for its name, e.g.
            ``"pac_table({key}=...)"`` or ``"hparams key '{key}'"``.
        stacklevel: as ``warnings.warn``'s, counted from the caller of this function.
        error: raised when a former name and its new name are both given.
    """
    out = dict(values)
    for former, new in renamed.items():
        if former not in out:
            continue
        old_text, new_text = spelling.format(key=former), spelling.format(key=new)
        if new in out:
            raise error(f"both {old_text} and {new_text} are given; {former} is the former "
                        f"name of {new}: give only {new}")
        out[new] = out.pop(former)
        warn_renamed(old_text, new_text, stacklevel=stacklevel + 2, category=FutureWarning)
    return out


def renamed_keywords(**renamed: str) -> Callable[[F], F]:
    """Decorator: the function still takes each former keyword (``former="new"``) for one
    release, as the new one, with a ``FutureWarning``; giving both is a ``TypeError``.

    The wrapper keeps the function's signature (``inspect.signature`` shows the new names).
    """

    def decorate(func: F) -> F:
        name = func.__qualname__.removesuffix(".__init__")

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not renamed.keys().isdisjoint(kwargs):
                kwargs = renamed_keys(kwargs, renamed, f"{name}({{key}}=...)")
            return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def renamed_attribute(old: str, new: str) -> property:
    """A read-only attribute ``old`` that warns and returns the attribute ``new``."""

    def read(self: Any) -> Any:
        warn_renamed(f"{type(self).__name__}.{old}", f"{type(self).__name__}.{new}")
        return getattr(self, new)

    return property(read, doc=f"Deprecated spelling of ``{new}`` (kept for one release).")


def renamed_fields(**renamed: str) -> Callable[[T], T]:
    """Class decorator for a dataclass (applied above ``@dataclass``): each former field name
    (``former="new"``) is still a keyword of the constructor (:func:`renamed_keywords`) and a
    read-only attribute (:func:`renamed_attribute`) for one release."""

    def decorate(cls: T) -> T:
        cls.__init__ = renamed_keywords(**renamed)(cls.__init__)  # type: ignore[misc]
        for former, new in renamed.items():
            setattr(cls, former, renamed_attribute(former, new))
        return cls

    return decorate


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


def moved_names(module: str, moved: Mapping[str, tuple[str, str]]) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` for the former names of ``module``: each former name of
    ``moved`` maps to ``(its module now, its name there)`` and still resolves, with a
    ``DeprecationWarning`` naming the new spelling; any other name is an ``AttributeError``.

    Used as ``__getattr__ = moved_names(__name__, {"old": ("pkg.new_module", "new")})``.
    """

    def __getattr__(name: str) -> Any:
        if name not in moved:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        home, new = moved[name]
        warn_renamed(f"{module}.{name}", f"{home}.{new}")
        return getattr(importlib.import_module(home), new)

    return __getattr__
