"""A decompressed, memory-mapped copy of a named dataset's arrays, tied to its source files.

The first load of a named dataset reads its (gzipped) IDX files once and writes each
array as a ``.npy`` file beside a small ``manifest.json``::

    {"format": 1,
     "arrays": {"train_images": {"file": "train_images-<sha12>.npy", "shape": [60000, 28, 28],
                                 "dtype": "uint8",
                                 "source": {"path": ..., "size": ..., "mtime_ns": ..., "sha256": ...}},
                ...}}

Later loads map those files (``np.load(mmap_mode="c")``) and wrap them with
``torch.from_numpy``: no decompression, no copy, a few milliseconds. A source whose size
or modification time changed is hashed again: the same SHA-256 keeps the copy (the
manifest is refreshed), another one rebuilds it. Every file is written to a temporary
name and renamed into place, the manifest last, so a reader never sees a half-written
copy; a copy that cannot be written (read-only cache, full disk) only costs speed.

Copy-on-write mapping (``"c"``) rather than read-only (``"r"``): the tensors are then
writable as torch expects (no "non-writable array" warning), pages stay shared with the
page cache until someone writes to them, and a write never reaches the cached file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from softreg.errors import UserInputError
from softreg.system.io import atomic_write

__all__ = ["FORMAT", "MANIFEST", "load_arrays", "source_record"]

FORMAT = 1  # bump when the layout of the copy changes; older copies are then rebuilt
MANIFEST = "manifest.json"
_CHUNK = 1 << 20

Reader = Callable[[str, Path], torch.Tensor]
"""``read(role, path)`` returns the array of one source file (already validated)."""


def load_arrays(folder: Path, sources: dict[str, Path], read: Reader) -> dict[str, torch.Tensor]:
    """The arrays of ``sources`` (role -> source file), from the copy in ``folder`` when it is current.

    Roles whose copy is missing or stale are read with ``read`` and written to ``folder``;
    the returned tensors are then mapped from the new files, so at most one array at a
    time is held in memory while the copy is built. When ``folder`` cannot be written,
    the arrays read are returned as they are.
    """
    manifest = _read_manifest(folder)
    entries: dict[str, dict] = manifest.get("arrays", {}) if manifest.get("format") == FORMAT else {}
    arrays: dict[str, torch.Tensor] = {}
    fresh: dict[str, dict] = {}
    for role, path in sources.items():
        entry = entries.get(role)
        try:
            source = _current_source(path, entry.get("source") if entry else None)
        except OSError:  # unreadable or gone: ``read`` says so in its own words
            arrays[role] = read(role, path)
            continue
        tensor = _open(folder, entry, source) if entry else None
        if tensor is None:
            tensor, entry = _build(folder, role, path, source, read)
            if entry is None:  # could not write: serve what was read, keep no record
                arrays[role] = tensor
                continue
        fresh[role], arrays[role] = {**entry, "source": source}, tensor
    if fresh != entries:  # something was built, or a touched source kept its checksum
        _write_manifest(folder, {"format": FORMAT, "arrays": fresh})
    return arrays


def source_record(path: Path, sha256: str | None = None) -> dict:
    """What identifies a source file: resolved path, size, modification time and SHA-256."""
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "sha256": sha256 if sha256 is not None else _sha256(path)}


def _current_source(path: Path, known: dict | None) -> dict:
    """The source's record; hashed again only when its path, size or mtime differ from ``known``."""
    st = path.stat()
    if (known is not None and known.get("path") == str(path.resolve())
            and known.get("size") == st.st_size and known.get("mtime_ns") == st.st_mtime_ns):
        return known
    return source_record(path)


def _open(folder: Path, entry: dict, source: dict) -> torch.Tensor | None:
    """The cached array of ``entry`` mapped into memory, or None when it is stale or damaged."""
    if entry.get("source", {}).get("sha256") != source["sha256"]:
        return None
    try:
        arr = np.load(folder / entry["file"], mmap_mode="c", allow_pickle=False)
    except (OSError, ValueError, KeyError, TypeError):  # missing, truncated or not an .npy file
        return None
    if list(arr.shape) != entry.get("shape") or str(arr.dtype) != entry.get("dtype"):
        return None
    return torch.from_numpy(arr)


def _build(folder: Path, role: str, path: Path, source: dict,
           read: Reader) -> tuple[torch.Tensor, dict | None]:
    """Read one source and write its copy; return the mapped copy and its manifest entry."""
    tensor = read(role, path)
    name = f"{role}-{source['sha256'][:12]}.npy"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(folder / name, lambda f: np.save(f, tensor.numpy(), allow_pickle=False))
    except (OSError, UserInputError):
        return tensor, None
    entry = {"file": name, "shape": list(tensor.shape), "dtype": str(tensor.numpy().dtype), "source": source}
    mapped = _open(folder, entry, source)
    return (mapped if mapped is not None else tensor), entry


def _read_manifest(folder: Path) -> dict:
    try:
        doc = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) and isinstance(doc.get("arrays", {}), dict) else {}


def _write_manifest(folder: Path, doc: dict) -> None:
    text = json.dumps(doc, indent=1, sort_keys=True) + "\n"
    try:
        atomic_write(folder / MANIFEST, lambda f: f.write(text.encode("utf-8")))
    except (OSError, UserInputError):
        return
    _remove_unlisted(folder, {e["file"] for e in doc["arrays"].values()})


def _remove_unlisted(folder: Path, keep: set[str]) -> None:
    """Delete copies no longer listed (stale sources); a process still mapping one keeps its pages."""
    for p in folder.glob("*.npy"):
        if p.name not in keep:
            try:
                p.unlink()
            except OSError:
                pass


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in _chunks(f):
            digest.update(chunk)
    return digest.hexdigest()


def _chunks(f) -> Iterator[bytes]:
    while chunk := f.read(_CHUNK):
        yield chunk
