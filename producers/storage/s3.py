"""An artefact store in an S3 bucket (or any S3-compatible service), over boto3."""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
import threading
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from botocore.exceptions import ClientError

from producers.storage.base import (
    CHUNK_SIZE,
    ArtefactStore,
    BlobIntegrityError,
    StoredBlob,
    check_byte_range,
)
from producers.storage.layout import (
    DEFAULT_MIME_TYPE,
    blob_relpath,
    decode_json,
    has_bad_segments,
    manifest_run_id,
    relpath_of_uri,
    sha256_of_blob_relpath,
    spool_verified,
)

if TYPE_CHECKING:
    from boto3.s3.transfer import TransferConfig
    from botocore.response import StreamingBody
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import HeadObjectOutputTypeDef

__all__ = ["S3Store"]

_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


def _is_not_found(error: ClientError) -> bool:
    return str(error.response.get("Error", {}).get("Code", "")) in _NOT_FOUND_CODES


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tutopanda" / "s3"


class S3Store(ArtefactStore):
    """An artefact store under ``s3://bucket/prefix``.

    The layout is the local store's (``blobs/sha256/<aa>/<sha256>``, ``records/...``,
    ``runs/<run_id>/manifest.json``) under ``prefix``. A blob is spooled to a local temp
    file while it is hashed, verified, and only then uploaded with boto3's managed
    transfer (multipart for large files), so the object appears at its final key only
    once complete. Blobs carry their MIME type as ``ContentType`` and their checksum as
    ``x-amz-meta-sha256``. Blocking boto3 calls run in :func:`asyncio.to_thread`.

    Args:
        bucket: The bucket name.
        prefix: A key prefix (``"team/a"``); leading and trailing slashes are ignored.
        client: A boto3 S3 client; by default ``boto3.client("s3")`` is created on first
            use, so the standard AWS configuration applies (environment variables,
            profiles, ``AWS_ENDPOINT_URL``).
        cache_dir: Where downloads for :meth:`local_path` (under ``blobs/``) and upload
            spool files (under ``spool/``) go. By default downloads go to
            ``$XDG_CACHE_HOME/tutopanda/s3`` (``~/.cache/tutopanda/s3``) and spool files to
            the system temp directory.
        transfer_config: A boto3 ``TransferConfig`` for uploads and downloads (multipart
            threshold, chunk size, concurrency); boto3's defaults if None.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client: Any | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        transfer_config: TransferConfig | None = None,
    ) -> None:
        if not bucket or "/" in bucket:
            raise ValueError(f"invalid S3 bucket name {bucket!r}")
        prefix = prefix.strip("/")
        if prefix and has_bad_segments(prefix):
            raise ValueError(f"invalid S3 prefix {prefix!r}: empty, '.' or '..' segments")
        self.bucket = bucket
        self.prefix = prefix
        self.root_uri = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        self._client: S3Client | None = client
        self._client_lock = threading.Lock()
        self._cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._transfer_config = transfer_config

    def __repr__(self) -> str:
        return f"S3Store({self.root_uri!r})"

    @property
    def client(self) -> S3Client:
        """The boto3 S3 client, created with the default AWS configuration if not given."""
        with self._client_lock:
            if self._client is None:
                import boto3  # imported lazily: it is slow to import and not always needed

                self._client = boto3.client("s3")
            return self._client

    # -- blobs -------------------------------------------------------------------------

    async def put_stream(
        self,
        chunks: AsyncIterable[bytes],
        *,
        mime_type: str,
        expected_size: int | None = None,
        expected_sha256: str | None = None,
    ) -> StoredBlob:
        """Spool ``chunks`` to a local temp file, verify them, then upload the blob.

        The upload is skipped when an object already has the blob's key (content
        addressing). The spool file is deleted in all cases.

        Returns:
            Where the blob is and what it is. When identical content was already stored,
            the existing object is reused and its ``ContentType`` is returned.

        Raises:
            BlobIntegrityError: The size or checksum differs from what was expected.
        """
        spool_path, handle = self._new_spool()
        try:
            with handle:
                sha, size = await spool_verified(
                    chunks, handle, expected_size=expected_size, expected_sha256=expected_sha256
                )
            return await asyncio.to_thread(
                self._publish_blob, spool_path, sha=sha, size=size, mime_type=mime_type
            )
        finally:
            spool_path.unlink(missing_ok=True)

    def _publish_blob(self, spool_path: Path, *, sha: str, size: int, mime_type: str) -> StoredBlob:
        key = self._key(blob_relpath(sha))
        uri = self._uri(key)
        head = self._head(key)
        if head is not None and head.get("ContentLength") == size:
            existing_mime = head.get("ContentType") or mime_type
            return StoredBlob(uri=uri, sha256=sha, size=size, mime_type=existing_mime)
        self.client.upload_file(
            str(spool_path),
            self.bucket,
            key,
            ExtraArgs={"ContentType": mime_type, "Metadata": {"sha256": sha}},
            Config=self._transfer_config,
        )
        return StoredBlob(uri=uri, sha256=sha, size=size, mime_type=mime_type)

    async def open(self, uri: str) -> AsyncIterator[bytes]:
        """Stream a stored object's bytes in chunks of at most :data:`CHUNK_SIZE`.

        Raises:
            ValueError: ``uri`` is not inside this store's bucket and prefix.
            FileNotFoundError: Nothing is stored at ``uri``.
        """
        key = self._key_for_uri(uri)
        body = await asyncio.to_thread(self._get_body, key, uri)
        try:
            chunks = body.iter_chunks(CHUNK_SIZE)
            while (chunk := await asyncio.to_thread(_next_chunk, chunks)) is not None:
                yield chunk
        finally:
            body.close()

    async def open_range(self, uri: str, start: int, length: int) -> AsyncIterator[bytes]:
        """Stream ``length`` bytes from offset ``start`` with one ranged ``GetObject``.

        Raises:
            ValueError: ``uri`` is not inside this store, or the range is negative.
            FileNotFoundError: Nothing is stored at ``uri``.
        """
        check_byte_range(start, length)
        if length == 0:
            await self.describe(uri)  # still FileNotFoundError when absent
            return
        key = self._key_for_uri(uri)
        byte_range = f"bytes={start}-{start + length - 1}"
        try:
            body = await asyncio.to_thread(self._get_body, key, uri, byte_range)
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code", "")) == "InvalidRange":
                return  # start is at or past the end: nothing to send
            raise
        try:
            chunks = body.iter_chunks(CHUNK_SIZE)
            while (chunk := await asyncio.to_thread(_next_chunk, chunks)) is not None:
                yield chunk
        finally:
            body.close()

    async def presigned_url(self, uri: str, *, expires_in: int = 300) -> str | None:
        """A pre-signed ``GetObject`` URL valid for ``expires_in`` seconds.

        Raises:
            ValueError: ``uri`` is not inside this store's bucket and prefix.
        """
        key = self._key_for_uri(uri)
        return await asyncio.to_thread(
            self.client.generate_presigned_url,
            "get_object",
            Params={"Bucket": self.bucket, "Key": key},
            ExpiresIn=expires_in,
        )

    async def read_bytes(self, uri: str) -> bytes:
        """Read a whole (small) stored object.

        Raises:
            ValueError: ``uri`` is not inside this store's bucket and prefix.
            FileNotFoundError: Nothing is stored at ``uri``.
        """
        key = self._key_for_uri(uri)
        return await asyncio.to_thread(self._read_key, key, uri)

    async def describe(self, uri: str) -> StoredBlob:
        """The MIME type (``ContentType``), size and checksum of a stored object.

        The checksum comes from the object's ``sha256`` metadata, else from its blob key;
        other objects are hashed by streaming them.

        Raises:
            ValueError: ``uri`` is not inside this store's bucket and prefix.
            FileNotFoundError: Nothing is stored at ``uri``.
        """
        key = self._key_for_uri(uri)
        head = await asyncio.to_thread(self._head, key)
        if head is None:
            raise FileNotFoundError(f"nothing is stored at {uri}")
        size = int(head.get("ContentLength", 0))
        mime_type = head.get("ContentType") or DEFAULT_MIME_TYPE
        sha = head.get("Metadata", {}).get("sha256") or sha256_of_blob_relpath(self._relpath(key))
        if sha is None:
            hasher = hashlib.sha256()
            size = 0
            async for chunk in self.open(uri):
                hasher.update(chunk)
                size += len(chunk)
            sha = hasher.hexdigest()
        return StoredBlob(uri=self._uri(key), sha256=sha, size=size, mime_type=mime_type)

    async def exists(self, uri: str) -> bool:
        """True if an object is stored at ``uri``.

        Raises:
            ValueError: ``uri`` is not inside this store's bucket and prefix.
        """
        key = self._key_for_uri(uri)
        return await asyncio.to_thread(self._head, key) is not None

    def blob_uri(self, sha256: str) -> str:
        """The ``s3://`` URI a blob with this checksum has (stored or not)."""
        return self._uri(self._key(blob_relpath(sha256)))

    async def local_path(self, uri: str) -> str:
        """Download the object to the cache directory if needed and return the local path.

        Blobs are cached by checksum (``<cache_dir>/blobs/<aa>/<sha256>``), verified after
        download, and downloaded only once. Other objects (manifests, records) may change,
        so they are downloaded again on every call.

        Raises:
            ValueError: ``uri`` is not inside this store's bucket and prefix.
            FileNotFoundError: Nothing is stored at ``uri``.
            BlobIntegrityError: The downloaded blob does not match its checksum.
        """
        key = self._key_for_uri(uri)
        return await asyncio.to_thread(self._download, key, uri)

    # -- records and manifests ---------------------------------------------------------

    async def list_runs(self) -> list[str]:
        """Run ids that have a manifest, sorted (lists ``<prefix>/runs/`` page by page)."""
        return await asyncio.to_thread(self._list_runs)

    def _list_runs(self) -> list[str]:
        run_ids: set[str] = set()
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key("runs/")):
            for entry in page.get("Contents", []):
                run_id = manifest_run_id(self._relpath(entry.get("Key", "")))
                if run_id is not None:
                    run_ids.add(run_id)
        return sorted(run_ids)

    async def _write_document(self, relpath: str, data: bytes) -> str:
        """Write encoded JSON at ``relpath`` (one ``PutObject``, atomic); returns its URI."""
        key = self._key(relpath)
        await asyncio.to_thread(
            lambda: self.client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType="application/json"
            )
        )
        return self._uri(key)

    async def _read_document(self, relpath: str) -> dict[str, Any] | None:
        """The JSON object at ``relpath``, or None if there is no such object."""
        key = self._key(relpath)
        uri = self._uri(key)
        try:
            data = await asyncio.to_thread(self._read_key, key, uri)
        except FileNotFoundError:
            return None
        return decode_json(data, uri)

    # -- keys and URIs -----------------------------------------------------------------

    def _key(self, relpath: str) -> str:
        return f"{self.prefix}/{relpath}" if self.prefix else relpath

    def _relpath(self, key: str) -> str:
        return key[len(self.prefix) + 1 :] if self.prefix else key

    def _uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _key_for_uri(self, uri: str) -> str:
        """The key a URI names; ValueError unless it is under this bucket and prefix."""
        key = relpath_of_uri(uri, f"s3://{self.bucket}/", self.root_uri)
        if self.prefix and not key.startswith(f"{self.prefix}/"):
            raise ValueError(f"{uri!r} is not a URI inside this store ({self.root_uri})")
        return key

    # -- blocking helpers (run in a worker thread) -------------------------------------

    def _head(self, key: str) -> HeadObjectOutputTypeDef | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _is_not_found(error):
                return None
            raise

    def _get_body(self, key: str, uri: str, byte_range: str | None = None) -> StreamingBody:
        try:
            if byte_range is not None:
                return self.client.get_object(Bucket=self.bucket, Key=key, Range=byte_range)["Body"]
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        except ClientError as error:
            if _is_not_found(error):
                raise FileNotFoundError(f"nothing is stored at {uri}") from None
            raise

    def _read_key(self, key: str, uri: str) -> bytes:
        body = self._get_body(key, uri)
        try:
            return body.read()
        finally:
            body.close()

    def _new_spool(self) -> tuple[Path, BinaryIO]:
        spool_dir: Path | None = None
        if self._cache_dir is not None:
            spool_dir = self._cache_dir / "spool"
            spool_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="tutopanda-", suffix=".part", dir=spool_dir)
        return Path(name), os.fdopen(fd, "wb")

    def _download(self, key: str, uri: str) -> str:
        cache_dir = self._cache_dir if self._cache_dir is not None else _default_cache_dir()
        sha = sha256_of_blob_relpath(self._relpath(key))
        if sha is not None:
            target = cache_dir / "blobs" / sha[:2] / sha
            if target.is_file():
                return str(target)
        else:
            target = cache_dir / "objects" / self.bucket / key
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.name}.{uuid.uuid4().hex}.part")
        try:
            try:
                self.client.download_file(
                    self.bucket, key, str(partial), Config=self._transfer_config
                )
            except ClientError as error:
                if _is_not_found(error):
                    raise FileNotFoundError(f"nothing is stored at {uri}") from None
                raise
            if sha is not None:
                actual = _sha256_of_file(partial)
                if actual != sha:
                    raise BlobIntegrityError(
                        f"downloaded {uri}: expected sha256 {sha}, received {actual}"
                    )
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        return str(target)


def _next_chunk(chunks: Iterator[bytes]) -> bytes | None:
    return next(chunks, None)


def _sha256_of_file(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            hasher.update(chunk)
    return hasher.hexdigest()
