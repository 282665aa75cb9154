"""What a run's params may set: data for the movie, never configuration.

A run's params (Airflow's run conf, the trigger form, Regenerate) come from whoever may
trigger the DAG: untrusted. They may choose among what the deployment allows and fill
schema-validated fields: the topic, the number of segments, the mode, the switches, a budget,
the model of each role (from the catalogue, of the role's kind) and a role's ``inputs`` and
``custom`` attributes (data, validated against the model's schema when the run is priced).
Attachments, templates, producer config and anything that names a file or a setting come only
from the deployment (options files, ``[tutopanda]`` settings) and DAG authors.

:func:`check_run_params` refuses anything else with :class:`RefusedParam`, whose message
names the param; a client calls it before any job runs. The CLI's own user is trusted and
does not go through here (``--set`` may change anything).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from producers.pipeline.options import MAX_FALLBACKS, ROLES, ProducerOptions, Role
from producers.sdk.errors import InvalidInputError
from producers.sdk.jobs import GENERAL_ATTRIBUTES, Descriptor, Kind

#: The param naming each role's model (the Airflow pool policy reads the same names).
MODEL_PARAMS: dict[Role, str] = {role: f"{role}_model" for role in ROLES}
#: The param listing each role's fallback models (tried in order when the role's model fails
#: with a provider-side error that retries did not cure).
FALLBACK_PARAMS: dict[Role, str] = {role: f"{role}_fallbacks" for role in ROLES}
#: Every param a run may set; any other key of a run's conf is refused.
RUN_PARAMS: tuple[str, ...] = (
    "topic",
    "segments",
    "mode",
    "video",
    "review",
    "refresh",
    "refresh_jobs",
    "budget",
    "allow_unpriced",
    "options",
    *MODEL_PARAMS.values(),
    *FALLBACK_PARAMS.values(),
)
#: What kind of model may fill each role.
ROLE_KINDS: dict[Role, frozenset[Kind]] = {
    "script": frozenset({Kind.TEXT}),
    "image_prompt": frozenset({Kind.TEXT}),
    "image": frozenset({Kind.TEXT_TO_IMAGE}),
    "narration": frozenset({Kind.TEXT_TO_SPEECH}),
    "music": frozenset({Kind.TEXT_TO_MUSIC}),
    "video": frozenset({Kind.IMAGE_TO_VIDEO, Kind.TEXT_TO_VIDEO}),
}
#: General attributes a role's model must map (the video role sets its image in motion).
ROLE_NEEDS: dict[Role, tuple[str, ...]] = {"video": ("image",)}
MAX_TOPIC_CHARS = 1000
MAX_SEGMENTS = 20
MAX_OPTIONS = 50
MAX_VALUE_CHARS = 10_000
MAX_REFRESH_JOBS = 200
_OPTION_RE = re.compile(r"(?P<role>[a-z_]+)\.(?P<part>inputs|custom)\.(?P<name>[A-Za-z0-9_]+)=")
_JOB_KEY_RE = re.compile(r"[a-z_]+(\[\d{1,3}\])?")


class RefusedParam(InvalidInputError):
    """A run param that a run may not set, or not to that value; ``param`` names it."""

    def __init__(self, param: str, reason: str) -> None:
        super().__init__(f"run param {param!r} refused: {reason}", field=param)
        self.param = param


def _scalar(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, str | int | bool)


def _option_value(raw: str, where: str) -> Any:
    try:
        value = json.loads(raw, parse_constant=lambda name: math.nan)
    except (json.JSONDecodeError, RecursionError):
        value = raw
    if isinstance(value, list) and all(_scalar(v) for v in value):
        return value
    if not _scalar(value):
        raise RefusedParam(
            "options", f"{where}: a value is a string, a finite number, true/false, null or a list"
        )
    return value


def _check_options(items: Any) -> list[str]:
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise RefusedParam("options", "it is a list of ROLE.inputs.NAME=VALUE strings")
    if len(items) > MAX_OPTIONS:
        raise RefusedParam("options", f"{len(items)} entries; at most {MAX_OPTIONS}")
    for item in items:
        shown = item if len(item) <= 80 else item[:77] + "..."
        match = _OPTION_RE.match(item)
        if match is None:
            raise RefusedParam(
                "options",
                f"{shown!r}: a run may set only a role's inputs or custom attributes "
                "(ROLE.inputs.NAME=VALUE or ROLE.custom.NAME=VALUE); models have their own "
                "params, and config, templates and attachments come only from the deployment",
            )
        role, part, name = match["role"], match["part"], match["name"]
        if role not in ROLES:
            raise RefusedParam(
                "options", f"{shown!r}: unknown role {role!r}; roles: {', '.join(ROLES)}"
            )
        if part == "inputs" and name not in GENERAL_ATTRIBUTES:
            raise RefusedParam(
                "options",
                f"{shown!r}: {name!r} is not a general attribute; general attributes: "
                f"{', '.join(GENERAL_ATTRIBUTES)} (model fields go in ROLE.custom.NAME)",
            )
        raw = item[match.end() :]
        if len(raw) > MAX_VALUE_CHARS:
            raise RefusedParam(
                "options", f"{role}.{part}.{name}: longer than {MAX_VALUE_CHARS} characters"
            )
        _option_value(raw, f"{role}.{part}.{name}")
    return list(items)


def _number(params: Mapping[str, Any], name: str) -> float | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RefusedParam(name, f"{value!r} is not a finite number")
    return float(value)


def check_run_params(params: Mapping[str, Any]) -> None:
    """Refuse any param a run may not set, or a value it may not have (no I/O).

    Raises:
        RefusedParam: naming the first refused param and what is allowed.
    """
    for key in params:
        if key not in RUN_PARAMS:
            raise RefusedParam(
                str(key),
                "a run may not set it; run params: " + ", ".join(RUN_PARAMS),
            )
    topic = params.get("topic")
    if topic is not None and (not isinstance(topic, str) or len(topic) > MAX_TOPIC_CHARS):
        raise RefusedParam("topic", f"a text of at most {MAX_TOPIC_CHARS} characters")
    segments = _number(params, "segments")
    if segments is not None and (segments != int(segments) or not 1 <= segments <= MAX_SEGMENTS):
        raise RefusedParam("segments", f"a whole number from 1 to {MAX_SEGMENTS}")
    budget = _number(params, "budget")
    if budget is not None and budget < 0:
        raise RefusedParam("budget", "a budget is not negative")
    if params.get("mode") not in (None, "mock", "live"):
        raise RefusedParam("mode", "mock or live")
    for flag in ("video", "review", "refresh", "allow_unpriced"):
        if params.get(flag) is not None and not isinstance(params[flag], bool):
            raise RefusedParam(flag, "true or false")
    refresh_jobs = params.get("refresh_jobs") or []
    if (
        not isinstance(refresh_jobs, list)
        or len(refresh_jobs) > MAX_REFRESH_JOBS
        or not all(isinstance(k, str) and _JOB_KEY_RE.fullmatch(k) for k in refresh_jobs)
    ):
        raise RefusedParam("refresh_jobs", "a list of job keys (image[2]) or roles (music)")
    _check_options(params.get("options"))
    for name in MODEL_PARAMS.values():
        value = params.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise RefusedParam(name, "a model id, provider:model")
        try:
            Descriptor.parse(value)
        except ValueError as exc:
            raise RefusedParam(name, str(exc)) from None
    for name in FALLBACK_PARAMS.values():
        value = params.get(name)
        if value is None:
            continue
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise RefusedParam(name, "a list of model ids, provider:model")
        if len(value) > MAX_FALLBACKS:
            raise RefusedParam(name, f"{len(value)} models; at most {MAX_FALLBACKS}")
        for model_id in value:
            try:
                Descriptor.parse(model_id)
            except ValueError as exc:
                raise RefusedParam(name, str(exc)) from None


def run_overrides(params: Mapping[str, Any]) -> list[str]:
    """The ``ROLE.KEY=VALUE`` overrides a run's params make (call :func:`check_run_params`
    first): its options, each role's model param and the ``video`` switch."""
    overrides = list(params.get("options") or ())
    overrides += [
        f"{role}.model={params[name]}" for role, name in MODEL_PARAMS.items() if params.get(name)
    ]
    overrides += [
        f"{role}.fallbacks={json.dumps(list(params[name]))}"
        for role, name in FALLBACK_PARAMS.items()
        if params.get(name) is not None
    ]
    if params.get("video") is not None:
        overrides.append(f"video.enabled={'true' if params['video'] else 'false'}")
    return overrides


def role_model_problems(
    options: ProducerOptions, catalogue: Iterable[Any], *, only_listed: bool = True
) -> Iterator[tuple[Role, int, str]]:
    """What is wrong with each role's models (its model, then its fallbacks): not in the
    catalogue (``only_listed``), not of the role's kind, or missing an attribute the role
    gives. Yields ``(role, position, problem)``; position 0 is the role's own model."""
    listing = {info.model_id: info for info in catalogue}
    for role in ROLES:
        settings = options.role(role)
        if role == "video" and not settings.enabled:
            continue
        for position, model in enumerate(settings.models):
            model_id = Descriptor.parse(model).model_id
            what = role if position == 0 else f"{role} fallback"
            info = listing.get(model_id)
            if info is None:
                if only_listed:
                    yield (
                        role,
                        position,
                        (f"{model_id} is not in the model catalogue (tutopanda models list)"),
                    )
                continue
            if info.kind not in ROLE_KINDS[role]:
                allowed = " or ".join(sorted(k.value for k in ROLE_KINDS[role]))
                yield (
                    role,
                    position,
                    (f"{model_id} is a {info.kind.value} model; the {what} role needs {allowed}"),
                )
                continue
            needs = ROLE_NEEDS.get(role, ())
            missing = [name for name in needs if name not in info.general_attributes]
            if missing:
                yield (
                    role,
                    position,
                    (f"{model_id} takes no {', '.join(missing)}; the {what} role gives it one"),
                )


def check_role_models(
    options: ProducerOptions, catalogue: Iterable[Any], *, only_listed: bool = True
) -> None:
    """Refuse a role whose model or a fallback is not in the catalogue (``only_listed``) or
    not of the role's kind; ``catalogue`` is the registry's :class:`ModelInfo` listing.

    Raises:
        RefusedParam: naming the role's model (or fallbacks) param.
    """
    for role, position, problem in role_model_problems(options, catalogue, only_listed=only_listed):
        raise RefusedParam(MODEL_PARAMS[role] if position == 0 else FALLBACK_PARAMS[role], problem)


def _allowed_option(item: Any) -> bool:
    try:
        _check_options([item])
    except RefusedParam:
        return False
    return True


def allowed_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Only the params a run may set, and of ``options`` only the entries a run may give:
    what a manifest records and Regenerate replays (an older run's hidden options are not)."""
    allowed = {key: value for key, value in params.items() if key in RUN_PARAMS}
    if isinstance(allowed.get("options"), list):
        allowed["options"] = [item for item in allowed["options"] if _allowed_option(item)]
    return allowed


__all__ = [
    "FALLBACK_PARAMS",
    "MODEL_PARAMS",
    "ROLE_KINDS",
    "ROLE_NEEDS",
    "RUN_PARAMS",
    "RefusedParam",
    "allowed_params",
    "check_role_models",
    "check_run_params",
    "role_model_problems",
    "run_overrides",
]
