"""Artefact stores: a local directory, an S3 bucket, or memory (for tests)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from producers.sdk.errors import ConfigurationError
from producers.storage.base import CHUNK_SIZE, ArtefactStore, BlobIntegrityError, StoredBlob
from producers.storage.local import LocalStore
from producers.storage.memory import MemoryStore
from producers.storage.s3 import S3Store

__all__ = [
    "CHUNK_SIZE",
    "DEFAULT_STORE_DIR",
    "STORE_ENV_VAR",
    "ArtefactStore",
    "BlobIntegrityError",
    "LocalStore",
    "MemoryStore",
    "S3Store",
    "StoredBlob",
    "open_store",
]

#: The environment variable naming the store when :func:`open_store` is given nothing.
STORE_ENV_VAR = "TUTOPANDA_STORE"
#: The store used when neither an argument nor ``TUTOPANDA_STORE`` names one.
DEFAULT_STORE_DIR = "tutopanda-store"

_ALLOWED_FORMS = (
    "a directory path (e.g. ./tutopanda-store), a file:// URI (e.g. file:///srv/tutopanda), "
    "or an S3 URI s3://bucket[/prefix]"
)


def open_store(uri_or_path: str | None = None) -> ArtefactStore:
    """Open the artefact store a URI or path names.

    Args:
        uri_or_path: ``s3://bucket[/prefix]`` for an :class:`S3Store` (using the default
            AWS configuration), ``file:///abs/dir`` or a plain path for a
            :class:`LocalStore` (the directory is created if missing). If None,
            ``$TUTOPANDA_STORE`` is used when set, else ``./tutopanda-store`` in the
            working directory.

    Returns:
        The store.

    Raises:
        ConfigurationError: The value is not one of the allowed forms (another scheme,
            an S3 URI without a bucket, a ``file://`` URI with a host).
    """
    if uri_or_path is None:
        uri_or_path = os.environ.get(STORE_ENV_VAR) or DEFAULT_STORE_DIR
        source = f" (from ${STORE_ENV_VAR})" if os.environ.get(STORE_ENV_VAR) else ""
    else:
        source = ""
    value = uri_or_path.strip()
    if not value:
        raise ConfigurationError(f"empty artefact store location{source}; use {_ALLOWED_FORMS}")
    if "://" not in value:
        return LocalStore(Path(value).expanduser())

    parts = urlsplit(value)
    scheme = parts.scheme.lower()
    if scheme == "s3" and parts.netloc and not parts.query and not parts.fragment:
        try:
            return S3Store(parts.netloc, parts.path)
        except ValueError as error:
            raise ConfigurationError(
                f"unsupported artefact store location {value!r}{source}: {error}; "
                f"use {_ALLOWED_FORMS}"
            ) from None
    if (
        scheme == "file"
        and parts.netloc in {"", "localhost"}
        and parts.path.startswith("/")
        and not parts.query
        and not parts.fragment
    ):
        return LocalStore(url2pathname(parts.path))
    raise ConfigurationError(
        f"unsupported artefact store location {value!r}{source}; use {_ALLOWED_FORMS}"
    )
