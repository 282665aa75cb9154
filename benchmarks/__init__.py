"""Benchmarks of the Producer SDK (not part of the test suite; run them with ``make bench``).

* :mod:`benchmarks.sdk_overhead`: per-job time of the SDK's live path against bare httpx
  making the same HTTP calls on the local fake servers;
* :mod:`benchmarks.download_memory`: peak memory while a 512 MiB output is downloaded to a
  :class:`~producers.storage.local.LocalStore` through the SDK;
* :mod:`benchmarks.summary`: the short table ``make bench`` ends with.

Every figure is a ratio against a baseline measured in the same run, never an absolute
pass/fail threshold. See ``benchmarks/README.md``.
"""
