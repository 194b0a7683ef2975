"""One lazy registry for everything the project looks up by name.

Environments, LLM backends, evaluation policies and suites, recipe kinds, generation methods, injection types
and CLI command modules are all "a name in a recipe or on the command line -> a Python object". Each of them is
a `Registry`; entries are either the object itself or a lazy string, ``"module:attribute"`` (or ``"module"`` for
a module that is the entry itself, e.g. a generation method), imported on first use, so that `toolace-mt --help` does not import torch and a registry can name code it must not import at
module level (the app registers the packages above core this way; core never names them).

An unknown name is a `RegistryError` (a `ValueError`, so the CLI reports it as a one-line error) that lists the
known names and suggests the closest one.
"""
from __future__ import annotations

import difflib
import importlib
import re
from typing import Any, Callable, Generic, Iterator, Optional, TypeVar, Union, overload

T = TypeVar("T")
_LAZY = re.compile(r"[A-Za-z_][\w.]*(:[A-Za-z_]\w*)?")


class RegistryError(ValueError):
    """An unknown or unloadable registry entry; the message names the registry, the entry and the known names."""


class Registry(Generic[T]):
    """A mapping name -> object whose entries may be lazy ``"module:attribute"`` strings."""

    def __init__(self, what: str, discover: Optional[Callable[[], None]] = None):
        self.what = what  # what an entry is, for messages: "LLM backend", "suite", ...
        self._entries: dict[str, Union[str, T]] = {}
        self._discover = discover  # imports modules that register themselves (e.g. every env domain)
        self._discovered = discover is None

    # ---- registration ------------------------------------------------------------------------
    @overload
    def register(self, name: str) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, target: Union[str, T]) -> Union[str, T]: ...

    def register(self, name, target=None):
        """``reg.register("x", obj)``, ``reg.register("x", "pkg.mod:obj")`` or ``@reg.register("x")``.

        A name is registered once: registering it again with another entry is a `RegistryError` naming both
        (two plugins claiming one name would otherwise make the last import win, silently). Registering the same
        entry again is a no-op, and a module that registers the object its lazy entry names resolves that entry.
        """
        if target is None:
            def deco(obj: T) -> T:
                self._put(name, obj)
                return obj

            return deco
        if isinstance(target, str) and not _LAZY.fullmatch(target):
            raise RegistryError(f"{self.what} {name!r}: lazy entry {target!r} must be 'module' or 'module:attribute'")
        self._put(name, target)
        return target

    def _put(self, name: str, target: Union[str, T]) -> None:
        old = self._entries.get(name, target)
        if isinstance(target, str) and not isinstance(old, str) and _names(target, old):
            return  # the lazy entry names the object its module registered already: keep the object
        if old is not target and old != target and not (isinstance(old, str) and _names(old, target)):
            raise RegistryError(f"{self.what} {name!r} is registered twice: {_where(old)} and {_where(target)} "
                                f"(rename one, or unregister the first)")
        self._entries[name] = target

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)

    # ---- lookup ------------------------------------------------------------------------------
    def _ensure_discovered(self) -> None:
        if not self._discovered:
            self._discovered = True
            self._discover()

    def names(self) -> list[str]:
        self._ensure_discovered()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._ensure_discovered()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> T:
        self._ensure_discovered()
        if name not in self._entries:
            known = sorted(self._entries)
            close = difflib.get_close_matches(str(name), known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise RegistryError(f"unknown {self.what} {name!r} (known: {', '.join(known) or 'none'}){hint}")
        entry = self._entries[name]
        if isinstance(entry, str):
            modname, _, attr = entry.partition(":")
            try:
                module = importlib.import_module(modname)
            except ModuleNotFoundError as e:
                if e.name and modname.startswith(e.name):
                    raise RegistryError(f"{self.what} {name!r}: module {modname} is not installed") from None
                raise  # the module exists but needs a missing dependency: that error is the useful one
            try:
                obj = getattr(module, attr) if attr else module
            except AttributeError:
                raise RegistryError(f"{self.what} {name!r}: {modname} has no {attr!r}") from None
            # The import may have registered the real object under this name already; keep whichever is there.
            if self._entries.get(name) == entry:
                self._entries[name] = obj
            return obj  # type: ignore[return-value]
        return entry

    def items(self) -> list[tuple[str, T]]:
        return [(n, self.get(n)) for n in self.names()]

    def __repr__(self) -> str:
        return f"Registry({self.what!r}, {len(self._entries)} entries)"


def _where(entry: Any) -> str:
    if isinstance(entry, str):
        return repr(entry)
    mod = getattr(entry, "__module__", None) or type(entry).__module__
    return f"{mod}:{getattr(entry, '__qualname__', None) or type(entry).__qualname__}"


def _names(lazy: str, obj: Any) -> bool:
    """Whether the lazy entry ``"module:attribute"`` names `obj` (the module registering its own object)."""
    modname, _, attr = lazy.partition(":")
    if not attr:
        return getattr(obj, "__name__", None) == modname
    return getattr(obj, "__module__", None) == modname and getattr(obj, "__qualname__", None) == attr


__all__ = ["Registry", "RegistryError"]
