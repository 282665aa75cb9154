"""The Producer SDK: what a producer author uses.

Define a producer with :func:`define_producer`, register it in a
:class:`~producers.registry.ProviderRegistry`, and the clients (CLI, Airflow) run it.
"""

from producers.sdk.artefacts import Artefact, ArtefactBuilder, Diagnostics, ProducerResult
from producers.sdk.attachments import Attachments, attachment_from_path
from producers.sdk.definition import (
    ModelInfo,
    Prepared,
    ProducerDefinition,
    Submission,
    define_producer,
)
from producers.sdk.errors import (
    ConfigurationError,
    DeclarationError,
    ErrorCode,
    InvalidInputError,
    ProviderError,
    TemplateError,
    UnknownModelError,
)
from producers.sdk.handler import HandlerDeps, ProducerHandler, create_handler_factory
from producers.sdk.jobs import (
    GENERAL_ATTRIBUTES,
    Attachment,
    Descriptor,
    JobHandle,
    JobRequest,
    JobState,
    JobStatus,
    Kind,
    Mode,
)
from producers.sdk.runtime import CancellationSignal, ClientRegistry, ProducerRuntime
from producers.sdk.secrets import (
    ChainSecretResolver,
    EnvSecretResolver,
    SecretResolver,
    StaticSecretResolver,
    redact,
)
from producers.sdk.telemetry import ProducerLogger
from producers.sdk.templates import render

__all__ = [
    "GENERAL_ATTRIBUTES",
    "Artefact",
    "ArtefactBuilder",
    "Attachment",
    "Attachments",
    "CancellationSignal",
    "ChainSecretResolver",
    "ClientRegistry",
    "ConfigurationError",
    "DeclarationError",
    "Descriptor",
    "Diagnostics",
    "EnvSecretResolver",
    "ErrorCode",
    "HandlerDeps",
    "InvalidInputError",
    "JobHandle",
    "JobRequest",
    "JobState",
    "JobStatus",
    "Kind",
    "Mode",
    "ModelInfo",
    "Prepared",
    "ProducerDefinition",
    "ProducerHandler",
    "ProducerLogger",
    "ProducerResult",
    "ProducerRuntime",
    "ProviderError",
    "SecretResolver",
    "StaticSecretResolver",
    "Submission",
    "TemplateError",
    "UnknownModelError",
    "attachment_from_path",
    "create_handler_factory",
    "define_producer",
    "redact",
    "render",
]
