"""Model backends registered by name, chosen by a setting (like Frigate's detector plugins).

Each kind of model (detector, language model; OCR and speech to come) has one registry.
A backend registers a factory under its name; the factory reads its own settings and
imports its heavy libraries only when it is built. Unknown names get one clear error that
lists what is registered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from footage.errors import Unavailable

T = TypeVar("T")


class UnknownBackend(Unavailable):
    """A setting names a backend nobody registered."""


class Backends(Generic[T]):
    def __init__(self, kind: str, setting: str) -> None:
        self.kind = kind  # e.g. "detector"
        self.setting = setting  # e.g. "FOOTAGE_DETECTOR"
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def add(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories:
                raise RuntimeError(f"{self.kind} backend {name!r} is registered twice")
            self._factories[name] = factory
            return factory

        return add

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._factories))

    def factory(self, name: str) -> Callable[..., T]:
        found = self._factories.get(name)
        if found is None:
            raise UnknownBackend(
                f"unknown {self.kind} backend {name!r} in {self.setting}; registered: "
                f"{', '.join(self.names) or 'none'}"
            )
        return found
