"""Step 7: infer cost and latency: a price from the metadata, the median time.

Price texts come in many shapes (``$0.10 per thousand input characters``, ``*480p*: 0.018
per second of video *720p*: 0.036 per second of video``); :func:`parse_cost` reads one rate
or a table of labelled rates keyed by an input field. A price per second of compute becomes
a price per run through the median latency. Without a published price, a model billed by
compute time is priced by its hardware (when the metadata names it) or bounded from above
by its example prediction's time at the most expensive public hardware
(:mod:`producers.replicate.hardware`); with none of these, its cost is unknown.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from producers.replicate.declaration import CostRateBy, CostSpec, CostUnit
from producers.replicate.hardware import SOURCE, Hardware, find_hardware, most_expensive
from producers.replicate.importer.metadata import Metadata
from producers.replicate.importer.report import Notes
from producers.replicate.importer.schema import Schema

_LABEL = re.compile(
    r"\*(?P<star>[^*]+)\*\s*:?"
    r"|\((?P<paren>[^()]+)\)\s*:?"
    r"|(?P<kv>\b[A-Za-z_][\w.-]*\s*=\s*[\w.:-]+)\s*:"
)
_PRICE = re.compile(
    r"\$?\s*(?P<num>\d[\d,]*(?:\.\d+)?)\s*(?:usd|us\$|dollars?)?\s*(?:per|/)\s*(?P<unit>[^;$*()]*)",
    re.IGNORECASE,
)
_MULTIPLIERS = (
    (re.compile(r"^(a |one )?(million|1,000,000|1000000|1m)\b"), Decimal(1_000_000)),
    (re.compile(r"^(a |one )?(thousand|1,000|1000|1k|k)\b"), Decimal(1000)),
    (re.compile(r"^(a |one )?(hundred|100)\b"), Decimal(100)),
)


@dataclass(frozen=True)
class CostFound:
    """What step 7 found: the cost formula, the median latency and the notes."""

    cost: CostSpec
    median_seconds: float | None
    notes: Notes


@dataclass
class _Rate:
    unit: CostUnit | Literal["compute_second"] | None
    usd: Decimal
    phrase: str


def _rate(segment: str) -> _Rate | None:
    match = _PRICE.search(segment)
    if not match:
        return None
    try:
        amount = Decimal(match.group("num").replace(",", ""))
    except InvalidOperation:
        return None
    phrase = match.group("unit").strip().lower()
    rest = phrase
    for pattern, factor in _MULTIPLIERS:
        found = pattern.match(rest)
        if found:
            amount /= factor
            rest = rest[found.end() :].strip()
            break
    produced = re.search(r"\b(output|generated|video|audio|music|speech|sound|song)\b", rest)
    unit: CostUnit | Literal["compute_second"] | None
    if re.search(r"\bsec(ond)?s?\b", rest):
        unit = "output_second" if produced else "compute_second"
    elif re.search(r"\bmin(ute)?s?\b", rest):
        unit, amount = ("output_second" if produced else "compute_second"), amount / 60
    elif re.search(r"\bchar(acter)?s?\b", rest):
        unit = "input_character"
    elif re.search(r"\btokens?\b", rest):
        unit = "input_token" if "output" not in rest else None
    elif re.search(r"\b(megapixels?|mp)\b", rest):
        unit = None
    elif re.search(r"\boutput\b|\b(images?|pictures?|photos?)\b", rest):
        unit = "output"
    elif re.search(
        r"\b(runs?|predictions?|requests?|generations?|calls?|files?|videos?|songs?|tracks?"
        r"|clips?|audio)\b",
        rest,
    ):
        unit = "run"
    else:
        unit = None
    return _Rate(unit=unit, usd=amount, phrase=phrase)


def _segments(text: str) -> list[tuple[str | None, str]]:
    """Split price text into (label, text) pieces at ``*label*``, ``(label)``, ``k=v:``."""
    pieces: list[tuple[str | None, str]] = []
    label: str | None = None
    position = 0
    for match in _LABEL.finditer(text):
        pieces.append((label, text[position : match.start()]))
        raw = match.group("star") or match.group("paren") or match.group("kv") or ""
        label = re.sub(r"\s+", "", raw.strip().rstrip(":"))
        position = match.end()
    pieces.append((label, text[position:]))
    return [(lab, body.strip(" ;,.")) for lab, body in pieces if body.strip(" ;,.")]


def _rate_field(
    labels: Sequence[str], properties: Mapping[str, Mapping[str, Any]]
) -> tuple[str, list[str]] | None:
    """Which input field the price labels are values of, and the keys to use."""
    pairs = [label.split("=", 1) for label in labels]
    if all(len(p) == 2 for p in pairs) and len({p[0] for p in pairs}) == 1:
        name = pairs[0][0]
        if name in properties:
            return name, [p[1] for p in pairs]
    for name, prop in properties.items():
        enum = prop.get("enum")
        if not isinstance(enum, list):
            continue
        by_text = {str(v).lower(): str(v) for v in enum if v is not None}
        if all(label.lower() in by_text for label in labels):
            return name, [by_text[label.lower()] for label in labels]
    flags = [re.match(r"^(without|with|no)[_ -]?(\w+)$", label.lower()) for label in labels]
    if all(flags):
        nouns = {m.group(2) for m in flags if m}
        if len(nouns) == 1:
            noun = nouns.pop()
            for name, prop in properties.items():
                if prop.get("type") == "boolean" and noun in name.lower():
                    keys = ["true" if m and m.group(1) == "with" else "false" for m in flags]
                    return name, keys
    return None


def _parse_cost(
    text: str | None,
    properties: Mapping[str, Mapping[str, Any]] | None,
    median_seconds: float | None,
) -> tuple[CostSpec, str | None, str | None]:
    """Return the cost, an "inferred" line and a "not inferred" line (either may be None)."""
    properties = properties or {}
    cleaned = re.sub(r"\s+", " ", text or "").strip()
    if not cleaned or not re.search(r"\d", cleaned):
        shown = f"{cleaned!r}" if cleaned else "none"
        return CostSpec(), None, f"cost: no price in the metadata (price text: {shown})"
    rates = [(label, _rate(body)) for label, body in _segments(cleaned)]
    priced = [(label, rate) for label, rate in rates if rate is not None]
    labelled = [(label, rate) for label, rate in priced if label is not None]
    if not priced:
        return CostSpec(text=cleaned), None, f"cost: cannot read the price {cleaned!r}"

    def usable(rate: _Rate) -> tuple[CostUnit | None, Decimal, str | None]:
        if rate.unit == "compute_second":
            if median_seconds is None:
                return None, rate.usd, "priced per second of compute and no median time"
            return (
                "run",
                rate.usd * Decimal(str(median_seconds)),
                (
                    f"priced per second of compute; estimated per run from the median "
                    f"{median_seconds} s"
                ),
            )
        if rate.unit is None:
            return None, rate.usd, f"unknown unit {rate.phrase!r}"
        return rate.unit, rate.usd, None

    if len(labelled) >= 2:
        units = {usable(rate)[0] for _, rate in labelled}
        unit = units.pop() if len(units) == 1 else None
        if unit is None:
            return (
                CostSpec(text=cleaned),
                None,
                (f"cost: the rates in {cleaned!r} have different or unknown units"),
            )
        labels = [str(label) for label, _ in labelled]
        target = _rate_field(labels, properties)
        values = [float(usable(rate)[1]) for _, rate in labelled]
        if target is None:
            highest = max(values)
            return (
                CostSpec(text=cleaned, basis="published", per=unit, usd=highest),
                f"cost: up to ${highest:g} per {unit}",
                f"cost: labels {', '.join(labels)} match no input field; the highest rate is used",
            )
        name, keys = target
        table = dict(zip(keys, values, strict=True))
        shown = ", ".join(f"{k}: ${v:g}" for k, v in table.items())
        return (
            CostSpec(
                text=cleaned, basis="published", per=unit, by=CostRateBy(field=name, usd=table)
            ),
            f"cost: per {unit}, by {name} ({shown})",
            None,
        )
    _, rate = priced[0]
    unit, usd, problem = usable(rate)
    if unit is None:
        return CostSpec(text=cleaned), None, f"cost: {problem} in {cleaned!r}"
    line = f"cost: ${float(usd):g} per {unit}"
    return (
        CostSpec(text=cleaned, basis="published", per=unit, usd=float(usd)),
        line,
        (f"cost: {problem}" if problem else None),
    )


def parse_cost(
    text: str | None,
    properties: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    median_seconds: float | None = None,
) -> CostSpec:
    """Turn a provider's price text into a cost formula.

    Args:
        text: The price text, e.g. ``"$0.10 per thousand input characters"`` or
            ``"*480p*: 0.018 per second of video *720p*: 0.036 per second of video"``.
        properties: The model's (normalised) input fields; labelled rates are matched to
            the field whose enum holds the labels (or a boolean field for
            ``with_X``/``without_X`` labels) to build a rate table.
        median_seconds: Used to estimate a per-run price from a per-second compute price.

    Returns:
        The :class:`CostSpec`; ``usd`` and ``by`` are None when no price can be read.
    """
    return _parse_cost(text, properties, median_seconds)[0]


def upper_bound_cost(
    seconds: float,
    *,
    why: str = "no published price",
    timed: str = "the example prediction's",
) -> CostSpec:
    """An upper bound of a price billed by compute time whose hardware is unknown.

    Args:
        seconds: The expected seconds of one run (an example prediction's ``predict_time``,
            else the published median time).
        why: Why there is no better price, for the cost text.
        timed: Whose seconds they are, for the cost text.

    Returns:
        A ``upper_bound`` :class:`CostSpec` whose text shows the bound (``<= $0.0390 per
        run``) and how it was found.
    """
    dearest = most_expensive()
    bound = seconds * dearest.usd_per_second
    return CostSpec(
        text=(
            f"<= ${bound:.4f} per run (upper bound: {why}; {timed} "
            f"{seconds:g} s of compute at the most expensive public hardware, "
            f"{dearest.title} at ${dearest.usd_per_second:g}/s, {SOURCE})"
        ),
        basis="upper_bound",
        seconds=seconds,
    )


def hardware_cost(hardware: Hardware, seconds: float, *, named: str) -> CostSpec:
    """A price billed by compute time on known hardware: its price per second times the
    expected seconds (the declaration's median time)."""
    return CostSpec(
        text=(
            f"${hardware.usd_per_second * seconds:.4f} per run (hardware-seconds: {named} at "
            f"${hardware.usd_per_second:g}/s, {SOURCE}, x the expected {seconds:g} s)"
        ),
        basis="hardware",
        hardware=hardware.sku,
    )


def _time_priced(meta: Metadata, notes: Notes, why: str) -> CostSpec | None:
    """A hardware-seconds price, else an upper bound, from what the metadata says."""
    if meta.hardware is not None:
        found = find_hardware(meta.hardware)
        if found is None:
            notes.not_inferred.append(
                f"cost: hardware {meta.hardware!r} is not in the hardware price table "
                "(producers/replicate/hardware.py)"
            )
        elif meta.median_seconds is None:
            notes.not_inferred.append(
                f"cost: runs on {found.sku}, but no latency to multiply its price by"
            )
        else:
            notes.inferred.append(
                f"cost: hardware-seconds, {found.sku} at ${found.usd_per_second:g}/s x "
                f"{meta.median_seconds:g} s"
            )
            return hardware_cost(found, meta.median_seconds, named=meta.hardware)
    if meta.example_seconds is not None:
        seconds, timed = meta.example_seconds, "the example prediction's"
    elif meta.median_seconds is not None:
        seconds, timed = meta.median_seconds, "the published median"
    else:
        return None
    bound = seconds * most_expensive().usd_per_second
    notes.inferred.append(
        f"cost: upper bound <= ${bound:.4f} per run ({timed} {seconds:g} s at the most "
        "expensive public hardware; the model's hardware is unknown)"
    )
    return upper_bound_cost(seconds, why=why, timed=timed)


def infer_cost(meta: Metadata, schema: Schema) -> CostFound:
    """The price and the median latency, with their notes: the published price when the
    metadata's price text can be read; else hardware-seconds when it names hardware in the
    price table; else an upper bound from the example prediction's ``predict_time``; else
    the cost is unknown, and a note says so (a budget run refuses such a model's jobs)."""
    notes = Notes()
    cost, cost_line, cost_problem = _parse_cost(
        meta.cost_text, schema.properties, meta.median_seconds
    )
    if cost_line:
        notes.inferred.append(cost_line)
    if cost_problem:
        notes.not_inferred.append(cost_problem)
    if not cost.known:
        shown = cost.text
        why = "no published price" if not shown else f"the price text {shown!r} cannot be read"
        priced = _time_priced(meta, notes, why)
        if priced is not None:
            cost = priced
        else:
            cost = CostSpec(
                text=f"unknown: {why}, no hardware and no prediction time in the metadata"
            )
            notes.not_inferred.append(
                "cost: UNKNOWN: no published price, no known hardware, no prediction "
                "time; a run with a budget refuses this model's jobs unless "
                "unpriced jobs are allowed (--allow-unpriced); add a 'cost' to the declaration"
            )
    if meta.median_seconds is not None:
        if meta.median_from_example:
            notes.inferred.append(
                f"median_seconds: {meta.median_seconds} (predict_time of the example prediction)"
            )
            notes.unconfirmed.append(
                "median_seconds: the predict_time of one example prediction, not a median"
            )
        else:
            notes.inferred.append(f"median_seconds: {meta.median_seconds}")
    else:
        notes.not_inferred.append("median_seconds: no latency in the metadata")
    return CostFound(cost, meta.median_seconds, notes)
