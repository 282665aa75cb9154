"""Where a benchmark's time goes: cProfile statistics condensed per job.

:func:`hotspots` books every function's self time to a package (``httpx``, ``openai``,
``producers/sdk``...) or, for C built-ins, to a kind of work (I/O wait, fsync, loading CA
certificates, TLS handshakes...), and walks up the heaviest callers of each hot function to
the nearest ``producers/`` frame, so a hotspot in a library is named by the repository
line that reaches it. :func:`print_hotspots` prints that next to a baseline's profile.
"""

from __future__ import annotations

import cProfile
import os
import pstats
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmarks._support import REPO_ROOT, format_table

__all__ = ["hotspots", "print_hotspots"]

_Key = tuple[str, int, str]


def _short(key: _Key) -> str:
    """``file:line function`` with the repository or site-packages prefix cut."""
    filename, line, name = key
    if filename == "~":
        return name
    path = filename
    if "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    elif path.startswith(str(REPO_ROOT) + os.sep):
        path = os.path.relpath(path, REPO_ROOT)
    elif "/lib/python" in path:
        path = "stdlib/" + path.split("/lib/python", 1)[1].split("/", 1)[1]
    return f"{path}:{line} {name}"


def _is_repo(key: _Key) -> bool:
    filename = key[0]
    producers = str(REPO_ROOT / "producers") + os.sep
    return filename.startswith(producers) and os.sep + "testing" + os.sep not in filename


def _repo_frame(raw: Mapping[_Key, Any], key: _Key) -> _Key | None:
    """The nearest ``producers/`` frame up the heaviest caller chain of ``key``."""
    seen: set[_Key] = set()
    current: _Key | None = key
    while current is not None and current not in seen:
        if _is_repo(current):
            return current
        seen.add(current)
        callers: Mapping[_Key, Any] = raw[current][4] if current in raw else {}
        current = max(callers, key=lambda k: callers[k][3]) if callers else None
    return None


_BUILTIN_GROUPS = (
    (("select.epoll", "select.select", "select.poll"), "I/O wait (epoll)"),
    (("load_verify_locations", "set_default_verify_paths"), "TLS: loading CA certificates"),
    (("do_handshake",), "TLS: handshakes"),
    (("posix.fsync",), "fsync"),
    (("_socket.socket", "_ssl._SSLSocket", "_ssl.MemoryBIO"), "socket and TLS I/O"),
    (("posix.", "io.open", "_io."), "file I/O"),
)


def _package(raw: Mapping[_Key, Any], key: _Key) -> str:
    """The group a function's self time is booked to.

    Python functions: their top-level package (``httpx``, ``openai``, ``producers/sdk``,
    ``stdlib asyncio``, ``benchmarks`` for the bare side's store...). Built-ins (C
    functions): a kind of work (I/O wait, fsync, socket and TLS I/O, file I/O, loading CA
    certificates), else the package of their heaviest caller.
    """
    seen: set[_Key] = set()
    current = key
    while current[0] == "~" and current not in seen:
        for needles, group in _BUILTIN_GROUPS:
            if any(needle in current[2] for needle in needles):
                return group
        seen.add(current)
        callers: Mapping[_Key, Any] = raw[current][4] if current in raw else {}
        if not callers:
            return "built-ins"
        current = max(callers, key=lambda k: callers[k][3])
    filename = current[0]
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if filename.startswith(str(REPO_ROOT) + os.sep):
        parts = Path(os.path.relpath(filename, REPO_ROOT)).parts
        return parts[0] if parts[0] != "producers" or len(parts) < 3 else "/".join(parts[:2])
    if filename.startswith("<frozen"):
        return "stdlib importlib"
    if "/lib/python" in filename:
        module = filename.split("/lib/python", 1)[1].split("/")[1]
        return "stdlib " + module.removesuffix(".py")
    return "other"


def hotspots(profile: cProfile.Profile, jobs: int, limit: int = 12) -> dict[str, Any]:
    """Where the time goes, in ms per job.

    Returns:
        ``total_ms_per_job``; ``by_package`` (self time per package, see
        :func:`_package`); ``self`` (the functions with the most self time, each with the
        ``producers/`` frame reached through its heaviest callers); ``self_by_repo_frame``
        (self time summed by that frame); ``repo`` (the ``producers/`` functions with the
        most cumulative time).
    """
    stats = pstats.Stats(profile)
    raw: Mapping[_Key, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in raw.values())
    packages: Counter[str] = Counter()
    frames: Counter[_Key] = Counter()
    for key, entry in raw.items():
        packages[_package(raw, key)] += entry[2]
        frame = _repo_frame(raw, key)
        if frame is not None:
            frames[frame] += entry[2]
    by_self = sorted(raw.items(), key=lambda item: item[1][2], reverse=True)[:limit]
    repo = sorted(
        ((k, e) for k, e in raw.items() if _is_repo(k)), key=lambda item: item[1][3], reverse=True
    )[:limit]
    return {
        "total_ms_per_job": total * 1000 / jobs,
        "by_package": {name: seconds * 1000 / jobs for name, seconds in packages.most_common()},
        "self": [
            {
                "function": _short(key),
                "self_ms_per_job": entry[2] * 1000 / jobs,
                "calls_per_job": entry[1] / jobs,
                "reached_from": _short(frame) if (frame := _repo_frame(raw, key)) else None,
            }
            for key, entry in by_self
        ],
        "self_by_repo_frame": [
            {"frame": _short(key), "self_ms_per_job": seconds * 1000 / jobs}
            for key, seconds in frames.most_common(limit)
        ],
        "repo": [
            {
                "function": _short(key),
                "cumulative_ms_per_job": entry[3] * 1000 / jobs,
                "calls_per_job": entry[1] / jobs,
            }
            for key, entry in repo
        ],
    }


def print_hotspots(label: str, found: Mapping[str, Any], baseline: Mapping[str, Any]) -> None:
    """Print what :func:`hotspots` found for an SDK variant, next to the bare baseline's."""
    print(
        f"\n  Profile of {label} (cProfile): {found['total_ms_per_job']:.1f} ms/job profiled, "
        f"bare httpx {baseline['total_ms_per_job']:.1f}"
    )
    names = set(found["by_package"]) | set(baseline["by_package"])
    diffs = sorted(
        names,
        key=lambda n: found["by_package"].get(n, 0.0) - baseline["by_package"].get(n, 0.0),
        reverse=True,
    )
    rows = []
    for name in diffs[:12]:
        sdk_ms = found["by_package"].get(name, 0.0)
        bare_ms = baseline["by_package"].get(name, 0.0)
        rows.append([name, f"{sdk_ms:.2f}", f"{bare_ms:.2f}", f"{sdk_ms - bare_ms:+.2f}"])
    print("  self time by package, ms/job (largest SDK excess first):")
    print(_indent(format_table(["package", "SDK", "bare", "SDK - bare"], rows), 4))
    print("  functions with the most self time (SDK), with the producers/ function above them:")
    rows = [
        [
            row["function"],
            f"{row['self_ms_per_job']:.2f}",
            f"{row['calls_per_job']:.1f}",
            row["reached_from"] or "-",
        ]
        for row in found["self"]
    ]
    print(_indent(format_table(["function", "ms/job", "calls/job", "reached from"], rows), 4))
    print("  self time summed by the producers/ function it is reached from:")
    rows = [[r["frame"], f"{r['self_ms_per_job']:.2f}"] for r in found["self_by_repo_frame"]]
    print(_indent(format_table(["producers/ function", "ms/job"], rows), 4))
    print(
        "  producers/ functions by cumulative time (a coroutine counts each resumption as a "
        "call, and not the work of tasks it starts):"
    )
    rows = [
        [r["function"], f"{r['cumulative_ms_per_job']:.2f}", f"{r['calls_per_job']:.1f}"]
        for r in found["repo"]
    ]
    print(_indent(format_table(["function", "ms/job", "calls/job"], rows), 4))


def _indent(text: str, spaces: int) -> str:
    return "\n".join(" " * spaces + line for line in text.splitlines())
