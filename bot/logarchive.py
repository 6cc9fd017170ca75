"""A copy of each finished build log in S3-compatible storage, for retention.

The store's log rows stay the log's home whatever happens here: pages read them, and the
archive is only a copy (``[logs] archive = "s3"``; ``bot.settings_store.LogArchiveSettings``).

Design, chosen so that no column is added to the store:

- **Key.** ``<prefix><repo>/<build id>/<attempt number>.log`` (``AttemptRef.name``), made
  of facts the store already has, so anyone can find an attempt's copy; a key never holds
  anything else (no URL, no token).
- **Archived.** Each object carries the metadata ``wb-last-row``: the id of the newest log
  row it holds. An attempt counts as archived when the object at its key names the newest
  row the store has for its log (``LogArchive.last_row``, one HEAD). A copy cut short (the
  upload raced a late log line, or died midway: a multipart upload leaves no object) is
  therefore never mistaken for a whole one.
- **On finish.** ``archive_finished`` is called once the attempt is final and its log
  closed. It never raises: when S3 is down it logs why (never a credential) and the rows
  stay in the store.
- **Retry.** ``archive_pending`` is a periodic sweep (any worker, any host: uploads are
  idempotent, the same key gets the same bytes). It walks the newest ``builds`` builds and
  archives every attempt that finished at least ``settle`` seconds ago and has no whole copy.
  Cost per sweep: one list read, one detail read per re-run build, and per finished attempt
  one one-row read and one HEAD. Bound: an outage during which more than ``builds`` builds
  start leaves the older logs in the store only (still served; never copied).

Memory stays bounded whatever the log's size: the log is read from the store a page at a
time and uploaded in parts of ``PART_BYTES`` (a multipart upload past one part).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
)

from bot.errors import StoreUnavailable, WerckerBotError
from bot.settings_store import LogArchiveSettings
from bot.store.base import LOG_PAGE_BYTES, LogReads, ReadModels
from bot.store.rows import AttemptRow, Claim

logger = logging.getLogger(__name__)

PART_BYTES = 5 * 1024 * 1024
"""One upload part (S3's smallest but for the last): the most log held in memory at once."""
LAST_ROW_META = "wb-last-row"
"""Object metadata: the id of the newest log row the copy holds."""
SWEEP_BUILDS = 200
"""How many of the newest builds ``archive_pending`` looks at."""
SETTLE_SECONDS = 120.0
"""``archive_pending`` leaves an attempt finished less than this long ago to its own worker."""
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_BOTO_ERRORS = (BotoCoreError, ClientError)
_TEXT = "text/plain; charset=utf-8"


class ArchiveError(WerckerBotError):
    """The archive could not be used. ``reason`` is one line that names no credential."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"log archive: {reason}")


@dataclass(frozen=True)
class AttemptRef:
    """Which attempt a log belongs to: its row id and what names its copy."""

    attempt_id: int
    repo: str
    build_id: int
    number: int

    @classmethod
    def from_claim(cls, claim: Claim) -> AttemptRef:
        return cls(claim.attempt_id, claim.build.repo, claim.build.id, claim.attempt_number)

    @property
    def name(self) -> str:
        """``<repo>/<build id>/<number>.log``: each part of the repository's ``owner/name``
        keeps only ``[A-Za-z0-9._-]`` (others become ``_``; ``.`` and ``..`` become ``_``)."""
        parts = [_UNSAFE.sub("_", part) for part in self.repo.split("/")]
        repo = "/".join(p if p.strip(".") else "_" for p in parts)
        return f"{repo}/{self.build_id}/{self.number}.log"


class LogArchive(Protocol):
    """Where copies of finished logs go. Every method raises ``ArchiveError`` when the
    storage cannot be used."""

    def key_for(self, attempt: AttemptRef) -> str:
        """The object key of ``attempt``'s copy (the prefix plus ``attempt.name``)."""
        ...

    def put(self, key: str, chunks: Iterable[bytes], last_row: int) -> None:
        """Stores the concatenation of ``chunks`` at ``key``, replacing any copy there,
        with ``last_row`` as its ``LAST_ROW_META``. Consumes ``chunks`` as it uploads:
        memory stays bounded by about one part. Nothing is left at ``key`` but a whole
        object (the old one, or the new one)."""
        ...

    def last_row(self, key: str) -> int | None:
        """The ``LAST_ROW_META`` of the copy at ``key``; ``None`` when there is none."""
        ...

    def read(self, key: str) -> Iterator[bytes]:
        """The copy at ``key``, streamed in chunks. Raises ``FileNotFoundError`` when there
        is none (at the first ``next``)."""
        ...


class ArchiveReads(LogReads, ReadModels, Protocol):
    """What ``archive_pending`` reads: builds and their attempts, and logs."""


# -- S3 ---------------------------------------------------------------------------------------


class S3LogArchive:
    """``LogArchive`` on S3 or an S3-compatible service (MinIO, Ceph, moto), with boto3.

    Credentials come from boto3's own chain (environment, config files, instance role);
    the bot never reads or logs them. An ``endpoint_url`` switches to path-style
    addressing, which the compatible services expect. ``attempts`` bounds boto3's retries,
    so a down endpoint costs seconds, not minutes."""

    def __init__(
        self, settings: LogArchiveSettings, *, attempts: int = 3, part_bytes: int = PART_BYTES
    ) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = settings.bucket
        prefix = settings.prefix
        self.prefix = prefix if not prefix or prefix.endswith("/") else f"{prefix}/"
        self.part_bytes = part_bytes
        config = Config(
            connect_timeout=5,
            read_timeout=60,
            retries={"max_attempts": attempts, "mode": "standard"},
            s3={"addressing_style": "path"} if settings.endpoint_url else None,
        )
        self._client: Any = boto3.session.Session().client(
            "s3",
            endpoint_url=settings.endpoint_url,
            region_name=settings.region,
            config=config,
        )
        self._where = _endpoint_text(settings.endpoint_url, self.bucket)

    def key_for(self, attempt: AttemptRef) -> str:
        return f"{self.prefix}{attempt.name}"

    def put(self, key: str, chunks: Iterable[bytes], last_row: int) -> None:
        meta = {"Bucket": self.bucket, "Key": key}
        extra = {"Metadata": {LAST_ROW_META: str(last_row)}, "ContentType": _TEXT}
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        try:
            for part in _parts(chunks, self.part_bytes):
                if upload_id is None:
                    if len(part) < self.part_bytes:  # only the last part is short: one PUT
                        self._client.put_object(**meta, **extra, Body=part)
                        return
                    upload_id = self._client.create_multipart_upload(**meta, **extra)["UploadId"]
                number = len(parts) + 1
                answer = self._client.upload_part(
                    **meta, UploadId=upload_id, PartNumber=number, Body=part
                )
                parts.append({"ETag": answer["ETag"], "PartNumber": number})
                del part  # free this part before the next one is read
            if upload_id is None:  # an empty log
                self._client.put_object(**meta, **extra, Body=b"")
                return
            self._client.complete_multipart_upload(
                **meta, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except _BOTO_ERRORS as err:
            self._abort(key, upload_id)
            raise ArchiveError(self._reason(err, f"storing {key}")) from None
        except BaseException:
            self._abort(key, upload_id)
            raise

    def last_row(self, key: str) -> int | None:
        try:
            head = self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as err:
            if _status(err) == 404:
                return None
            raise ArchiveError(self._reason(err, f"looking up {key}")) from None
        except _BOTO_ERRORS as err:
            raise ArchiveError(self._reason(err, f"looking up {key}")) from None
        value = head.get("Metadata", {}).get(LAST_ROW_META, "")
        return int(value) if value.isdigit() else 0

    def read(self, key: str) -> Iterator[bytes]:
        try:
            body = self._client.get_object(Bucket=self.bucket, Key=key)["Body"]
        except ClientError as err:
            if _status(err) == 404:
                raise FileNotFoundError(key) from None
            raise ArchiveError(self._reason(err, f"reading {key}")) from None
        except _BOTO_ERRORS as err:
            raise ArchiveError(self._reason(err, f"reading {key}")) from None
        try:
            yield from body.iter_chunks(64 * 1024)
        except _BOTO_ERRORS as err:
            raise ArchiveError(self._reason(err, f"reading {key}")) from None
        finally:
            body.close()

    def _abort(self, key: str, upload_id: str | None) -> None:
        """Drops a multipart upload that will not complete (best effort: S3 may be down)."""
        if upload_id is None:
            return
        try:
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except _BOTO_ERRORS:
            logger.info("could not abort the upload of %s; the bucket's lifecycle drops it", key)

    def _reason(self, err: BotoCoreError | ClientError, doing: str) -> str:
        """One line on why ``doing`` failed, from the error's kind and S3's code only:
        never the error's own text, which could carry a URL with userinfo."""
        if isinstance(err, ClientError):
            code = str(err.response.get("Error", {}).get("Code", "?"))
            return f"{doing}: S3 answered {code} (HTTP {_status(err)}) at {self._where}"
        if isinstance(err, (NoCredentialsError, PartialCredentialsError)):
            return f"{doing}: no usable AWS credentials in boto3's chain (environment, role)"
        return f"{doing}: cannot reach {self._where} ({type(err).__name__})"


def _status(err: ClientError) -> int:
    meta = err.response.get("ResponseMetadata", {})
    return int(meta.get("HTTPStatusCode", 0) or 0)


def _endpoint_text(endpoint_url: str | None, bucket: str) -> str:
    """Where the archive is, for messages: the endpoint's host and port (no userinfo, no
    path or query) and the bucket."""
    if not endpoint_url:
        return f"s3://{bucket}"
    parts = urlsplit(endpoint_url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port} bucket {bucket}"


def _parts(chunks: Iterable[bytes], size: int) -> Iterator[bytearray]:
    """``chunks`` regrouped into parts of at least ``size`` bytes (the last one may be
    shorter); each part is handed over, never copied."""
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        if len(buffer) >= size:
            part, buffer = buffer, bytearray()
            yield part
            del part
    if buffer:
        yield buffer


def open_archive(settings: LogArchiveSettings) -> LogArchive | None:
    """The archive ``[logs]`` names, or ``None`` for ``archive = "none"``. Contacts nothing."""
    if settings.archive == "s3":
        return S3LogArchive(settings)
    return None


# -- copying logs -----------------------------------------------------------------------------


def archive_log(store: LogReads, archive: LogArchive, attempt: AttemptRef) -> str | None:
    """Copies the attempt's log as the store has it now to its key and returns the key;
    ``None`` (and nothing stored) for an empty log. Rows appended while the copy is made
    are left out, and the copy's ``LAST_ROW_META`` says so. Raises ``ArchiveError`` and
    ``StoreUnavailable``."""
    last = store.log_tail(attempt.attempt_id, 1).last_id
    if last == 0:
        return None
    key = archive.key_for(attempt)
    archive.put(key, _log_bytes(store, attempt.attempt_id, last), last)
    return key


def _log_bytes(store: LogReads, attempt_id: int, last: int) -> Iterator[bytes]:
    """The log's rows up to row ``last`` (inclusive), a page at a time, as UTF-8."""
    after = 0
    while after < last:
        page = store.log_page(attempt_id, after, LOG_PAGE_BYTES)
        if page.next_id > last:
            # The page ran past the snapshot into rows appended since: read on row by row
            # (a page holds at least one row, so ``max_bytes=1`` reads exactly one).
            page = store.log_page(attempt_id, after, 1)
            if page.next_id > last:
                return
        if page.next_id <= after:  # no rows left (none should vanish; never loop)
            return
        yield page.text.encode()
        after = page.next_id


def archive_finished(
    store: LogReads, archive: LogArchive | None, attempt: AttemptRef
) -> str | None:
    """Copies a finished attempt's log to the archive, once the attempt is final and its
    log closed. Returns the key, or ``None`` when nothing was copied (no archive, an empty
    log, or a failure). Never raises: a failure is logged with its reason (no credential)
    and the log stays in the store, where ``archive_pending`` finds it later."""
    if archive is None:
        return None
    try:
        return archive_log(store, archive, attempt)
    except (ArchiveError, StoreUnavailable) as err:
        logger.warning(
            "the log of attempt %s (%s build %s #%s) is not archived yet: %s; it stays in "
            "the store and the archive sweep retries it",
            attempt.attempt_id,
            attempt.repo,
            attempt.build_id,
            attempt.number,
            err.reason,
        )
    except Exception:  # a bug here must not cost the worker thread
        logger.exception("archiving the log of attempt %s failed", attempt.attempt_id)
    return None


def finished_attempts(store: ReadModels, builds: int, before: float) -> Iterator[AttemptRef]:
    """The attempts of the newest ``builds`` builds that finished at or before
    ``before`` (epoch seconds), newest build first."""
    for build in store.list_builds(builds):
        newest = build.attempt
        if newest is None:
            continue
        attempts: Iterable[AttemptRow] = (newest,)
        if newest.number > 1:  # a re-run: its earlier attempts have logs too
            detail = store.build_detail(build.id)
            attempts = detail.attempts if detail else attempts
        for row in attempts:
            if row.finished_at is not None and row.finished_at <= before:
                yield AttemptRef(row.id, build.repo, build.id, row.number)


def archive_pending(
    store: ArchiveReads,
    archive: LogArchive,
    *,
    builds: int = SWEEP_BUILDS,
    settle: float = SETTLE_SECONDS,
    now: float | None = None,
) -> int:
    """The retry sweep: archives each attempt of the newest ``builds`` builds that finished
    at least ``settle`` seconds ago and has no whole copy (none at its key, or one whose
    ``LAST_ROW_META`` is not the store's newest row). Returns how many it copied. Never
    raises: at the first failure it logs why and stops, to try again at the next sweep."""
    before = (time.time() if now is None else now) - settle
    copied = 0
    try:
        for attempt in finished_attempts(store, builds, before):
            newest = store.log_tail(attempt.attempt_id, 1).last_id
            if newest == 0 or archive.last_row(archive.key_for(attempt)) == newest:
                continue
            if archive_log(store, archive, attempt) is not None:
                copied += 1
    except (ArchiveError, StoreUnavailable) as err:
        logger.warning("the log archive sweep stopped after %s copies: %s", copied, err.reason)
    except Exception:
        logger.exception("the log archive sweep failed after %s copies", copied)
    if copied:
        logger.info("the log archive sweep copied %s logs", copied)
    return copied
