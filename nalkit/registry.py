"""Registries: the one list of names of each kind (methods, models, datasets, noise modes).

Each kind has one :class:`Registry`, filled where the things are defined (``@METHODS.register("nal")`` next
to the class); config validation, the command line's choices, the builders and the book read the registry,
so adding a method, model, dataset or noise mode is one registration and no list to edit elsewhere.

>>> from nalkit.methods import METHODS
>>> METHODS.names()
('ce', 'gce', 'sce', 'elr', 'selc', 'nal')
>>> METHODS.get("nal")
<class 'nalkit.methods.NAL'>
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(ValueError):
    """A name that is not registered; the message lists the registered ones and the closest match."""


class Registry(Generic[T]):
    """Names of one kind, in registration order, each mapped to an object.

    Iterating yields the names, ``name in registry`` tests membership, and ``registry.get(name)`` returns
    the object or raises :class:`UnknownNameError` with a suggestion.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: register the decorated object under ``name``."""

        def decorate(obj: T) -> T:
            self.add(name, obj)
            return obj

        return decorate

    def add(self, name: str, obj: T) -> None:
        """Register ``obj`` under ``name``; a name is registered once."""
        if not name or not name.replace("_", "").isalnum() or name != name.lower():
            raise ValueError(f"{self.kind} name {name!r} must be lower-case letters, digits and '_'")
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = obj

    def remove(self, name: str) -> T:
        """Unregister ``name`` (a plug-in's teardown, a test); returns its object."""
        return self._items.pop(name)

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except (KeyError, TypeError):
            raise UnknownNameError(self.unknown(name)) from None

    def unknown(self, name: object) -> str:
        """The message for an unregistered ``name``: what was given, what exists, the closest match."""
        close = difflib.get_close_matches(str(name), list(self._items), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown {self.kind} {name!r}; choose one of {', '.join(self._items)}{hint}"

    def names(self) -> tuple[str, ...]:
        return tuple(self._items)

    def items(self) -> list[tuple[str, T]]:
        return list(self._items.items())

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._items)})"
