"""The model catalogue: shipped declarations, installed packages' folders (the
``tutopanda.models`` entry point group) and folders from ``TUTOPANDA_MODELS_PATH``."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from producers.replicate.declaration import (
    ModelDeclaration,
    parse_declaration,
    read_declaration_data,
)
from producers.sdk.errors import DeclarationError
from producers.sdk.jobs import Domain, Kind

BUILTIN_DIR = Path(__file__).parent / "models"
MODELS_PATH_ENV = "TUTOPANDA_MODELS_PATH"

log = logging.getLogger(__name__)


def plugin_folders() -> dict[Path, str]:
    """Declaration folders installed packages register (``tutopanda.models``), in load
    order, each with the entry point that named it."""
    from producers import plugins

    return {
        folder: str(loaded.plugin)
        for loaded in plugins.loaded(plugins.MODELS_GROUP)
        for folder in loaded.items
    }


def models_path_folders() -> list[Path]:
    """The deployment's folders: ``TUTOPANDA_MODELS_PATH`` (``os.pathsep``-separated)."""
    env = os.environ.get(MODELS_PATH_ENV, "")
    return [Path(p) for p in env.split(os.pathsep) if p.strip()]


def search_path(extra: Iterable[str | Path] = ()) -> list[Path]:
    """Folders searched for declarations, later ones overriding earlier ones: the built-in
    folder, the plugins' folders, ``TUTOPANDA_MODELS_PATH`` (so the deployment's own
    declarations override a package's), then ``extra``."""
    folders = [BUILTIN_DIR]
    folders += [f for f in plugin_folders() if f not in folders]
    folders += models_path_folders()
    folders += [Path(p) for p in extra]
    return folders


class Catalogue:
    """Model declarations by model name (``owner/name``).

    Loading reads and parses every declaration file but validates a declaration (its
    schema checks are the costly part) only when it is first asked for: a task that runs one
    model validates one declaration. Listing every declaration validates them all.
    """

    def __init__(self, declarations: Iterable[ModelDeclaration] = ()) -> None:
        self._by_model: dict[str, ModelDeclaration] = {}
        #: Read but not yet validated: model -> (file, parsed JSON, plugin or None).
        self._pending: dict[str, tuple[Path, Any, str | None]] = {}
        self.sources: dict[str, Path] = {}
        for declaration in declarations:
            self._by_model[declaration.model] = declaration

    @classmethod
    def load(cls, folders: Iterable[str | Path] | None = None) -> Catalogue:
        """Read every ``*.json`` under the folders (default: :func:`search_path`); later
        folders override earlier ones.

        A missing extra folder or an unreadable file raises :class:`DeclarationError`
        naming it, and so does a malformed declaration when it is validated (on first use,
        or at once when listing): a catalogue with silently missing models would be worse.
        The one exception is a plugin's folder (``tutopanda.models``): its malformed file is
        skipped with one warning naming the file and the package, so a broken package never
        takes the other models down.
        """
        catalogue = cls()
        plugins = plugin_folders() if folders is None else {}
        for folder in search_path() if folders is None else [Path(f) for f in folders]:
            if not folder.is_dir():
                problem = "is not a folder" if folder.exists() else "does not exist"
                raise DeclarationError(
                    f"model declaration folder {folder} {problem} (check {MODELS_PATH_ENV})"
                )
            plugin = plugins.get(folder)
            for path in sorted(folder.rglob("*.json")):
                try:
                    data = read_declaration_data(path)
                    model = data.get("model") if isinstance(data, dict) else None
                    if not isinstance(model, str):  # malformed: say what is wrong at once
                        parse_declaration(data, source=path)
                        raise DeclarationError(f"malformed model declaration {path}: no model")
                except DeclarationError as exc:
                    if plugin is None:
                        raise
                    log.warning("tutopanda plugin: %s: skipped %s", plugin, exc)
                    continue
                catalogue._by_model.pop(model, None)
                catalogue._pending[model] = (path, data, plugin)
                catalogue.sources[model] = path
        return catalogue

    def get(self, model: str) -> ModelDeclaration | None:
        """The declaration of ``owner/name`` (validated on first use), or None.

        Raises:
            DeclarationError: its file is not a valid declaration.
        """
        pending = self._pending.pop(model, None)
        if pending is not None:
            path, data, plugin = pending
            try:
                self._by_model[model] = parse_declaration(data, source=path)
            except DeclarationError as exc:
                if plugin is None:
                    raise
                log.warning("tutopanda plugin: %s: skipped %s", plugin, exc)
                self.sources.pop(model, None)
                return None
        return self._by_model.get(model)

    def models(self, *, domain: Domain | None = None) -> list[str]:
        """Declared model names, sorted (nothing validated); with ``domain``, only those
        whose kind is of it (``prompt``: text-to-text; ``media``: every other kind, and a
        file whose kind is not known yet, so that validating it reports what is wrong)."""
        names = sorted({*self._by_model, *self._pending})
        if domain is None:
            return names
        wanted = ("media", None) if domain == "media" else (domain,)
        return [name for name in names if self._domain_of(name) in wanted]

    def _domain_of(self, model: str) -> Domain | None:
        """The domain of a model's kind, read without validating its declaration (None:
        not a known kind)."""
        found = self._by_model.get(model)
        if found is not None:
            return found.kind.domain
        pending = self._pending.get(model)
        raw = pending[1].get("kind") if pending is not None else None
        try:
            return Kind(str(raw)).domain
        except ValueError:
            return None

    def __iter__(self) -> Iterator[ModelDeclaration]:
        found = (self.get(model) for model in self.models())
        return iter([declaration for declaration in found if declaration is not None])

    def __len__(self) -> int:
        return len(self.models())
