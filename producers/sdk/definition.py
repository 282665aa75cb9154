"""Defining a producer: metadata, optional config schema, and invoke or submit/poll/collect."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from producers.sdk.jobs import Domain, JobHandle, JobStatus, Kind
from producers.sdk.jobs import Prepared as Prepared  # authors import it from here too

#: A provider name: what comes before the colon of a model id, and the suffix of the
#: provider's Airflow pool (``tutopanda_<provider>``).
PROVIDER_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")

if TYPE_CHECKING:
    from producers.sdk.artefacts import Artefact
    from producers.sdk.runtime import ProducerRuntime


class Submission(BaseModel):
    """What ``submit`` returns: the provider's job id and JSON-able state to poll it later."""

    model_config = ConfigDict(frozen=True)

    provider_job_id: str | None = None
    state: dict[str, Any] = Field(default_factory=dict)


class ModelInfo(BaseModel):
    """A model a producer serves, for capability listings (CLI ``models list``, the UI)."""

    model_config = ConfigDict(frozen=True)

    model_id: str
    provider: str
    model: str
    kind: Kind
    domain: Domain
    producer: str
    description: str | None = None
    general_attributes: tuple[str, ...] = ()
    custom_attributes: dict[str, dict[str, Any]] = Field(default_factory=dict)
    required: tuple[str, ...] = ()
    cost: dict[str, Any] = Field(default_factory=dict)
    median_seconds: float | None = None
    source: str | None = None
    unconfirmed: tuple[str, ...] = ()


PrepareFn = Callable[["ProducerRuntime"], Awaitable[Prepared]]
InvokeFn = Callable[["ProducerRuntime"], Awaitable[Sequence["Artefact"]]]
SubmitFn = Callable[["ProducerRuntime"], Awaitable[Submission]]
PollFn = Callable[["ProducerRuntime", JobHandle], Awaitable[JobStatus]]
CollectFn = Callable[["ProducerRuntime", JobHandle], Awaitable[Sequence["Artefact"]]]
CancelFn = Callable[["ProducerRuntime", JobHandle], Awaitable[None]]
KindFn = Callable[[str], Kind]
CatalogueFn = Callable[[], Iterable[ModelInfo]]


@dataclass(frozen=True)
class ProducerDefinition:
    """Everything the SDK knows about a producer. Build it with :func:`define_producer`."""

    name: str
    provider: str
    models: tuple[str, ...]
    domain: Domain
    kind: Kind | KindFn
    prepare: PrepareFn | None = None
    invoke: InvokeFn | None = None
    submit: SubmitFn | None = None
    poll: PollFn | None = None
    collect: CollectFn | None = None
    cancel: CancelFn | None = None
    config_schema: type[BaseModel] | Mapping[str, Any] | None = None
    environments: tuple[str, ...] = ("*",)
    catalogue: CatalogueFn | None = None
    poll_interval: float = 2.0
    max_attachment_bytes: int = 256 * 1024
    description: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def long_running(self) -> bool:
        """True if the producer uses submit / poll / collect."""
        return self.submit is not None

    def kind_for(self, model: str) -> Kind:
        """The kind of output this producer makes for ``model``."""
        return self.kind if isinstance(self.kind, Kind) else self.kind(model)

    def matches(self, provider: str, model: str, environment: str) -> int:
        """How specifically this definition serves ``provider:model`` in ``environment``.

        0 means not at all. Otherwise the environment counts first, the model second:

        * 4: declared for this environment by name, and for this model by name;
        * 3: declared for this environment by name, the model through a pattern;
        * 2: the environment through a pattern (``*``), the model by name;
        * 1: both through patterns.

        So in Airflow a producer declared ``environments=("airflow",)`` beats one declared for
        ``*`` even when the latter names the exact model: the environment says how a job must
        run there, the model list only how widely a producer applies.
        """
        if provider != self.provider:
            return 0
        if environment in self.environments:
            by_environment = 2
        elif any(fnmatch.fnmatchcase(environment, env) for env in self.environments):
            by_environment = 1
        else:
            return 0
        if model in self.models:
            by_model = 2
        elif any(fnmatch.fnmatchcase(model, pattern) for pattern in self.models):
            by_model = 1
        else:
            return 0
        return 2 * (by_environment - 1) + by_model


def define_producer(
    *,
    name: str,
    provider: str,
    models: Sequence[str],
    kind: Kind | KindFn,
    domain: Domain | None = None,
    prepare: PrepareFn | None = None,
    invoke: InvokeFn | None = None,
    submit: SubmitFn | None = None,
    poll: PollFn | None = None,
    collect: CollectFn | None = None,
    cancel: CancelFn | None = None,
    config_schema: type[BaseModel] | Mapping[str, Any] | None = None,
    environments: Sequence[str] = ("*",),
    catalogue: CatalogueFn | None = None,
    poll_interval: float = 2.0,
    max_attachment_bytes: int = 256 * 1024,
    description: str = "",
) -> ProducerDefinition:
    """Define a producer: the one entry point for authors.

    Give either ``invoke`` (one call that returns artefacts) or the ``submit`` / ``poll`` /
    ``collect`` trio (plus optional ``cancel``) for long jobs that a client may wait for
    elsewhere. ``prepare`` (optional) builds and validates the payload before any request.
    ``models`` are exact ids or shell-style wildcards (``"gpt-*"``, ``"*"``).

    Raises:
        ValueError: if the combination of functions is incomplete or ambiguous.
    """
    trio = (submit, poll, collect)
    if invoke is not None and any(f is not None for f in trio):
        raise ValueError(f"producer {name!r}: give either invoke or submit/poll/collect, not both")
    if invoke is None and not all(f is not None for f in trio):
        missing = [n for n, f in zip(("submit", "poll", "collect"), trio, strict=True) if f is None]
        raise ValueError(
            f"producer {name!r}: needs invoke, or all of submit/poll/collect "
            f"(missing: {', '.join(missing)})"
        )
    if not models:
        raise ValueError(f"producer {name!r}: models must name at least one model or pattern")
    if not PROVIDER_PATTERN.match(provider.lower()):
        raise ValueError(
            f"producer {name!r}: provider {provider!r} must be letters, digits, '-' or '_' "
            "(it names the provider in model ids and its Airflow pool)"
        )
    if domain is None:
        if isinstance(kind, Kind):
            domain = kind.domain
        else:
            raise ValueError(f"producer {name!r}: domain is required when kind is a function")
    if isinstance(config_schema, Mapping):
        from producers.sdk.schema import check_schema

        check_schema(config_schema)
    return ProducerDefinition(
        name=name,
        provider=provider.lower(),
        models=tuple(models),
        domain=domain,
        kind=kind,
        prepare=prepare,
        invoke=invoke,
        submit=submit,
        poll=poll,
        collect=collect,
        cancel=cancel,
        config_schema=config_schema,
        environments=tuple(environments),
        catalogue=catalogue,
        poll_interval=poll_interval,
        max_attachment_bytes=max_attachment_bytes,
        description=description,
    )
