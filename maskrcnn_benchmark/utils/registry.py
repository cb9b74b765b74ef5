"""A name -> class/function table for families of interchangeable parts (SGB's ``Registry``)."""
from __future__ import annotations

from typing import Callable, Iterator


class Registry:
    """Maps a config string (e.g. ``MODEL.BACKBONE.CONV_BODY``) to a builder.

    Register with a decorator, ``@BACKBONES.register("VGG-16")``, or directly,
    ``BACKBONES.register("VGG-16", build_vgg)``. Looking up an unknown name raises a
    KeyError that lists the known names.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._items: dict[str, Callable] = {}

    def register(self, key: str, obj: Callable | None = None):
        if obj is not None:
            self._add(key, obj)
            return obj

        def deco(fn: Callable) -> Callable:
            self._add(key, fn)
            return fn
        return deco

    def _add(self, key: str, obj: Callable) -> None:
        if key in self._items:
            raise KeyError(f"{key!r} is already registered in the {self.name} registry")
        self._items[key] = obj

    def __getitem__(self, key: str) -> Callable:
        if key not in self._items:
            known = ", ".join(sorted(self._items)) or "(none)"
            raise KeyError(f"unknown {self.name} {key!r}; registered: {known}")
        return self._items[key]

    def get(self, key: str) -> Callable:
        return self[key]

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def keys(self) -> list[str]:
        return list(self._items)
