"""Publish destinations: files at chosen names in a directory or under an S3 prefix.

The artefact store keeps blobs by checksum; a destination holds what people open (a
published movie's ``movie.mp4``, ``script.md``...). Every write is atomic: a reader sees the
old object or the new one, never part of one. A local file is written to a hidden temp file
in its own directory, flushed to disk and moved over its name with :func:`os.replace`; an S3
object is spooled to a local file and sent as one ``PutObject``, or as a multipart upload,
which S3 makes visible only when it completes.

Relative paths are ``/``-separated names of ``[A-Za-z0-9._~-]``, never ``.`` or ``..`` and
never starting with ``.`` (the temp files' own names start with one), so nothing written
lands outside the destination's root. (``~`` is allowed for the folder names
:func:`producers.pipeline.publish.safe_segment` makes from untrusted values.)
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import hashlib
import os
import re
import tempfile
import threading
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from producers.sdk.errors import ConfigurationError
from producers.storage.local import fsync_dir

if TYPE_CHECKING:
    from boto3.s3.transfer import TransferConfig
    from mypy_boto3_s3 import S3Client

__all__ = [
    "Destination",
    "LocalDestination",
    "PublishedFile",
    "S3Destination",
    "check_relpath",
    "open_destination",
]

_NAME_RE = re.compile(r"[A-Za-z0-9._~-]+")
_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
_ALLOWED_FORMS = (
    "a directory path (e.g. ./movies/run-1), a file:// URI, or an S3 URI s3://bucket[/prefix]"
)


class PublishedFile(BaseModel):
    """One file a destination holds now."""

    model_config = ConfigDict(frozen=True)

    #: Its path below the destination's root (``images/01-image.png``).
    relpath: str
    #: Where it is: an absolute path, or an ``s3://bucket/key`` URI.
    location: str
    sha256: str
    size: int


def check_relpath(relpath: str) -> str:
    """Refuse a relative path that could leave the root or clash with a temp file.

    Returns:
        ``relpath``, unchanged.

    Raises:
        ValueError: A segment is empty, ``.``, ``..``, starts with ``.`` or has characters
            other than ``[A-Za-z0-9._~-]``.
    """
    parts = relpath.split("/") if isinstance(relpath, str) else [""]
    if not all(_NAME_RE.fullmatch(part) and not part.startswith(".") for part in parts):
        raise ValueError(
            f"invalid published path {relpath!r}: '/'-separated names of letters, digits, "
            "'.', '_', '~' and '-', none empty or starting with '.'"
        )
    return relpath


class Destination(abc.ABC):
    """Where a run's human layout is published: named files, each written atomically."""

    #: The root, as shown to people: an absolute directory path or ``s3://bucket/prefix``.
    root: str

    @abc.abstractmethod
    def location(self, relpath: str) -> str:
        """Where ``relpath`` is (or would be): an absolute path or an ``s3://`` URI.

        Raises:
            ValueError: ``relpath`` is invalid (see :func:`check_relpath`).
        """

    @abc.abstractmethod
    async def put_stream(
        self, relpath: str, chunks: AsyncIterable[bytes], *, mime_type: str
    ) -> PublishedFile:
        """Write ``chunks`` at ``relpath``, replacing what was there, atomically.

        If ``chunks`` raises, the exception propagates and the previous object (or none)
        stays visible.

        Raises:
            ValueError: ``relpath`` is invalid (see :func:`check_relpath`).
        """

    async def put_bytes(self, relpath: str, data: bytes, *, mime_type: str) -> PublishedFile:
        """Write ``data`` at ``relpath`` (see :meth:`put_stream`)."""

        async def one() -> AsyncIterator[bytes]:
            yield data

        return await self.put_stream(relpath, one(), mime_type=mime_type)

    @abc.abstractmethod
    async def read_bytes(self, relpath: str) -> bytes | None:
        """The bytes at ``relpath``, or None if nothing is there."""

    @abc.abstractmethod
    async def delete(self, relpath: str) -> None:
        """Remove the object at ``relpath`` (nothing happens if there is none).

        Raises:
            ValueError: ``relpath`` is invalid (see :func:`check_relpath`).
        """


class LocalDestination(Destination):
    """A directory; each file is written beside its name, flushed, then renamed over it.

    A write that fails (or a process that dies) leaves at most a hidden
    ``.<name>.<random>.part`` file, never a partial file at the name itself.

    Args:
        root: The directory; created (with its parents) on the first write.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.path = Path(root).expanduser().resolve()
        self.root = str(self.path)

    def __repr__(self) -> str:
        return f"LocalDestination({self.root!r})"

    def location(self, relpath: str) -> str:
        """The absolute path of ``relpath`` (see :meth:`Destination.location`)."""
        return str(self.path.joinpath(*check_relpath(relpath).split("/")))

    async def put_stream(
        self, relpath: str, chunks: AsyncIterable[bytes], *, mime_type: str
    ) -> PublishedFile:
        """Write the file via a temp file in its directory, fsync and :func:`os.replace`
        (see :meth:`Destination.put_stream`; ``mime_type`` is not kept on disk)."""
        final = Path(self.location(relpath))
        final.parent.mkdir(parents=True, exist_ok=True)
        temp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.part")
        hasher = hashlib.sha256()
        size = 0
        try:
            with temp.open("xb") as handle:
                async for chunk in chunks:
                    if chunk:
                        handle.write(chunk)
                        hasher.update(chunk)
                        size += len(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, final)
        finally:
            temp.unlink(missing_ok=True)
        fsync_dir(final.parent)
        return PublishedFile(
            relpath=relpath, location=str(final), sha256=hasher.hexdigest(), size=size
        )

    async def read_bytes(self, relpath: str) -> bytes | None:
        """The file's bytes, or None if there is no such file."""
        path = Path(self.location(relpath))

        def read() -> bytes | None:
            try:
                return path.read_bytes()
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                return None

        return await asyncio.to_thread(read)

    async def delete(self, relpath: str) -> None:
        """Remove the file (see :meth:`Destination.delete`); its empty folders stay."""
        path = Path(self.location(relpath))
        await asyncio.to_thread(path.unlink, missing_ok=True)


class S3Destination(Destination):
    """An ``s3://bucket/prefix``; each object is spooled locally, then sent in one upload.

    boto3's managed upload sends a large file as a multipart upload, which S3 makes visible
    only once it completes (and which boto3 aborts on failure); a small one is one
    ``PutObject``. An object whose ``sha256`` metadata and size already match is not sent
    again. Objects carry their MIME type as ``ContentType``.

    Args:
        bucket: The bucket name.
        prefix: A key prefix; leading and trailing slashes are ignored.
        client: A boto3 S3 client; by default ``boto3.client("s3")`` on first use (the
            standard AWS configuration: environment, profiles, ``AWS_ENDPOINT_URL``).
        transfer_config: A boto3 ``TransferConfig`` (multipart threshold, chunk size).
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client: Any | None = None,
        transfer_config: TransferConfig | None = None,
    ) -> None:
        if not bucket or "/" in bucket:
            raise ValueError(f"invalid bucket name {bucket!r}")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        if self.prefix:
            check_relpath(self.prefix)
        self.root = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self._client: S3Client | None = client
        self._client_lock = threading.Lock()
        self._transfer_config = transfer_config

    def __repr__(self) -> str:
        return f"S3Destination({self.root!r})"

    @property
    def client(self) -> S3Client:
        """The boto3 S3 client, created with the default AWS configuration if not given."""
        with self._client_lock:
            if self._client is None:
                import boto3  # imported lazily: it is slow to import

                self._client = boto3.client("s3")
            return self._client

    def key(self, relpath: str) -> str:
        """The object key of ``relpath``."""
        check_relpath(relpath)
        return f"{self.prefix}/{relpath}" if self.prefix else relpath

    def location(self, relpath: str) -> str:
        """The ``s3://bucket/key`` URI of ``relpath``."""
        return f"s3://{self.bucket}/{self.key(relpath)}"

    async def put_stream(
        self, relpath: str, chunks: AsyncIterable[bytes], *, mime_type: str
    ) -> PublishedFile:
        """Spool ``chunks`` to a temp file while hashing them, then upload it whole
        (see :meth:`Destination.put_stream`). The spool file is always deleted."""
        key = self.key(relpath)
        fd, spool = tempfile.mkstemp(prefix="tutopanda-publish-", suffix=".part")
        hasher = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as handle:
                async for chunk in chunks:
                    if chunk:
                        handle.write(chunk)
                        hasher.update(chunk)
                        size += len(chunk)
            sha = hasher.hexdigest()
            await asyncio.to_thread(self._upload, spool, key, sha=sha, size=size, mime=mime_type)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(spool)
        return PublishedFile(
            relpath=relpath, location=self.location(relpath), sha256=sha, size=size
        )

    def _upload(self, spool: str, key: str, *, sha: str, size: int, mime: str) -> None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code", "")) not in _NOT_FOUND_CODES:
                raise
        else:
            same = head.get("Metadata", {}).get("sha256") == sha
            if same and head.get("ContentLength") == size and head.get("ContentType") == mime:
                return
        self.client.upload_file(
            spool,
            self.bucket,
            key,
            ExtraArgs={"ContentType": mime, "Metadata": {"sha256": sha}},
            Config=self._transfer_config,
        )

    async def read_bytes(self, relpath: str) -> bytes | None:
        """The object's bytes, or None if there is no such object."""
        key = self.key(relpath)

        def read() -> bytes | None:
            try:
                body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            except ClientError as error:
                if str(error.response.get("Error", {}).get("Code", "")) in _NOT_FOUND_CODES:
                    return None
                raise
            try:
                return body.read()
            finally:
                body.close()

        return await asyncio.to_thread(read)

    async def delete(self, relpath: str) -> None:
        """Remove the object (see :meth:`Destination.delete`)."""
        key = self.key(relpath)
        await asyncio.to_thread(lambda: self.client.delete_object(Bucket=self.bucket, Key=key))


def open_destination(uri_or_path: str, *, s3_client: Any | None = None) -> Destination:
    """The destination a path or URI names.

    Args:
        uri_or_path: A directory path, a ``file:///abs/dir`` URI, or ``s3://bucket[/prefix]``.
        s3_client: The boto3 client of an S3 destination (default: the standard AWS
            configuration).

    Raises:
        ConfigurationError: The value is empty or not one of those forms.
    """
    value = uri_or_path.strip() if isinstance(uri_or_path, str) else ""
    if not value:
        raise ConfigurationError(f"empty publish location; use {_ALLOWED_FORMS}")
    if "://" not in value:
        return LocalDestination(value)
    parts = urlsplit(value)
    scheme = parts.scheme.lower()
    try:
        if scheme == "s3" and parts.netloc and not parts.query and not parts.fragment:
            return S3Destination(parts.netloc, parts.path, client=s3_client)
        if (
            scheme == "file"
            and parts.netloc in {"", "localhost"}
            and parts.path.startswith("/")
            and not parts.query
            and not parts.fragment
        ):
            return LocalDestination(url2pathname(parts.path))
    except ValueError as error:
        raise ConfigurationError(
            f"unsupported publish location {value!r}: {error}; use {_ALLOWED_FORMS}"
        ) from None
    raise ConfigurationError(f"unsupported publish location {value!r}; use {_ALLOWED_FORMS}")
