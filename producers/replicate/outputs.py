"""What a finished prediction's output holds, read by the model's declared output.

Replicate sends a prediction's output as the model's ``Output`` schema says: a URL, a list
of URLs, a string or a list of tokens (an LLM's ``x-cog-array-type: iterator``), or a JSON
object. The output is the provider's, so it is untrusted: an error here names its shape
(types, keys), never its values (a value may be a signed URL).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from producers.clients.base import MediaJob
from producers.replicate.declaration import OutputSpec
from producers.sdk.errors import ErrorCode, ProviderError

_URL = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*://|data:)\S")
#: At most this many keys or item types are named in an error.
_NAMED = 12


def output_value(job: MediaJob) -> Any:
    """The output as the provider sent it: ``job.value``, else (an adapter that only fills
    ``outputs``) the list of output strings, else None."""
    if job.value is not None:
        return job.value
    return list(job.outputs) if job.outputs else None


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _keys(value: Mapping[Any, Any]) -> str:
    names = [repr(str(key)[:40]) for key in list(value)[:_NAMED]]
    more = len(value) - len(names)
    return ", ".join(names) + (f" and {more} more" if more > 0 else "") if names else "none"


def describe_output(value: Any) -> str:
    """The output's shape in words (types and keys, never values): ``"an object with keys
    'seed', 'nsfw'"``, ``"a list of 3 items (number, string)"``, ``"null"``."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return "an empty string" if not value else "a string"
    if isinstance(value, list | tuple):
        if not value:
            return "an empty list"
        types = sorted({_type_name(item) for item in value})
        shown = ", ".join(types[:_NAMED])
        return f"a list of {len(value)} item{'s' if len(value) != 1 else ''} ({shown})"
    if isinstance(value, Mapping):
        return f"an object with keys {_keys(value)}" if value else "an empty object"
    return f"a {_type_name(value)}"


def _malformed(job: MediaJob, what: str, *, retryable: bool = False) -> ProviderError:
    return ProviderError(
        ErrorCode.MALFORMED_OUTPUT,
        f"prediction {job.id} succeeded {what}",
        retryable=retryable,
        provider_job_id=job.id,
    )


def _is_url(value: Any) -> bool:
    return isinstance(value, str) and bool(_URL.match(value))


def _urls_in(value: Any) -> list[str]:
    """The URL strings in one value: itself, or the items of a list (not nested further)."""
    if _is_url(value):
        return [value]
    if isinstance(value, list | tuple):
        return [item for item in value if _is_url(item)]
    return []


def check_removed(job: MediaJob) -> None:
    """Refuse a prediction whose output data the provider removed."""
    if job.data_removed:  # as the adapter says it: a new prediction makes new outputs
        raise ProviderError(
            ErrorCode.NOT_FOUND,
            f"prediction {job.id} succeeded, but Replicate has removed its output data (it "
            "keeps an API prediction's outputs for an hour); a new prediction makes new ones",
            retryable=True,
            provider_job_id=job.id,
        )


def media_urls(job: MediaJob, output: OutputSpec) -> list[str]:
    """The URLs of a media model's outputs, in order.

    A string is one URL; a list gives its strings; a JSON object gives the URLs of its key
    ``output.field`` if the declaration names one, else every URL value in key order (lists
    flattened).

    Raises:
        ProviderError: ``malformed_output`` if there is no URL (what the output held: its
            types or keys), or if the output data was removed.
    """
    check_removed(job)
    value = output_value(job)
    if _is_url(value):
        return [value]
    if isinstance(value, list | tuple) and value and all(_is_url(v) for v in value):
        return list(value)
    if isinstance(value, Mapping) and value:
        if output.field is not None:
            if output.field not in value:
                raise _malformed(
                    job,
                    f"with an object output without its declared key {output.field!r} "
                    f"(keys: {_keys(value)})",
                )
            urls = _urls_in(value[output.field])
            if not urls:
                raise _malformed(
                    job,
                    f"with no URL under its declared key {output.field!r} (it holds "
                    f"{describe_output(value[output.field])})",
                )
            return urls
        urls = [url for item in value.values() for url in _urls_in(item)]
        if urls:
            return urls
        raise _malformed(
            job,
            f"with an object output that holds no URL (keys: {_keys(value)}); if one key "
            "holds the file, name it in the declaration's output.field",
        )
    if value is None:
        raise _malformed(job, "without any output")
    if isinstance(value, list | tuple) and value:
        bad = sum(1 for item in value if not _is_url(item))
        raise _malformed(
            job,
            f"with {bad} of its {len(value)} outputs not a URL (it holds {describe_output(value)})",
        )
    shape = "a string that is not a URL" if isinstance(value, str) and value else None
    raise _malformed(job, f"with no usable output (it holds {shape or describe_output(value)})")


def output_text(job: MediaJob, output: OutputSpec) -> str:
    """A text model's answer: a string as it is, a list of tokens joined; from a JSON object
    the key ``output.field`` (read the same way), else the object itself as JSON text (a
    model answering with structured output).

    Raises:
        ProviderError: ``malformed_output`` (retryable: a new sample may be fine) if there
            is no text (what the output held), or if the output data was removed.
    """
    check_removed(job)
    value = output_value(job)
    if isinstance(value, Mapping) and value:
        if output.field is None:
            return json.dumps(value, ensure_ascii=False)
        if output.field not in value:
            raise _malformed(
                job,
                f"with an object output without its declared key {output.field!r} "
                f"(keys: {_keys(value)})",
            )
        value = value[output.field]
    if isinstance(value, str):
        text = value
    elif isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        text = "".join(value)
    elif value is None:
        raise _malformed(job, "without any output", retryable=True)
    else:
        raise _malformed(
            job, f"with no text in its output (it holds {describe_output(value)})", retryable=True
        )
    if not text.strip():
        raise _malformed(job, "with an empty answer", retryable=True)
    return text
