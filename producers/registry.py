"""The registry: (provider, model, environment) and mode -> a producer handler."""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable

from producers.sdk.definition import ModelInfo, ProducerDefinition
from producers.sdk.errors import UnknownModelError
from producers.sdk.handler import HandlerDeps, ProducerHandler, create_handler_factory
from producers.sdk.jobs import MODES, Descriptor, Kind, Mode


class ProviderRegistry:
    """Producers by provider and model pattern; resolves a descriptor to a handler.

    The producer that serves a descriptor is the most specific one
    (:meth:`ProducerDefinition.matches`): one declared for the asking environment by name
    beats one declared for ``*``; then an exact model name beats a pattern; among equals,
    the producer registered last wins (so a plugin's or a user's producer overrides a
    built-in one).
    """

    def __init__(self, definitions: Iterable[ProducerDefinition] = ()) -> None:
        self._definitions: list[ProducerDefinition] = []
        for definition in definitions:
            self.register(definition)

    def register(self, definition: ProducerDefinition) -> None:
        """Add a producer definition."""
        self._definitions.append(definition)

    @property
    def definitions(self) -> tuple[ProducerDefinition, ...]:
        """Registered definitions, in registration order."""
        return tuple(self._definitions)

    @property
    def providers(self) -> tuple[str, ...]:
        """The providers some registered producer serves, sorted."""
        return tuple(sorted({d.provider for d in self._definitions}))

    def find(self, descriptor: Descriptor) -> ProducerDefinition:
        """The definition serving ``descriptor``; :class:`UnknownModelError` if none.

        Ranked by environment (named beats ``*``), then model (named beats a pattern), then
        registration order (later wins).
        """
        best: tuple[int, int, ProducerDefinition] | None = None
        for order, definition in enumerate(self._definitions):
            score = definition.matches(
                descriptor.provider, descriptor.model, descriptor.environment
            )
            if score and (best is None or (score, order) >= best[:2]):
                best = (score, order, definition)
        if best is None:
            raise UnknownModelError(self._unknown_message(descriptor))
        return best[2]

    def _unknown_message(self, descriptor: Descriptor) -> str:
        known = [info.model_id for info in self.models()]
        close = difflib.get_close_matches(descriptor.model_id, known, n=3, cutoff=0.5)
        providers = self.providers
        message = f"unknown model {descriptor.model_id!r}"
        if descriptor.provider not in providers:
            message += f": no producer for provider {descriptor.provider!r} (providers: {', '.join(providers)})"
        if close:
            message += f"; did you mean {', '.join(close)}?"
        message += " (`tutopanda models list` shows every model)"
        if descriptor.provider not in providers:
            from producers import plugins

            broken = plugins.failures(plugins.PRODUCERS_GROUP, plugins.MODELS_GROUP)
            if broken:
                message += "; " + "; ".join(str(f) for f in broken)
        return message

    def resolve(self, descriptor: Descriptor, mode: Mode, deps: HandlerDeps) -> ProducerHandler:
        """The handler running ``descriptor`` in ``mode`` with ``deps``."""
        if mode not in MODES:
            raise ValueError(f"mode {mode!r} is not one of {', '.join(MODES)}")
        definition = self.find(descriptor)
        return create_handler_factory(definition)(descriptor, mode, deps)

    def models(self, kind: Kind | str | None = None) -> list[ModelInfo]:
        """Every listed model (capabilities), optionally of one kind, sorted by id."""
        seen: dict[str, ModelInfo] = {}
        for definition in self._definitions:
            if definition.catalogue is None:
                continue
            for info in definition.catalogue():
                seen[info.model_id] = info
        wanted = None if kind is None else Kind(kind)
        return sorted(
            (i for i in seen.values() if wanted is None or i.kind is wanted),
            key=lambda i: i.model_id,
        )

    def describe(self, model_id: str) -> ModelInfo:
        """The capability listing of one model id (``provider:model``)."""
        descriptor = Descriptor.parse(model_id)
        for info in self.models():
            if info.model_id == descriptor.model_id:
                return info
        self.find(descriptor)  # raises with suggestions if nothing serves it
        raise UnknownModelError(
            f"{model_id!r} is served by a wildcard producer but has no catalogue entry"
        )


def builtin_definitions() -> list[ProducerDefinition]:
    """The producers shipped with tutopanda."""
    from producers.openai.prompt import openai_prompt_producer
    from producers.replicate.producer import replicate_producers

    return [openai_prompt_producer(), *replicate_producers()]


def plugin_definitions() -> list[ProducerDefinition]:
    """The producers installed packages register under ``tutopanda.producers``, in load
    order (distribution name, then entry point name); a broken entry point is skipped with
    one warning (see :mod:`producers.plugins`)."""
    from producers import plugins

    return [d for loaded in plugins.loaded(plugins.PRODUCERS_GROUP) for d in loaded.items]


@functools.cache
def default_registry() -> ProviderRegistry:
    """The built-in producers, then the plugins' (read once per process).

    Model declaration folders registered under ``tutopanda.models`` join the Replicate
    catalogue (:func:`producers.replicate.catalogue.search_path`).
    """
    return ProviderRegistry([*builtin_definitions(), *plugin_definitions()])
