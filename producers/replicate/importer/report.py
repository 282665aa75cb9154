"""What an import step tells its caller: notes on what it inferred, and the final report.

Every step of the importer returns what it found together with its :class:`Notes`; the
orchestration (:mod:`producers.replicate.importer.run`) adds the notes up, in step order,
into the :class:`ImportResult` that ``tutopanda models import`` prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from producers.replicate.declaration import ModelDeclaration
from producers.sdk.errors import DeclarationError


@dataclass
class Notes:
    """Human-readable lines a step wrote about its decisions.

    Attributes:
        inferred: One line per decision and its evidence.
        not_inferred: What could not be inferred, or was only guessed.
        unconfirmed: Facts the declaration keeps in its ``unconfirmed`` list.
    """

    inferred: list[str] = field(default_factory=list)
    not_inferred: list[str] = field(default_factory=list)
    unconfirmed: list[str] = field(default_factory=list)

    def extend(self, other: Notes) -> None:
        """Append ``other``'s lines after this one's, list by list."""
        self.inferred.extend(other.inferred)
        self.not_inferred.extend(other.not_inferred)
        self.unconfirmed.extend(other.unconfirmed)


def gather(*steps: Notes) -> Notes:
    """The notes of several steps, in the order given."""
    total = Notes()
    for notes in steps:
        total.extend(notes)
    return total


@dataclass
class ImportResult:
    """A declaration inferred from metadata, with what was inferred and what was not.

    Attributes:
        declaration: The declaration (valid: it passed :func:`parse_declaration`).
        inferred: Human-readable lines, one per decision and its evidence, e.g.
            ``"mapping: aspect_ratio -> aspect_ratio (exact name; fallback '16:9')"``.
        not_inferred: Lines for what could not be inferred or was only guessed, e.g.
            ``"general attribute 'voice': no matching field"``.
    """

    declaration: ModelDeclaration
    inferred: list[str] = field(default_factory=list)
    not_inferred: list[str] = field(default_factory=list)


def import_error(source: str, message: str) -> DeclarationError:
    """The error for metadata that cannot be imported, naming where it came from."""
    return DeclarationError(f"cannot import model metadata {source}: {message}")
