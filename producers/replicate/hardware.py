"""Replicate's public hardware prices, per second of a prediction's compute time.

A public model that is not an official model (no per-output price) is billed by the time its
prediction runs (``metrics.predict_time``) times the price of the hardware it runs on. The
table below is Replicate's pricing page (https://replicate.com/pricing, "Hardware", and the
same table at https://replicate.com/docs/billing), read 2026-12-03 from the stored copy of that
page; third-party transcriptions dated 2026-10-07 give the same figures. Edit this table (one
place) when Replicate's prices change: every hardware-priced declaration and every upper bound
follows it.

Names are Replicate's hardware SKUs (``gpu-l40s``, as its API and deployments spell them);
:func:`hardware_price` also accepts the forms people and metadata write them in
(``nvidia-l40s``, ``Nvidia L40S GPU``, ``l40s``, ``2x Nvidia A100 (80GB) GPU``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Where the prices come from and when they were read (shown in messages and cost texts).
SOURCE = "https://replicate.com/pricing, read 2026-12-03"


@dataclass(frozen=True)
class Hardware:
    """One kind of hardware a prediction can run on and its price per second."""

    sku: str
    title: str
    usd_per_second: float


HARDWARE: dict[str, Hardware] = {
    hw.sku: hw
    for hw in (
        Hardware("cpu", "CPU", 0.000100),
        Hardware("gpu-t4", "Nvidia T4 GPU", 0.000225),
        Hardware("gpu-a40-small", "Nvidia A40 GPU", 0.000575),
        Hardware("gpu-a40-large", "Nvidia A40 (Large) GPU", 0.000725),
        Hardware("gpu-a40-large-2x", "2x Nvidia A40 (Large) GPU", 0.001450),
        Hardware("gpu-a40-large-4x", "4x Nvidia A40 (Large) GPU", 0.002900),
        Hardware("gpu-a40-large-8x", "8x Nvidia A40 (Large) GPU", 0.005800),
        Hardware("gpu-l40s", "Nvidia L40S GPU", 0.000975),
        Hardware("gpu-2x-l40s", "2x Nvidia L40S GPU", 0.001950),
        Hardware("gpu-4x-l40s", "4x Nvidia L40S GPU", 0.003900),
        Hardware("gpu-8x-l40s", "8x Nvidia L40S GPU", 0.007800),
        Hardware("gpu-a100-large", "Nvidia A100 (80GB) GPU", 0.001400),
        Hardware("gpu-a100-large-2x", "2x Nvidia A100 (80GB) GPU", 0.002800),
        Hardware("gpu-a100-large-4x", "4x Nvidia A100 (80GB) GPU", 0.005600),
        Hardware("gpu-a100-large-8x", "8x Nvidia A100 (80GB) GPU", 0.011200),
        Hardware("gpu-h100", "Nvidia H100 GPU", 0.001525),
        Hardware("gpu-h100-2x", "2x Nvidia H100 GPU", 0.003050),
        Hardware("gpu-h100-4x", "4x Nvidia H100 GPU", 0.006100),
        Hardware("gpu-h100-8x", "8x Nvidia H100 GPU", 0.012200),
    )
}


def _words(name: str) -> str:
    """A hardware name reduced to its distinguishing words: ``"2x Nvidia A100 (80GB) GPU"``
    and ``gpu-a100-large-2x`` both become ``a100 2x``."""
    text = name.lower()
    text = re.sub(r"\((80gb|large)\)", " large ", text)
    tokens = re.findall(r"[a-z0-9]+", text)
    count = "1x"
    kept: list[str] = []
    for token in tokens:
        if re.fullmatch(r"\d+x", token):
            count = token
        elif token in ("gpu", "nvidia", "80gb"):
            continue
        else:
            kept.append(token)
    chip = [t for t in kept if t != "large"]
    size = "large" if "large" in kept else ""
    if chip == ["a100"]:
        size = "large"  # Replicate's public A100 is the 80 GB one
    return " ".join([*chip, size, count]).replace("  ", " ").strip()


_BY_WORDS: dict[str, Hardware] = {_words(hw.sku): hw for hw in HARDWARE.values()}
for _hw in HARDWARE.values():
    _BY_WORDS.setdefault(_words(_hw.title), _hw)


def find_hardware(name: str) -> Hardware | None:
    """The hardware ``name`` stands for (a SKU, a title or a name such as ``nvidia-l40s``),
    or None if it is not in the table."""
    if name in HARDWARE:
        return HARDWARE[name]
    return _BY_WORDS.get(_words(name))


def hardware_price(name: str) -> float | None:
    """US dollars per second on the hardware ``name``, or None if it is not in the table."""
    found = find_hardware(name)
    return None if found is None else found.usd_per_second


def most_expensive() -> Hardware:
    """The dearest public hardware: what an upper bound of an unknown hardware assumes."""
    return max(HARDWARE.values(), key=lambda hw: hw.usd_per_second)


def known_names() -> list[str]:
    """Every SKU in the table, for messages."""
    return sorted(HARDWARE)
