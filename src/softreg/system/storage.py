"""Where data files live: a local path or a URL, opened the same way (``locate``).

A ``Location`` is a file or folder on some file system, named as the user typed it (``shown``, what
every message quotes). Local paths are read as before; URLs go through Apache Arrow's file systems:

- ``s3://bucket/key``: Amazon S3 or any S3-compatible store. Credentials come from the AWS SDK's own
  chain (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``, ``~/.aws``, an instance role); the endpoint
  from ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``; the region from ``AWS_REGION`` or
  ``AWS_DEFAULT_REGION`` (default us-east-1). Nothing secret is ever a softreg option, so nothing
  secret reaches a run's config.json.
- ``gs://``, ``hdfs://``: Arrow's own file systems, configured as those systems are.
- ``http://``, ``https://``: single files, read with range requests where the server takes them
  (``softreg.system.http_files``).
- ``file://``: a local path.
- any other scheme fsspec knows (``hf://`` with huggingface_hub, ``az://`` with adlfs, ...), when the
  package behind it is installed.

Requests have bounded timeouts and transient failures are retried with backoff, so no read hangs.
Every failure is one ``UserInputError`` naming the URL as typed and the fix (``storage_error``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from softreg.errors import UserInputError

CONNECT_TIMEOUT = 10.0  # seconds to reach a store ...
REQUEST_TIMEOUT = 60.0  # ... and for one request to answer
ATTEMPTS = 4  # tries of a request that failed for a transient reason (the first included)

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$", re.S)
_FILE_SYSTEMS: dict[tuple, object] = {}  # (scheme, host or configuration) -> a file system, made once


def is_url(spec: str | os.PathLike | None) -> bool:
    return isinstance(spec, str) and _URL.match(spec) is not None


class Location:
    """A local file or folder (see the module docstring for URLs)."""

    remote = False

    def __init__(self, path: str | os.PathLike, shown: str | None = None):
        self.path = Path(path)
        self.shown = shown if shown is not None else str(self.path)

    def __str__(self) -> str:
        return self.shown

    def __repr__(self) -> str:
        return f"Location({self.shown!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Location) and str(self.key()) == str(other.key())

    def __hash__(self) -> int:
        return hash(str(self.key()))

    def key(self):
        return self.path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def suffix(self) -> str:
        return Path(self.name).suffix

    def is_dir(self) -> bool:
        return self.path.is_dir()

    def is_file(self) -> bool:
        return self.path.is_file()

    def exists(self) -> bool:
        return self.path.exists()

    def absolute(self) -> str:
        """What a run records to read this again: an absolute path (a URL as given)."""
        return str(self.path.resolve())

    def children(self) -> list["Location"]:
        """The entries of this folder, sorted by name."""
        try:
            entries = sorted(self.path.iterdir())
        except OSError as exc:
            raise UserInputError(f"cannot list {self} ({exc.strerror or exc}); check the path.") from None
        return [Location(p) for p in entries]

    def open_stream(self):
        """A sequential Arrow input stream, decompressed by the file name's suffix."""
        import pyarrow as pa

        return pa.input_stream(str(self.path), compression="detect")

    def open_file(self):
        """A random-access Arrow file (for Parquet)."""
        import pyarrow as pa

        return pa.OSFile(str(self.path))


class RemoteLocation(Location):
    """A file or folder on a remote store, reached through an Arrow file system."""

    remote = True

    def __init__(self, fs, path: str, shown: str):
        self.fs, self.fs_path, self.shown = fs, path.rstrip("/") or path, shown
        self._info = None

    def key(self):
        return (id(self.fs), self.fs_path)

    @property
    def name(self) -> str:
        return self.fs_path.rstrip("/").rsplit("/", 1)[-1]

    def info(self):
        if self._info is None:
            try:
                self._info = self.fs.get_file_info(self.fs_path)
            except Exception as exc:  # noqa: BLE001 - every store raises its own types
                raise storage_error(exc, self.shown) from None
        return self._info

    def is_dir(self) -> bool:
        import pyarrow.fs as pafs

        return self.info().type == pafs.FileType.Directory

    def is_file(self) -> bool:
        import pyarrow.fs as pafs

        return self.info().type == pafs.FileType.File

    def exists(self) -> bool:
        import pyarrow.fs as pafs

        return self.info().type != pafs.FileType.NotFound

    def absolute(self) -> str:
        return self.shown

    def child(self, name: str, info=None) -> "RemoteLocation":
        loc = RemoteLocation(self.fs, f"{self.fs_path}/{name}", f"{self.shown.rstrip('/')}/{name}")
        loc._info = info
        return loc

    def children(self) -> list[Location]:
        import pyarrow.fs as pafs

        try:
            infos = self.fs.get_file_info(pafs.FileSelector(self.fs_path, recursive=False))
        except Exception as exc:  # noqa: BLE001
            raise storage_error(exc, self.shown) from None
        return [self.child(i.base_name, i) for i in sorted(infos, key=lambda i: i.base_name)]

    def open_stream(self):
        try:
            return self.fs.open_input_stream(self.fs_path, compression="detect")
        except Exception as exc:  # noqa: BLE001
            raise storage_error(exc, self.shown) from None

    def open_file(self):
        try:
            return self.fs.open_input_file(self.fs_path)
        except Exception as exc:  # noqa: BLE001
            raise storage_error(exc, self.shown) from None


def locate(spec: str | os.PathLike | Location) -> Location:
    """The Location a path or URL names (nothing is read yet)."""
    if isinstance(spec, Location):
        return spec
    if not is_url(spec):
        return Location(spec)
    scheme, rest = _URL.match(spec).groups()
    scheme = scheme.lower()
    if scheme == "file":
        if rest.startswith("localhost/"):
            rest = rest[len("localhost"):]
        if not rest.startswith("/"):
            raise UserInputError(f"{spec}: a file:// URL needs an absolute path (file:///home/me/t.csv); "
                                 "or give the path itself.")
        from urllib.parse import unquote

        return Location(unquote(rest), shown=spec)
    host, _, path = rest.partition("/")
    if not host:
        raise UserInputError(f"{spec}: the URL names no bucket or host; write it as {scheme}://BUCKET/KEY.")
    fs, fs_path = _file_system(scheme, host, path, spec)
    return RemoteLocation(fs, fs_path, spec)


def _file_system(scheme: str, host: str, path: str, spec: str):
    """(file system, path inside it) for a URL; file systems are made once per scheme and host."""
    if scheme == "s3":  # remade when the configuration it was made from changes (tests, long sessions)
        config = tuple(os.environ.get(k, "") for k in _S3_ENVIRONMENT)
        return _cached(scheme, config, _s3), f"{host}/{path}"
    if scheme in ("http", "https"):
        return _cached(scheme, "", _http), spec
    if scheme in ("gs", "gcs", "hdfs", "viewfs"):
        def make():
            import pyarrow.fs as pafs

            try:
                return pafs.FileSystem.from_uri(spec)[0]
            except Exception as exc:  # noqa: BLE001
                raise storage_error(exc, spec) from None
        fs = _cached(scheme, host, make)
        return fs, (f"{host}/{path}" if scheme in ("gs", "gcs") else "/" + path)
    return _cached(scheme, host, lambda: _fsspec(scheme, spec)), f"{host}/{path}"


_S3_ENVIRONMENT = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID",
                   "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE")


def _cached(scheme: str, host, make):
    key = (scheme, host)
    if key not in _FILE_SYSTEMS:
        _FILE_SYSTEMS[key] = make()
    return _FILE_SYSTEMS[key]


def _s3():
    import pyarrow.fs as pafs

    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    options = dict(region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
                   connect_timeout=CONNECT_TIMEOUT, request_timeout=REQUEST_TIMEOUT,
                   retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=ATTEMPTS))
    if endpoint:
        scheme, _, address = endpoint.partition("://")
        options.update(endpoint_override=address or scheme, scheme=scheme if address else "https")
    return pafs.S3FileSystem(**options)


def _http():
    import pyarrow.fs as pafs

    from softreg.system.http_files import HttpHandler

    return pafs.PyFileSystem(HttpHandler(CONNECT_TIMEOUT, REQUEST_TIMEOUT, ATTEMPTS))


def _fsspec(scheme: str, spec: str):
    import pyarrow.fs as pafs

    try:
        import fsspec
    except ImportError:
        raise UserInputError(f"{spec}: softreg reads s3://, gs://, hdfs://, http(s):// and file:// URLs; "
                             f"{scheme}:// needs fsspec (pip install fsspec) and its package for {scheme}.") from None
    try:
        cls = fsspec.get_filesystem_class(scheme)
    except ValueError:
        raise UserInputError(f"{spec}: unknown URL scheme {scheme}://; give a local path or an s3://, gs://, "
                             "hdfs://, http(s):// or file:// URL.") from None
    except ImportError as exc:
        raise UserInputError(f"{spec}: reading {scheme}:// URLs needs a package that is not installed "
                             f"({_short(exc)}); install it, or copy the data to a local path.") from None
    try:
        return pafs.PyFileSystem(pafs.FSSpecHandler(cls()))
    except Exception as exc:  # noqa: BLE001
        raise storage_error(exc, spec) from None


def _short(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def not_found(shown: str, given: str | None = None) -> UserInputError:
    """'no such file' for ``shown``; ``given``: how the user gave it (``--test URL``), when known."""
    scheme = shown.split("://", 1)[0].lower() if "://" in shown else ""
    what = "bucket and key" if scheme in ("s3", "gs", "gcs") else "URL" if scheme else "path"
    return UserInputError(f"{given or shown}: no such file or folder; check the {what}.")


def storage_error(exc: BaseException, shown: str) -> UserInputError:
    """One line for a failed request to a store: what went wrong with ``shown`` and the fix."""
    if isinstance(exc, UserInputError):
        return exc
    text = _short(exc)
    low = text.lower()
    scheme = shown.split("://", 1)[0].lower() if "://" in shown else ""
    if isinstance(exc, FileNotFoundError) or "not found" in low or "nosuchkey" in low or "nosuchbucket" in low \
            or " 404" in low or "does not exist" in low:
        return not_found(shown)
    if "credential" in low or "signature" in low or "invalidaccesskeyid" in low:
        return UserInputError(f"{shown}: the store refused the credentials ({text}); set AWS_ACCESS_KEY_ID and "
                              "AWS_SECRET_ACCESS_KEY (or ~/.aws/credentials) for an account that may read it.")
    if isinstance(exc, PermissionError) or "access denied" in low or "access_denied" in low \
            or "accessdenied" in low or " 403" in low:
        if scheme == "s3" and not _aws_credentials_configured():
            return UserInputError(f"{shown}: access denied, and no AWS credentials are configured; set "
                                  "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or ~/.aws/credentials, AWS_PROFILE).")
        return UserInputError(f"{shown}: access denied ({text}); use credentials that may read it, or make it "
                              "readable.")
    if "timed out" in low or "timeout" in low:
        return UserInputError(f"{shown}: the store did not answer in time ({text}); check the address and the "
                              "network, then try again.")
    if "connect" in low or "resolve host" in low or "connection" in low or "refused" in low:
        hint = " (and AWS_ENDPOINT_URL for an S3-compatible store)" if scheme == "s3" else ""
        return UserInputError(f"{shown}: cannot connect ({text}); check the address{hint} and that the server "
                              "is running.")
    return UserInputError(f"{shown}: cannot read it ({text}); check the URL and try again.")


def _aws_credentials_configured() -> bool:
    """Whether the usual places hold AWS credentials (an instance role cannot be told from here)."""
    if os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE") or os.environ.get("AWS_WEB_IDENTITY_TOKEN_FILE"):
        return True
    files = [os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials",
             os.environ.get("AWS_CONFIG_FILE") or "~/.aws/config"]
    return any(Path(f).expanduser().is_file() for f in files)
