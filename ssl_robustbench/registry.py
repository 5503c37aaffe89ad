"""One generic name → object registry, used by backbones, benchmarks, augmentations, attacks and methods."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from ssl_robustbench.errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps unique names to objects (usually classes or factories).

    Args:
        kind: what the registry holds, used in error messages (e.g. ``"backbone"``).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that registers ``obj`` under ``name``; a duplicate name is an error."""

        def add(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            return obj

        return add

    def get(self, name: str) -> T:
        """Returns the object registered as ``name``; an unknown name raises a UserError with close matches."""
        try:
            return self._items[name]
        except KeyError:
            raise UserError(unknown_name_message(self.kind, name, self._items)) from None

    def name_of(self, obj: object) -> str:
        """The name ``obj`` is registered under (KeyError if it is not registered)."""
        for name, item in self._items.items():
            if item is obj:
                return name
        raise KeyError(f"{obj!r} is not a registered {self.kind}")

    def names(self) -> list[str]:
        """Sorted registered names."""
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)


def unknown_name_message(kind: str, name: str, known: dict[str, object] | list[str]) -> str:
    """One-line message for an unknown name that suggests close matches."""
    names = sorted(known)
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    close += [n for n in names if name and name in n and n not in close][: 3 - len(close)]
    hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(names) or 'none'}"
    return f"unknown {kind} {name!r}{hint}"
