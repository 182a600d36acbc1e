"""Single files over HTTP(S) as an Arrow file system (``pyarrow.fs.PyFileSystem(HttpHandler(...))``).

A file's size comes from a HEAD request. Where the server takes range requests (``Accept-Ranges:
bytes``), reads are ranged, at least ``READ_AHEAD`` bytes at a time, so a Parquet reader fetches its
footer and the columns it needs and no more. Where it does not (Python's own http.server, say), the
body is read once into a temporary file that spills to disk past ``SPOOL_MEMORY``, so memory stays
bounded whatever the file's size. Every request has timeouts; connection failures, timeouts and 5xx
answers are retried with exponential backoff, 4xx answers are not.
"""

from __future__ import annotations

import io
import tempfile
import time
import urllib.error
import urllib.request

import pyarrow as pa
import pyarrow.fs as pafs

READ_AHEAD = 1 << 20  # bytes fetched at least per ranged request
SPOOL_MEMORY = 16 << 20  # a body read whole stays in memory up to this, then moves to a temporary file
CHUNK = 1 << 20
USER_AGENT = "softreg"


def _request(url: str, method: str = "GET", headers: dict | None = None, *, timeout: float, attempts: int):
    """urlopen with retries for transient failures; raises OSError subclasses the caller words."""
    delay = 0.25
    for attempt in range(attempts):
        req = urllib.request.Request(url, method=method, headers={"User-Agent": USER_AGENT, **(headers or {})})
        try:
            return urllib.request.urlopen(req, timeout=timeout)  # noqa: S310 - the user's own URL
        except urllib.error.HTTPError as exc:
            if exc.code == 404 or exc.code == 410:
                raise FileNotFoundError(f"HTTP {exc.code} {exc.reason}") from None
            if exc.code in (401, 403):
                raise PermissionError(f"HTTP {exc.code} {exc.reason}") from None
            if exc.code < 500 or attempt == attempts - 1:
                raise OSError(f"HTTP {exc.code} {exc.reason}") from None
        except OSError as exc:  # URLError, timeouts, refused and reset connections
            if attempt == attempts - 1:
                reason = getattr(exc, "reason", exc)
                if isinstance(reason, TimeoutError) or "timed out" in str(reason):
                    raise TimeoutError(f"timed out after {timeout:g} s") from None
                raise ConnectionError(f"connection failed: {reason}") from None
        time.sleep(delay)
        delay *= 2
    raise AssertionError("unreachable")


class HttpFile(io.RawIOBase):
    """A read-only, seekable file over HTTP (see the module docstring)."""

    def __init__(self, url: str, size: int | None, ranges: bool, timeout: float, attempts: int):
        """size: None when the server does not say it; the body is then read whole at once."""
        self.url, self.size, self.ranges = url, size, ranges and size is not None
        self.timeout, self.attempts = timeout, attempts
        self.pos = 0
        self._block_start, self._block = 0, b""
        self._spool = None
        if size is None:
            self._download()
            self.size = self._spool.seek(0, 2)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self.size - self.pos
        n = min(n, self.size - self.pos)
        if n <= 0:
            return b""
        data = self._ranged(self.pos, n) if self.ranges else self._spooled(self.pos, n)
        self.pos += len(data)
        return data

    def _ranged(self, start: int, n: int) -> bytes:
        end = start + n
        if not (self._block_start <= start and end <= self._block_start + len(self._block)):
            stop = min(self.size, start + max(n, READ_AHEAD))
            with _request(self.url, headers={"Range": f"bytes={start}-{stop - 1}"}, timeout=self.timeout,
                          attempts=self.attempts) as answer:
                body = answer.read()
                if answer.status != 206:  # the server sent the whole file after all
                    body = body[start:stop]
            self._block_start, self._block = start, body
        offset = start - self._block_start
        return self._block[offset : offset + n]

    def _download(self) -> None:
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)
        with _request(self.url, timeout=self.timeout, attempts=self.attempts) as answer:
            while chunk := answer.read(CHUNK):
                spool.write(chunk)
        self._spool = spool

    def _spooled(self, start: int, n: int) -> bytes:
        if self._spool is None:
            self._download()
        self._spool.seek(start)
        return self._spool.read(n)

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None
        super().close()


class HttpHandler(pafs.FileSystemHandler):
    """Arrow's file system interface over HTTP(S) URLs: files only, read only."""

    def __init__(self, connect_timeout: float, request_timeout: float, attempts: int):
        self.timeout = max(connect_timeout, request_timeout)
        self.attempts = attempts

    def __eq__(self, other):
        return isinstance(other, HttpHandler)

    def __ne__(self, other):
        return not self == other

    def get_type_name(self) -> str:
        return "http"

    def normalize_path(self, path: str) -> str:
        return path

    def _head(self, url: str) -> tuple[int | None, bool]:
        with _request(url, "HEAD", timeout=self.timeout, attempts=self.attempts) as answer:
            length = answer.headers.get("Content-Length")
            ranges = answer.headers.get("Accept-Ranges", "").lower() == "bytes"
            encoded = answer.headers.get("Content-Encoding", "identity").lower() not in ("", "identity")
            return (int(length) if length is not None and length.isdigit() and not encoded else None), ranges

    def get_file_info(self, paths):
        out = []
        for url in paths:
            try:
                size, _ = self._head(url)
            except FileNotFoundError:
                out.append(pafs.FileInfo(url, pafs.FileType.NotFound))
                continue
            out.append(pafs.FileInfo(url, pafs.FileType.File, size=size))
        return out

    def get_file_info_selector(self, selector):
        raise OSError("HTTP serves single files, not folders: give the URL of one table file")

    def open_input_file(self, path: str):
        size, ranges = self._head(path)
        return pa.PythonFile(HttpFile(path, size, ranges, self.timeout, self.attempts), mode="r")

    def open_input_stream(self, path: str):
        answer = _request(path, timeout=self.timeout, attempts=self.attempts)
        return pa.PythonFile(answer, mode="r")

    def _read_only(self, *args, **kwargs):
        raise OSError("HTTP files are read only")

    create_dir = delete_dir = delete_dir_contents = delete_root_dir_contents = delete_file = _read_only
    move = copy_file = open_output_stream = open_append_stream = _read_only
