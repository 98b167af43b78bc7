"""The original SPARSE code's keyword names, accepted beside the project's own.

The layers and encoders keep the project's argument names (``lateral``, ``tau_u_range``, ...)
and also take the names the original SPARSE code uses for the same things
(``use_lateral_rnn``, ``tauu_lim``, ...), so that its scripts and configuration files run
unchanged. docs/original.md has the table. :func:`original_keywords` decorates a constructor:
it renames the original's keywords to the project's before the constructor runs, and turns
any keyword that neither name set knows into a :class:`TypeError` raised at the class the
user called (not deep inside a sub-layer), naming the keyword and listing the accepted ones.
"""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable, Mapping

__all__ = ["accepted_keywords", "original_keywords"]

_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def accepted_keywords(init: Callable) -> list[str]:
    """The keyword names a constructor decorated with :func:`original_keywords` accepts: its
    own parameters, then the original SPARSE code's names."""
    own = [name for name, p in inspect.signature(init).parameters.items()
           if name != "self" and p.kind in _NAMED]
    return own + list(getattr(init, "original_names", {}))


def original_keywords(names: Mapping[str, str]) -> Callable[[Callable], Callable]:
    """Decorate ``__init__`` so that it also takes the original's keywords.

    Args:
        names: original keyword -> the project's parameter of the same meaning (the value is
            passed on unchanged: both names mean the same thing in the same units).

    The decorated constructor raises ``TypeError`` for a keyword that is neither one of its
    parameters nor in ``names``, and for a value given under both names.
    """
    names = dict(names)

    def decorate(init: Callable) -> Callable:
        order = [name for name, p in inspect.signature(init).parameters.items()
                 if name != "self" and p.kind in _NAMED]
        own = set(order)
        missing = sorted(set(names.values()) - own)
        if missing:  # a wrong table is a bug here, not the user's problem
            raise AssertionError(f"{init.__qualname__}: no parameter {missing}")

        @functools.wraps(init)
        def wrapper(self, *args, **kwargs):
            where = type(self).__name__
            for key in list(kwargs):
                if key in own:
                    continue
                if key in names:
                    target = names[key]
                    if target in kwargs:
                        raise TypeError(
                            f"{where}: got both {key!r} (the original SPARSE code's name) and "
                            f"{target!r} (this library's name for the same thing); pass one"
                        )
                    kwargs[target] = kwargs.pop(key)
                    continue
                close = difflib.get_close_matches(key, accepted_keywords(wrapper), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise TypeError(
                    f"{where}() got an unexpected keyword argument {key!r}{hint}; it accepts "
                    f"{', '.join(sorted(own, key=order.index))}, and the original SPARSE "
                    f"code's names for some of them: {', '.join(names)}"
                )
            return init(self, *args, **kwargs)

        wrapper.original_names = names  # type: ignore[attr-defined]
        return wrapper

    return decorate
