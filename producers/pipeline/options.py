"""Producer options: which producer fills each role of the movie pipeline, and how."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from producers.sdk.documents import json_or_text, read_document
from producers.sdk.errors import InvalidInputError
from producers.sdk.jobs import Descriptor
from producers.sdk.limits import MAX_NESTING_DEPTH

Role = Literal["script", "image_prompt", "image", "narration", "music", "video"]
ROLES: tuple[Role, ...] = ("script", "image_prompt", "image", "narration", "music", "video")
DEFAULT_OPTIONS = Path(__file__).with_name("default_options.yaml")


class FallbackModel(BaseModel):
    """A model to try when the role's model fails with a provider-side error that retries did
    not cure. Its ``inputs`` are merged over the role's; ``custom`` attributes belong to a
    model, so the role's are not carried over: give the fallback its own."""

    model_config = ConfigDict(extra="forbid")

    model: str
    inputs: dict[str, Any] = Field(default_factory=dict)
    custom: dict[str, Any] = Field(default_factory=dict)

    @field_validator("model")
    @classmethod
    def _model_id(cls, value: str) -> str:
        Descriptor.parse(value)
        return value


#: Fallback models per role, at most.
MAX_FALLBACKS = 5


def _fallback_list(value: Any) -> Any:
    """``"a:b, c:d"`` (what ``--set ROLE.fallbacks=...`` gives) or one model id -> a list;
    a string item -> ``{"model": item}``."""
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list | tuple):
        return [{"model": item} if isinstance(item, str) else item for item in value]
    return value


class RoleOptions(BaseModel):
    """One role: the model that fills it, its fallback models, and what it is given."""

    model_config = ConfigDict(extra="forbid")

    model: str
    enabled: bool = True
    refresh: bool = False
    config: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, Any] = Field(default_factory=dict)
    custom: dict[str, Any] = Field(default_factory=dict)
    attachments: list[str] = Field(default_factory=list)
    fallbacks: list[FallbackModel] = Field(default_factory=list, max_length=MAX_FALLBACKS)

    @field_validator("model")
    @classmethod
    def _model_id(cls, value: str) -> str:
        Descriptor.parse(value)
        return value

    @field_validator("fallbacks", mode="before")
    @classmethod
    def _fallbacks(cls, value: Any) -> Any:
        return _fallback_list(value)

    @property
    def descriptor(self) -> Descriptor:
        """The role's ``(provider, model)``."""
        return Descriptor.parse(self.model)

    @property
    def models(self) -> list[str]:
        """The role's model, then its fallbacks, in the order they are tried."""
        return [self.model, *(f.model for f in self.fallbacks)]


class ProducerOptions(BaseModel):
    """Every role of the pipeline."""

    model_config = ConfigDict(extra="forbid")

    script: RoleOptions
    image_prompt: RoleOptions
    image: RoleOptions
    narration: RoleOptions
    music: RoleOptions
    video: RoleOptions

    def role(self, name: Role) -> RoleOptions:
        """The options of one role."""
        options: RoleOptions = getattr(self, name)
        return options


def _read(path: Path) -> dict[str, Any]:
    data = read_document(path, what="options file", default_format="yaml")
    if not isinstance(data, dict):
        raise InvalidInputError(f"options file {path} must hold a mapping of roles")
    unknown = sorted(set(data) - set(ROLES))
    if unknown:
        raise InvalidInputError(
            f"options file {path}: unknown role(s) {', '.join(unknown)}; roles: {', '.join(ROLES)}"
        )
    base = path.parent
    for name, role in data.items():
        if isinstance(role, dict) and isinstance(role.get("attachments"), list):
            paths = role["attachments"]
            if not all(isinstance(a, str) and a for a in paths):
                raise InvalidInputError(
                    f"options file {path}: {name}.attachments must be a list of file paths"
                )
            role["attachments"] = [str((base / a).resolve()) for a in paths]
    return data


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``override`` into ``base``: mappings merge, anything else replaces."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _parse_value(raw: str, *, label: str) -> Any:
    return json_or_text(raw, label=label)


def parse_override(text: str) -> dict[str, Any]:
    """``image.custom.size=2K`` -> ``{"image": {"custom": {"size": "2K"}}}``.

    Raises:
        InvalidInputError: one line naming the override: not ``ROLE.KEY=VALUE``, an unknown
            role, a path deeper than the nesting limit, or a value that is not a finite
            number (``1e999``, ``NaN``, ``Infinity``) or is JSON nested too deeply.
    """
    path, sep, raw = text.partition("=")
    keys = [k for k in path.strip().split(".") if k]
    if not sep or len(keys) < 2:
        raise InvalidInputError(
            f"override {text[:80]!r} is not ROLE.KEY=VALUE (e.g. image.model=replicate:google/nano-banana)"
        )
    if keys[0] not in ROLES:
        raise InvalidInputError(
            f"override {text[:80]!r}: unknown role {keys[0]!r}; roles: {', '.join(ROLES)}"
        )
    if len(keys) > MAX_NESTING_DEPTH:
        raise InvalidInputError(
            f"override {path[:80]!r}... has {len(keys)} keys; at most {MAX_NESTING_DEPTH}"
        )
    value: Any = (
        raw
        if keys[-1] in ("model", "prompt", "user_prompt", "system_prompt")
        else _parse_value(raw, label=f"override {'.'.join(keys)}")
    )
    for key in reversed(keys):
        value = {key: value}
    return dict(value)


def load_options(
    files: Iterable[str | Path] = (),
    overrides: Iterable[str] = (),
    *,
    default: Path | None = DEFAULT_OPTIONS,
) -> ProducerOptions:
    """The default options, then each file, then each override; validated.

    When a file or override changes a role's model, that role's ``custom`` attributes from
    earlier layers are dropped unless the same layer sets them: they belong to the old model.
    """
    data: dict[str, Any] = _read(default) if default is not None else {}
    layers = [_read(Path(f)) for f in files] + [parse_override(o) for o in overrides]
    for layer in layers:
        for role, settings in layer.items():
            if isinstance(settings, Mapping) and "model" in settings and role in data:
                old = data[role]
                if isinstance(old, Mapping) and old.get("model") != settings["model"]:
                    data[role] = {k: v for k, v in old.items() if k != "custom"}
        data = merge(data, layer)
    try:
        return ProducerOptions.model_validate(data)
    except ValidationError as exc:
        problems = []
        for item in exc.errors():
            loc = ".".join(str(p) for p in item["loc"])
            problems.append(f"{loc}: {item['msg']}")
        raise InvalidInputError("invalid producer options: " + "; ".join(problems)) from None
