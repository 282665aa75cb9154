"""Finding the prediction a create made when its answer was lost, instead of paying twice.

Replicate has no idempotency key: a create whose answer never arrived (the connection broke
after the request was sent, the read timed out, a proxy answered 5xx) may or may not have
made a prediction, which runs and is billed either way. The adapter then looks for it, once,
in the token's prediction list (``GET /v1/predictions?created_after=...``, newest first) and
adopts it only when it can tell it is this create's.

**What marks a create.** The request itself: the model (or version) and the exact input,
created since just before the create was sent (:data:`CLOCK_MARGIN` for clock skew). No
marker is added to the request: Replicate keeps and lists nothing a client may set freely but
the input (which the model validates) and the ``webhook`` URL, which its API document does
not list among a prediction's fields, and which Replicate calls at least on completion with
the whole prediction (input and output): a URL on a host nobody serves would be called (and
retried) on every prediction, a real one would receive them.

**The rule (conservative: never adopt a prediction another job may own).** A listed
prediction is a candidate when it came from the API (``source`` is not ``web``), names the
same model or version, has the same input (JSON equality: numbers by value, ``true`` is not
``1``), was created at or after the create was sent (less :data:`CLOCK_MARGIN`), and is not
a prediction this adapter already gave to another create (its answer arrived, or another
recovery adopted it). It is adopted only if it is the only candidate, no other create of the
same request is in flight in this adapter (its answer could name that one), and the list was
seen whole (at most :data:`MAX_PAGES` pages, cursors followed only on the API's own host).
Otherwise nothing is adopted and the create's error is raised (retryable as before, its
reason saying what the look found, never an input value): with none, or a list too long to
see whole, the retry looks once more and then creates; with two or more (identical jobs at
once, both made, or one still in flight) the retry creates anew at once, paying once more
rather than sharing a prediction between two jobs.

The limit the rule cannot pass: identical requests (same model, same input) sent by another
process (another worker) in the same minute are indistinguishable from this one. If this
create never reached Replicate while another process's identical create did, this job adopts
that prediction: it still gets an answer to exactly its request, but the two jobs share one
output (and the creates counted fall one short of the jobs). Give jobs that must differ
different inputs (a seed).

A lost create whose prediction was not found (or whose list failed) is remembered by the
adapter for :data:`REMEMBER_SECONDS`; the next create of the same request (the retry) looks
once more before sending, since a prediction may show up late (a proxy that timed out while
Replicate was still creating it). If that look cannot read the list (a 5xx, a 429, a broken
connection), the create is not sent: a retryable error asks for a later try. The memory is
the adapter's: a retry in another process (an Airflow task retried on another worker) does
not have it, and creates anew if the first look found nothing.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import httpx

from producers.sdk.errors import ErrorCode, ProviderError

__all__ = [
    "CLOCK_MARGIN",
    "MAX_PAGES",
    "REMEMBER_SECONDS",
    "CreateLedger",
    "Target",
    "created_after",
    "is_candidate",
    "may_have_reached",
    "request_key",
    "same_json",
]

#: Seconds before a create was sent that its prediction may carry as ``created_at`` (the two
#: clocks may differ): predictions created earlier are never this create's.
CLOCK_MARGIN = 60.0
#: Pages of the list read at most per recovery (100 predictions a page).
MAX_PAGES = 2
#: How long a lost create whose prediction was not found is looked for again by its retry.
REMEMBER_SECONDS = 15 * 60.0
#: Prediction ids and lost creates an adapter remembers at most (oldest forgotten first).
MAX_REMEMBERED = 4096
#: The content type of Replicate's own error answers.
PROBLEM_JSON = "application/problem+json"

Why = Literal["dropped", "timeout", "proxy_error", "unreadable"]

#: Transport failures after the request may have been sent whole.
_AFTER_SENDING = (
    httpx.ReadTimeout,
    httpx.WriteTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)


def may_have_reached(exc: BaseException) -> Why | None:
    """Why a failed create may have made a prediction, or None if it surely did not.

    A broken or timed-out connection after sending (``dropped``, ``timeout``), a 5xx whose
    body is not Replicate's own ``application/problem+json`` (``proxy_error``: a proxy or
    load balancer answered, the API behind it may have made the prediction), or a success
    answer that is not a prediction (``unreadable``). Not: a connection never made (connect
    errors and timeouts, a full pool), Replicate's own error answers (4xx, problem+json 5xx).
    """
    if isinstance(exc, ProviderError):
        status = exc.status_code
        raw = exc.raw if isinstance(exc.raw, Mapping) else {}
        if status is not None and status >= 500:
            return None if raw.get("content_type") == PROBLEM_JSON else "proxy_error"
        if status is None and exc.code is ErrorCode.MALFORMED_OUTPUT:
            return "unreadable"
        return None
    if isinstance(exc, httpx.TimeoutException):
        return "timeout" if isinstance(exc, httpx.ReadTimeout | httpx.WriteTimeout) else None
    if isinstance(exc, _AFTER_SENDING):
        return "dropped"
    if isinstance(exc, json.JSONDecodeError):
        return "unreadable"
    return None


def request_key(path: str, body: Mapping[str, Any]) -> str:
    """A digest of one create request (route and body): equal requests, equal keys."""
    text = json.dumps([path, body], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def same_json(a: Any, b: Any) -> bool:
    """JSON equality: numbers equal by value (``1`` is ``1.0``), a boolean only a boolean,
    objects by keys and values, arrays in order."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    if a is None or b is None:
        return a is None and b is None
    return type(a) is type(b) and bool(a == b)


def _timestamp(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def created_after(sent_at: float) -> str:
    """The ``created_after`` filter of a recovery: ``sent_at`` less :data:`CLOCK_MARGIN`, in
    ISO 8601 (UTC)."""
    when = datetime.fromtimestamp(sent_at - CLOCK_MARGIN, UTC)
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Target:
    """What a create asked for: a model (``owner/name``) or a version, and the input sent.

    Attributes:
        model: ``owner/name`` (a create by model, or the name part of ``owner/name:id``).
        version: The version id (a create by version), else None.
        input: The input exactly as sent (files already inline or uploaded).
    """

    model: str | None
    version: str | None
    input: Mapping[str, Any]

    @classmethod
    def of(cls, model: str, version: str | None, body: Mapping[str, Any]) -> Target:
        """The target of a create of ``model`` (pinned to ``version`` if given)."""
        if not version:
            return cls(model=model, version=None, input=body)
        name, colon, version_id = version.partition(":")
        if colon:
            return cls(model=name, version=version_id, input=body)
        if "/" in version:  # owner/name: the model's latest version
            return cls(model=version, version=None, input=body)
        return cls(model=None, version=version, input=body)


def is_candidate(item: Any, target: Target, since: float) -> bool:
    """True if a listed prediction (untrusted JSON) could be the one ``target``'s create made
    at ``since``: see the module docstring."""
    if not isinstance(item, Mapping) or not isinstance(item.get("id"), str) or not item["id"]:
        return False
    if item.get("source") not in (None, "api") or item.get("deployment"):
        return False
    model = item.get("model")
    if target.model is not None and (
        not isinstance(model, str) or model.casefold() != target.model.casefold()
    ):
        return False
    if target.version is not None and item.get("version") != target.version:
        return False
    created = _timestamp(item.get("created_at"))
    if created is None or created < since - CLOCK_MARGIN:
        return False
    return same_json(item.get("input"), target.input)


class CreateLedger:
    """What one adapter knows of its own creates: the predictions already given to a
    create, the creates in flight and the lost creates not yet found, by request key.

    Bounded: at most :data:`MAX_REMEMBERED` ids and lost creates, oldest forgotten first.
    """

    def __init__(self, clock: Any = time.time) -> None:
        self._clock = clock
        self._owned: OrderedDict[str, None] = OrderedDict()
        self._in_flight: dict[str, int] = {}
        self._lost: OrderedDict[str, float] = OrderedDict()

    def own(self, prediction_id: str) -> None:
        """Record that ``prediction_id`` belongs to a create (never adopted by another)."""
        self._owned[prediction_id] = None
        self._owned.move_to_end(prediction_id)
        while len(self._owned) > MAX_REMEMBERED:
            self._owned.popitem(last=False)

    def owned(self, prediction_id: str) -> bool:
        """True if ``prediction_id`` already belongs to a create of this adapter."""
        return prediction_id in self._owned

    def sending(self, key: str) -> None:
        """A create of ``key`` is being sent."""
        self._in_flight[key] = self._in_flight.get(key, 0) + 1

    def answered(self, key: str) -> None:
        """A create of ``key`` has its answer (or its failure)."""
        left = self._in_flight.get(key, 0) - 1
        if left > 0:
            self._in_flight[key] = left
        else:
            self._in_flight.pop(key, None)

    def in_flight(self, key: str) -> int:
        """Creates of ``key`` sent and not yet answered."""
        return self._in_flight.get(key, 0)

    def lose(self, key: str, sent_at: float) -> None:
        """Remember a lost create of ``key`` sent at ``sent_at`` whose prediction was not found."""
        self._lost[key] = min(sent_at, self._lost.get(key, sent_at))
        self._lost.move_to_end(key)
        while len(self._lost) > MAX_REMEMBERED:
            self._lost.popitem(last=False)

    def lost_at(self, key: str) -> float | None:
        """When a remembered lost create of ``key`` was sent (None: none, or too long ago)."""
        sent_at = self._lost.get(key)
        if sent_at is not None and self._clock() - sent_at > REMEMBER_SECONDS:
            del self._lost[key]
            return None
        return sent_at

    def found(self, key: str) -> None:
        """Forget the lost create of ``key`` (found, or given up)."""
        self._lost.pop(key, None)
