"""Reading a request body within the limit, so that a client over it hears the 413.

A server that answers 413 and closes while the client is still sending makes the client's
kernel see a reset: Python's urllib and requests then raise ConnectionResetError and never read
the answer (curl only escapes because it waits for ``100 Continue`` first). So a body over the
limit is read on and thrown away, up to ``DRAIN_BYTES`` more, before the 413 goes out with
``Connection: close``; a client that asked ``Expect: 100-continue`` is answered at once and sends
nothing. Bodies compressed with gzip or deflate (tritonclient's request compression) are
inflated with the same limit on what they inflate to.
"""

from __future__ import annotations

import zlib

from softreg.serve.errors import RequestError

DRAIN_BYTES = 64 * 1024 * 1024  # past the limit, read (and drop) this much more before answering
ENCODINGS = {"gzip": 31, "x-gzip": 31, "deflate": 15}  # zlib wbits: gzip framing, zlib framing


def _too_large(limit: int, size: int | None = None) -> RequestError:
    got = f"the body has {size} bytes, over" if size is not None else "the body is over"
    return RequestError(413, f"{got} the limit of {limit} bytes; send fewer instances per request (or start "
                             "the server with a larger --max-body-mb).", close=True)


async def _drain(chunks, budget: int) -> None:
    """Read and drop what the client still sends, at most ``budget`` bytes."""
    async for chunk in chunks:
        budget -= len(chunk)
        if budget < 0:
            return


async def read_body(request, limit: int) -> bytes:
    """The request's body (inflated when it says ``Content-Encoding: gzip | deflate``), at most ``limit`` bytes.

    RequestError 413 when over the limit, 400 for a bad Content-Length or compressed data, or a
    client gone before the end of its body; 415 for another encoding.
    """
    from starlette.requests import ClientDisconnect

    try:
        return await _read(request, limit)
    except ClientDisconnect:  # nobody hears the answer; it only keeps the log free of tracebacks
        raise RequestError(400, "the client closed the connection before the end of the body.", close=True) from None


async def _read(request, limit: int) -> bytes:
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ENCODINGS and encoding != "identity":
        raise RequestError(415, f"Content-Encoding {encoding!r} is not supported; send the body as it is, or "
                                "compressed with gzip or deflate.")
    declared = request.headers.get("content-length")
    if declared is not None and not declared.strip().isdigit():
        raise RequestError(400, f"Content-Length {declared!r} is not a number of bytes.", close=True)
    chunks = request.stream()
    if declared is not None and int(declared) > limit:
        expecting = "100-continue" in request.headers.get("expect", "").lower()
        if not expecting and int(declared) - limit <= DRAIN_BYTES:
            await _drain(chunks, DRAIN_BYTES)
        raise _too_large(limit, int(declared))
    parts, size = [], 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            await _drain(chunks, DRAIN_BYTES)
            raise _too_large(limit)
        parts.append(chunk)
    body = b"".join(parts)
    return body if encoding == "identity" else inflate(body, ENCODINGS[encoding], limit)


def inflate(data: bytes, wbits: int, limit: int) -> bytes:
    """``data`` decompressed, refusing more than ``limit`` bytes of output (a small bomb stays small)."""
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(data, limit + 1)
        if len(out) > limit or inflater.unconsumed_tail:
            raise RequestError(413, f"the body inflates to more than the limit of {limit} bytes; send fewer "
                                    "instances per request.")
        out += inflater.flush()
    except zlib.error as exc:
        raise RequestError(400, f"the body is not valid {'gzip' if wbits == 31 else 'deflate'} data ({exc}); "
                                "compress it whole, or send it uncompressed.") from None
    if not inflater.eof:
        raise RequestError(400, "the compressed body ends early; send the whole compressed stream.")
    return out
