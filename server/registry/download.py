"""Blob downloads: parallel Range requests into a resumable partial file, shared by pulls.

A :class:`BlobDownload` fetches one blob in the background:

1. reload the part states of an earlier attempt (:mod:`.parts`), or HEAD the blob, check its
   size against the manifest and plan new parts;
2. give the partial file its final length (sparse; free space was checked by the pull);
3. resolve the direct URL once (same-host redirects followed, a cross-host one is a CDN);
4. fetch the unfinished parts in parallel, each ``Range: bytes=<start>-<end>`` from where
   it stopped, fsyncing the data and saving its state every ``sync_interval`` seconds.

A part that fails for a transient reason (cut connection, timeout, stall, 5xx) retries
from the byte it reached; only attempts that move no byte count towards the limit, so a
flaky link makes progress instead of starting over.  :meth:`BlobDownload.commit` then
hashes the finished file and either renames it into the store or deletes it: a blob
enters the store only verified.

Pulls that want the same blob at the same time share one download (:class:`Downloads`,
over the table the store keeps in ``store.in_flight``);
it is cancelled when the last of them goes away, and what it fetched stays on disk for
the next pull.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import logging
import os
import threading
import time
from pathlib import Path

import httpx

from llamita.server.store.blobs import DiskFull, Store, fsync_dir, normalize_digest, sha256_file

from . import parts
from .client import RegistryClient, is_transient
from .errors import Cancelled, CorruptDownload, RegistryError, RegistryUnavailable

log = logging.getLogger("llamita.registry")


class _ShortBody(Exception):
    """The server ended a range response before the range's last byte (resumable)."""


class BlobDownload:
    """One blob being fetched into ``<blob>-partial``; see the module docstring."""

    def __init__(self, store: Store, digest: str, size: int, client: RegistryClient) -> None:
        self.digest = normalize_digest(digest)
        self.blob = store.blob_path(self.digest)
        self.store = store
        self.total = size
        self.parts: list[parts.Part] = []
        self.error: BaseException | None = None
        self.finished = threading.Event()
        self.cancelled = threading.Event()
        self.refs = 0
        self._client = client
        self._policy = client.policy
        self._stop = threading.Event()
        self._url = ""
        self._url_lock = threading.Lock()
        self._commit_lock = threading.Lock()
        self._committed = False
        self._commit_error: RegistryError | None = None
        self.thread = threading.Thread(target=self._run, name=f"pull {self.short}", daemon=True)

    @property
    def short(self) -> str:
        return self.digest[7:19]

    @property
    def completed(self) -> int:
        return sum(p.completed for p in self.parts)

    def cancel(self) -> None:
        self.cancelled.set()
        self._stop.set()

    # ---- the download phase --------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._download()
        except BaseException as e:
            self.error = e
            Downloads(self.store).forget(self)
        finally:
            self._client.close()
            self.finished.set()

    def _download(self) -> None:
        self.blob.parent.mkdir(parents=True, exist_ok=True)
        if self.blob.is_file():  # another pull finished it between our check and this job
            self.parts = [parts.Part(0, 0, self.total, self.total)]
            return
        saved = parts.load(self.blob, self.total) if self.total > 0 else None
        if saved is None:
            parts.discard(self.blob)
            head = self._client.blob_size(self.digest)
            if self.total <= 0 and head is not None:
                self.total = head
            elif head is not None and head != self.total:
                raise RegistryError(
                    f"blob {self.digest} is {head} bytes on the registry but the manifest says {self.total}"
                )
            policy = self._policy
            saved = parts.plan(self.total, policy.parts, policy.min_part, policy.max_part)
            for part in saved:
                parts.save(self.blob, part)
        else:
            log.info(
                "resuming %s: %d of %d bytes already on disk",
                self.short,
                sum(p.completed for p in saved),
                self.total,
            )
        self.parts = saved
        fd = os.open(parts.partial_path(self.blob), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _reserve(fd, self.total)
            pending = [p for p in self.parts if not p.done]
            if pending:
                self._url = self._client.direct_url(self.digest)
                log.info("downloading %s in %d part(s)", self.short, len(pending))
                self._fetch_parts(fd, pending)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _fetch_parts(self, fd: int, pending: list[parts.Part]) -> None:
        """Up to ``policy.parts`` daemon workers (a stopping server must not wait for them)."""
        queue = collections.deque(pending)
        errors: list[BaseException] = []
        lock = threading.Lock()

        def worker() -> None:
            while not self._stop.is_set():
                with lock:
                    if not queue:
                        return
                    part = queue.popleft()
                try:
                    self._fetch_part(fd, part)
                except BaseException as e:
                    with lock:
                        errors.append(e)
                    self._stop.set()  # the other parts stop at their next chunk and save their state
                    return

        workers = [
            threading.Thread(target=worker, name=f"pull {self.short} #{i}", daemon=True)
            for i in range(min(self._policy.parts, len(pending)))
        ]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join()
        real = [e for e in errors if not isinstance(e, Cancelled)]
        if real:
            raise real[0]
        if errors or self._stop.is_set():
            raise Cancelled()

    def _fetch_part(self, fd: int, part: parts.Part) -> None:
        failures = 0
        while not part.done:
            if self._stop.is_set():
                raise Cancelled()
            before = part.completed
            url = self._current_url()
            try:
                self._stream_into(fd, part, url)
                if not part.done:
                    raise _ShortBody()
            except Cancelled:
                raise
            except (RegistryUnavailable, _ShortBody) as e:
                failures = self._failed(part, before, failures, e)
            except httpx.HTTPError as e:
                if not is_transient(e):
                    raise RegistryError(f"downloading {self.short}: {e}") from e
                failures = self._failed(part, before, failures, e)
            except RegistryError:
                if (
                    url == self._client.blob_url(self.digest)
                    or failures + 1 >= self._policy.transfer_attempts
                ):
                    raise
                # A CDN URL that stopped working (an expired signature): ask the registry again.
                failures += 1
                with self._url_lock:
                    self._url = self._client.direct_url(self.digest)
            finally:
                self._sync(fd, part)

    def _failed(self, part: parts.Part, before: int, failures: int, error: BaseException) -> int:
        """Count a failed attempt (only if it moved no byte) and back off before the next."""
        if isinstance(error, _ShortBody):
            reason: str = "connection closed before the end of the range"
        else:
            reason = str(error) or type(error).__name__
        failures = 0 if part.completed > before else failures + 1
        if failures >= self._policy.transfer_attempts:
            raise RegistryUnavailable(
                f"downloading {self.short} from {self._client.host} failed {failures} times in a row "
                f"({reason}); run the pull again to resume"
            )
        log.info("%s part %d: %s; resuming at byte %d", self.short, part.n, reason, part.start)
        if failures:
            self._client.sleep(self._policy.delay(failures))
        return failures

    def _current_url(self) -> str:
        with self._url_lock:
            return self._url

    def _stream_into(self, fd: int, part: parts.Part, url: str) -> None:
        response = self._client.open_range(url, part.start, part.end)
        try:
            skip = 0
            if response.status_code == 206:
                content_range = response.headers.get("content-range", "")
                if not content_range.startswith(f"bytes {part.start}-"):
                    raise RegistryError(f"registry answered range {content_range!r} for bytes {part.start}-")
            elif response.status_code == 200:
                skip = part.start  # the server ignored Range: the body starts at byte 0
            else:
                raise RegistryError(f"unexpected status {response.status_code} for a blob range")
            last_sync = time.monotonic()
            for chunk in response.iter_raw():  # as it arrives: a cut loses no buffered byte
                if self._stop.is_set():
                    raise Cancelled()
                if skip:
                    dropped = min(skip, len(chunk))
                    chunk, skip = chunk[dropped:], skip - dropped
                chunk = chunk[: part.end - part.start]
                if chunk:
                    _write_at(fd, chunk, part.start)
                    part.completed += len(chunk)
                if part.done:
                    break
                if time.monotonic() - last_sync >= self._policy.sync_interval:
                    self._sync(fd, part)
                    last_sync = time.monotonic()
        finally:
            response.close()

    def _sync(self, fd: int, part: parts.Part) -> None:
        """Make the part's bytes durable, then record them (state never runs ahead of data)."""
        with contextlib.suppress(OSError):
            os.fdatasync(fd)
            parts.save(self.blob, part)

    # ---- verification --------------------------------------------------------------------
    def commit(self) -> None:
        """Verify the finished file and move it into the store; once, whoever asks first.

        A file that does not hash to the digest is deleted with its part states, so the next
        pull starts clean.
        """
        with self._commit_lock:
            if self._commit_error is not None:
                raise self._commit_error
            if self._committed:
                return
            try:
                self._verify_and_rename()
                self._committed = True
            except RegistryError as e:
                self._commit_error = e
                raise
            finally:
                Downloads(self.store).forget(self)

    def _verify_and_rename(self) -> None:
        partial = parts.partial_path(self.blob)
        if self.blob.is_file():
            parts.discard(self.blob)
            return
        actual = sha256_file(partial)
        if actual != self.digest:
            parts.discard(self.blob)
            raise CorruptDownload(
                f"digest mismatch, file must be downloaded again: want {self.digest}, got {actual}"
            )
        os.chmod(partial, 0o644)
        os.replace(partial, self.blob)
        fsync_dir(self.blob.parent)
        for path in parts.part_files(self.blob):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


class Downloads:
    """The downloads in flight into one store, one per blob file; pulls of the same blob share it.

    The table itself is ``store.in_flight``, so it lives as long as the store does.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._jobs: dict[Path, BlobDownload] = store.in_flight.jobs
        self._lock = store.in_flight.lock

    def acquire(self, digest: str, size: int, client: RegistryClient) -> BlobDownload:
        """Join the running download of ``digest`` or start one (with a copy of ``client``)."""
        store = self._store
        key = store.blob_path(digest)
        while True:
            with self._lock:
                job = self._jobs.get(key)
                if job is None:
                    job = BlobDownload(store, digest, size, client.fork())
                    self._jobs[key] = job
                    job.refs = 1
                    job.thread.start()
                    return job
                if not job.cancelled.is_set():
                    job.refs += 1
                    return job
            job.thread.join()  # a cancelled download is still saving its state; then start afresh
            self.forget(job)

    def release(self, job: BlobDownload) -> None:
        """Drop one waiter; the last one leaving cancels a download that is still running."""
        with self._lock:
            job.refs -= 1
            if job.refs > 0:
                return
            if not job.finished.is_set():
                job.cancel()
                return
        self.forget(job)

    def forget(self, job: BlobDownload) -> None:
        with self._lock:
            if self._jobs.get(job.blob) is job:
                del self._jobs[job.blob]

    def running(self) -> list[BlobDownload]:
        with self._lock:
            return list(self._jobs.values())


def _reserve(fd: int, size: int) -> None:
    """Give the file its final length, sparse (as Ollama): space was checked before the pull.

    Not ``posix_fallocate``: where the filesystem lacks fallocate, glibc emulates it by
    writing every block, which takes minutes for a 40 GB model.
    """
    if os.fstat(fd).st_size != size:
        os.ftruncate(fd, size)


def _write_at(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    try:
        while view:
            written = os.pwrite(fd, view, offset)
            view, offset = view[written:], offset + written
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise DiskFull() from e
        raise
