"""Providers from other packages: the three ``tutopanda.*`` entry point groups.

A package installed beside tutopanda registers what it brings in its ``pyproject.toml``::

    [project.entry-points."tutopanda.producers"]
    acme = "tutopanda_acme:PRODUCERS"        # a ProducerDefinition, an iterable of them,
                                             # or a zero-argument callable returning one
    [project.entry-points."tutopanda.clients"]
    acme = "tutopanda_acme:ACME_CLIENT"      # a ClientSpec (same forms)
    [project.entry-points."tutopanda.models"]
    acme = "tutopanda_acme:MODELS_DIR"       # a folder of model declarations (a path string
                                             # or Path, several, or a callable returning them)

Each group is read once per process, in a fixed order (distribution name, then entry point
name), after the built-ins. A broken entry point (its module does not import, it names
something of the wrong type, a folder that does not exist) never takes the built-ins or the
other plugins down with it: it is skipped, one warning line names the group, the entry point,
its distribution and what went wrong, and asking for its provider's models says it again
(:func:`failures`).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

PRODUCERS_GROUP = "tutopanda.producers"
CLIENTS_GROUP = "tutopanda.clients"
MODELS_GROUP = "tutopanda.models"
GROUPS = (PRODUCERS_GROUP, CLIENTS_GROUP, MODELS_GROUP)

log = logging.getLogger("producers.plugins")


class PluginError(Exception):
    """An entry point that cannot be used; the message is one line naming it."""


@dataclass(frozen=True)
class Plugin:
    """One entry point of one installed distribution."""

    group: str
    name: str
    value: str
    distribution: str

    def __str__(self) -> str:
        return f"{self.group} entry point {self.name!r} ({self.value}) of {self.distribution}"


@dataclass(frozen=True)
class Loaded:
    """What one entry point brought: its items (definitions, specs or folders)."""

    plugin: Plugin
    items: tuple[Any, ...]


@dataclass(frozen=True)
class Failure:
    """An entry point that was skipped, and why (one line)."""

    plugin: Plugin
    reason: str

    def __str__(self) -> str:
        return f"{self.plugin} failed to load and is skipped: {self.reason}"


def _plugin(entry_point: metadata.EntryPoint) -> Plugin:
    dist = entry_point.dist
    distribution = f"{dist.name} {dist.version}" if dist is not None else "an unknown distribution"
    return Plugin(entry_point.group, entry_point.name, entry_point.value, distribution)


def _entry_points(group: str) -> list[metadata.EntryPoint]:
    found = metadata.entry_points(group=group)

    def key(entry_point: metadata.EntryPoint) -> tuple[str, str]:
        dist = entry_point.dist
        return ((dist.name.lower() if dist is not None else ""), entry_point.name)

    return sorted(found, key=key)


def items_of(obj: Any, expected: type | tuple[type, ...], what: str) -> tuple[Any, ...]:
    """The ``expected`` items ``obj`` names: one, an iterable of them, or a zero-argument
    callable returning either.

    Raises:
        PluginError: ``obj`` (or what it returned) is something else, naming what it is.
    """
    if callable(obj) and not isinstance(obj, expected):
        try:
            obj = obj()
        except Exception as exc:  # a plugin's factory failing is the plugin's failure
            raise PluginError(f"calling it raised {type(exc).__name__}: {exc}") from exc
    if isinstance(obj, expected):
        return (obj,)
    if isinstance(obj, Iterable) and not isinstance(obj, str | bytes):
        items = tuple(obj)
        wrong = [type(item).__name__ for item in items if not isinstance(item, expected)]
        if wrong:
            raise PluginError(f"it names {wrong[0]} among its items; each must be {what}")
        return items
    raise PluginError(f"it names {type(obj).__name__}, not {what} (or an iterable of them)")


def _load(
    group: str, convert: Callable[[Any], tuple[Any, ...]]
) -> tuple[tuple[Loaded, ...], tuple[Failure, ...]]:
    loaded: list[Loaded] = []
    failed: list[Failure] = []
    for entry_point in _entry_points(group):
        plugin = _plugin(entry_point)
        try:
            items = convert(entry_point.load())
        except PluginError as exc:
            failed.append(Failure(plugin, str(exc)))
        except Exception as exc:  # the boundary: any import error of a plugin is reported
            failed.append(Failure(plugin, f"{type(exc).__name__}: {exc}"))
        else:
            loaded.append(Loaded(plugin, items))
    for failure in failed:
        log.warning("tutopanda plugin: %s", failure)
    return tuple(loaded), tuple(failed)


def _producers(obj: Any) -> tuple[Any, ...]:
    from producers.sdk.definition import ProducerDefinition

    return items_of(obj, ProducerDefinition, "a ProducerDefinition (define_producer)")


def _clients(obj: Any) -> tuple[Any, ...]:
    from producers.clients.spec import ClientSpec

    return items_of(obj, ClientSpec, "a ClientSpec")


def _folders(obj: Any) -> tuple[Any, ...]:
    folders: list[Path] = []
    item: str | os.PathLike[str]
    for item in items_of(obj, (str, os.PathLike), "a folder path (str or Path)"):
        folder = Path(item)
        if not folder.is_absolute():
            raise PluginError(f"the folder {folder} is not an absolute path")
        if not folder.is_dir():
            problem = "is not a folder" if folder.exists() else "does not exist"
            raise PluginError(f"the model declaration folder {folder} {problem}")
        folders.append(folder)
    return tuple(folders)


_CONVERTERS: dict[str, Callable[[Any], tuple[Any, ...]]] = {
    PRODUCERS_GROUP: _producers,
    CLIENTS_GROUP: _clients,
    MODELS_GROUP: _folders,
}


@functools.cache
def load(group: str) -> tuple[tuple[Loaded, ...], tuple[Failure, ...]]:
    """Every entry point of ``group`` (one of :data:`GROUPS`), loaded once per process:
    what loaded, in order, and what was skipped (each already logged as one warning)."""
    if group not in _CONVERTERS:
        raise ValueError(f"unknown tutopanda entry point group {group!r}")
    return _load(group, _CONVERTERS[group])


def loaded(group: str) -> tuple[Loaded, ...]:
    """The entry points of ``group`` that loaded, in order."""
    return load(group)[0]


def failures(*groups: str) -> tuple[Failure, ...]:
    """The entry points of ``groups`` (default: all three) that were skipped."""
    return tuple(f for group in groups or GROUPS for f in load(group)[1])


__all__ = [
    "CLIENTS_GROUP",
    "GROUPS",
    "MODELS_GROUP",
    "PRODUCERS_GROUP",
    "Failure",
    "Loaded",
    "Plugin",
    "PluginError",
    "failures",
    "items_of",
    "load",
    "loaded",
]
