"""The model catalogue: shipped declarations plus folders from ``TUTOPANDA_MODELS_PATH``."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from producers.replicate.declaration import ModelDeclaration, load_declaration
from producers.sdk.errors import DeclarationError

BUILTIN_DIR = Path(__file__).parent / "models"
MODELS_PATH_ENV = "TUTOPANDA_MODELS_PATH"


def search_path(extra: Iterable[str | Path] = ()) -> list[Path]:
    """Folders searched for declarations, later ones overriding earlier ones."""
    folders = [BUILTIN_DIR]
    env = os.environ.get(MODELS_PATH_ENV, "")
    folders += [Path(p) for p in env.split(os.pathsep) if p.strip()]
    folders += [Path(p) for p in extra]
    return folders


class Catalogue:
    """Model declarations by model name (``owner/name``)."""

    def __init__(self, declarations: Iterable[ModelDeclaration] = ()) -> None:
        self._by_model: dict[str, ModelDeclaration] = {}
        self.sources: dict[str, Path] = {}
        for declaration in declarations:
            self._by_model[declaration.model] = declaration

    @classmethod
    def load(cls, folders: Iterable[str | Path] | None = None) -> Catalogue:
        """Load every ``*.json`` under the folders (default: :func:`search_path`).

        A missing extra folder or a malformed file raises :class:`DeclarationError`
        naming it: a catalogue with silently missing models would be worse.
        """
        catalogue = cls()
        for folder in search_path() if folders is None else [Path(f) for f in folders]:
            if not folder.is_dir():
                problem = "is not a folder" if folder.exists() else "does not exist"
                raise DeclarationError(
                    f"model declaration folder {folder} {problem} (check {MODELS_PATH_ENV})"
                )
            for path in sorted(folder.rglob("*.json")):
                declaration = load_declaration(path)
                catalogue._by_model[declaration.model] = declaration
                catalogue.sources[declaration.model] = path
        return catalogue

    def get(self, model: str) -> ModelDeclaration | None:
        """The declaration of ``owner/name``, or None."""
        return self._by_model.get(model)

    def models(self) -> list[str]:
        """Declared model names, sorted."""
        return sorted(self._by_model)

    def __iter__(self) -> Iterator[ModelDeclaration]:
        return iter(self._by_model[m] for m in self.models())

    def __len__(self) -> int:
        return len(self._by_model)
