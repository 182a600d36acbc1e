"""Named IDX datasets (MNIST, Fashion-MNIST, KMNIST), their cache and IDX folders.

``load_idx_dataset("fashion-mnist")`` looks for the four IDX files in the cache
folder, then in the system folders of :data:`SYSTEM_DATA_DIRS`, then downloads
them (mirrors tried in order, MD5 checked, files renamed into the cache only
once complete). ``load_idx_dataset("path/to/folder")`` reads IDX files from a
folder of your own.

The cache folder is, first match wins: the ``data_dir`` argument, the
``SOFTREG_DATA`` environment variable, ``$XDG_CACHE_HOME/softreg``,
``~/.cache/softreg``. A dataset's files live in ``<cache>/<name>/``; the first load of a
named dataset also writes a decompressed, memory-mapped copy of its arrays in
``<cache>/arrays/<name>/`` (see :mod:`softreg.data.idx.cache`) that later loads map in milliseconds.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Union

import torch

from softreg.data.base import Dataset, Split
from softreg.data.idx.files import read_idx
from softreg.errors import UserInputError
from softreg.settings import spell
from softreg.system.io import atomic_write
from softreg.system.limits import read_at_most

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "IDX_FILES",
    "arrays_dir",
    "SYSTEM_DATA_DIRS",
    "cache_dir",
    "dataset_status",
    "find_idx_files",
    "load_idx_dataset",
]

ProgressCallback = Callable[[str, int, Union[int, None]], None]
"""Called as ``progress(url, bytes_done, bytes_total_or_None)`` while downloading."""

DOWNLOAD_TIMEOUT = 30.0  # seconds, per connection attempt / read
_CHUNK = 1 << 16
MAX_IMPLICIT_CLASSES = 10_000  # labels above this without a classes.txt are taken as corrupt
MAX_CLASSES = 1_000_000  # names in classes.txt (the run folder's schema has the same limit)
MAX_CLASS_NAME = 1000  # characters in one class name
MAX_CLASSES_TXT_BYTES = 64 << 20

# The four files of a dataset, by role, with their standard (gzipped) names.
IDX_FILES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}


@dataclass
class DatasetInfo:
    """A dataset softreg knows how to fetch: class names, mirrors and file MD5s."""

    name: str
    title: str
    classes: list[str]
    mirrors: list[str]
    md5: dict[str, str]  # standard .gz file name -> MD5 of the published file
    homepage: str = ""


# MD5s of the published .gz files, as listed by torchvision
# (torchvision/datasets/mnist.py: MNIST, FashionMNIST, KMNIST resources).
DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        name="mnist",
        title="MNIST handwritten digits",
        classes=[str(i) for i in range(10)],
        mirrors=[
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ],
        md5={
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
        homepage="http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": DatasetInfo(
        name="fashion-mnist",
        title="Fashion-MNIST (Zalando article images)",
        classes=[
            "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
            "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
        ],
        mirrors=["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
        md5={
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        homepage="https://github.com/zalandoresearch/fashion-mnist",
    ),
    "kmnist": DatasetInfo(
        name="kmnist",
        title="Kuzushiji-MNIST (cursive Japanese hiragana)",
        classes=["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"],
        mirrors=["http://codh.rois.ac.jp/kmnist/dataset/kmnist/"],
        md5={
            "train-images-idx3-ubyte.gz": "bdb82020997e1d708af4cf47b453dcf7",
            "train-labels-idx1-ubyte.gz": "e144d726b3acfaa3e44228e80efcd344",
            "t10k-images-idx3-ubyte.gz": "5c965bf0a639b31b8f53240b1b52f4d7",
            "t10k-labels-idx1-ubyte.gz": "7320c461ea6c1c855c0b718fb2a4b134",
        },
        homepage="https://github.com/rois-codh/kmnist",
    ),
}

# Read-only folders where a distribution may have installed a dataset, searched
# after the cache and before downloading. Files found here are not MD5-checked
# (Debian, for one, recompresses them), only parsed.
SYSTEM_DATA_DIRS: dict[str, list[Path]] = {
    "fashion-mnist": [Path("/usr/share/datasets/fashion-mnist")],
}


# --------------------------------------------------------------------------- paths


def cache_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The cache root: ``data_dir``, else ``$SOFTREG_DATA``, else the per-user cache."""
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser()
    env = os.environ.get("SOFTREG_DATA")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "softreg"


def arrays_dir(name: str, data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where the decompressed, memory-mappable copy of a named dataset lives (see softreg.data.idx.cache)."""
    return cache_dir(data_dir) / "arrays" / name


def _lookup(name: str) -> DatasetInfo | None:
    from softreg.data.names import canonical

    known = canonical(name)
    return DATASETS.get(known) if known is not None else None


def _candidate_names(role: str) -> list[str]:
    """File names accepted for one role, in order of preference."""
    split, kind = role.split("_")
    prefixes = ["train"] if split == "train" else ["t10k", "test"]
    idx = "idx3" if kind == "images" else "idx1"
    names = []
    for prefix in prefixes:
        for sep in ("-", "."):
            stem = f"{prefix}-{kind}{sep}{idx}-ubyte"
            names += [stem, stem + ".gz"]
    return names


def find_idx_files(folder: str | os.PathLike[str]) -> dict[str, Path | None]:
    """Locate the four IDX files of a folder by their standard names.

    Returns a dict with keys ``train_images``, ``train_labels``, ``test_images``
    and ``test_labels``; a value is None when no file of that role exists.
    Accepted names: ``train-images-idx3-ubyte`` and ``train-images.idx3-ubyte``
    (likewise ``-labels-idx1-``), ``t10k-`` or ``test-`` for the test split,
    each optionally followed by ``.gz``.
    """
    folder = Path(folder)
    found: dict[str, Path | None] = {}
    for role in IDX_FILES:
        found[role] = None
        for name in _candidate_names(role):
            p = folder / name
            if p.is_file():
                found[role] = p
                break
    return found


def _complete(found: dict[str, Path | None]) -> bool:
    return all(p is not None for p in found.values())


def _local_folders(info: DatasetInfo, data_dir) -> list[Path]:
    return [cache_dir(data_dir) / info.name, *SYSTEM_DATA_DIRS.get(info.name, [])]


def _find_local(info: DatasetInfo, data_dir) -> Path | None:
    for folder in _local_folders(info, data_dir):
        if folder.is_dir() and _complete(find_idx_files(folder)):
            return folder
    return None


# ----------------------------------------------------------------------- download


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        text = f"HTTP {exc.code} {exc.reason}"
    elif isinstance(exc, urllib.error.URLError):
        text = str(exc.reason)
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def _print_progress(url: str, done: int, total: int | None) -> None:
    if total:
        sys.stderr.write(f"\rdownloading {url}: {done * 100 // total:3d}% of {total / 1e6:.1f} MB")
    else:
        sys.stderr.write(f"\rdownloading {url}: {done / 1e6:.1f} MB")
    if total is not None and done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def _fetch(url: str, folder: Path, target: str, md5: str | None, progress) -> None:
    """Download ``url`` into ``folder/target``; raise ``OSError``/``ValueError`` on failure.

    The data is streamed through :func:`softreg.system.io.atomic_write`: ``target`` appears
    only once complete and (when ``md5`` is given) verified; a failed download leaves
    nothing. A failure to write (disk full) raises UserInputError instead.
    """

    def download(out) -> None:
        digest = hashlib.md5()
        req = urllib.request.Request(url, headers={"User-Agent": "softreg"})
        with urllib.request.urlopen(req, timeout=DOWNLOAD_TIMEOUT) as resp:
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            done = 0
            if progress:
                progress(url, 0, total)
            while True:
                chunk = resp.read(_CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress:
                    progress(url, done, total)
            if total is not None and done != total:
                raise ValueError(f"got {done} of {total} bytes")
        got = digest.hexdigest()
        if md5 is not None and got != md5.lower():
            raise ValueError(f"MD5 mismatch (got {got}, expected {md5})")

    atomic_write(folder / target, download, fix="free disk space or set SOFTREG_DATA to another folder")


def _download(info: DatasetInfo, folder: Path, progress) -> None:
    """Fetch every file missing from ``folder``; raise UserInputError when one cannot be had."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserInputError(
            f"cannot create the data folder {folder} ({exc.strerror or exc}); set SOFTREG_DATA "
            "or pass a data folder that you can write to."
        ) from None
    if not os.access(folder, os.W_OK):
        raise UserInputError(
            f"cannot download {info.name}: the data folder {folder} is not writable; set "
            "SOFTREG_DATA or pass a data folder that you can write to."
        )
    if progress is True:
        progress = _print_progress
    elif not callable(progress):
        progress = None
    present = find_idx_files(folder)
    for role, filename in IDX_FILES.items():
        if present[role] is not None:
            continue
        failures = []
        for mirror in info.mirrors:
            url = mirror if mirror.endswith("/") else mirror + "/"
            url += filename
            try:
                _fetch(url, folder, filename, info.md5.get(filename), progress)
                break
            except UserInputError:  # the cache cannot be written: no mirror will help
                raise
            except (OSError, ValueError, http.client.HTTPException) as exc:
                failures.append(f"{url}: {_one_line(exc)}")
        else:
            reason = "; ".join(failures) if failures else "no mirror is configured"
            raise UserInputError(
                f"could not download {info.name} (no network?): {reason}; put the IDX files "
                f"in {folder} or pass {spell('data', 'PATH')} to a folder holding them."
            )


# -------------------------------------------------------------------------- loading


def _read_classes_txt(path: Path) -> list[str]:
    try:
        with open(path, "rb") as f:
            raw = read_at_most(f, MAX_CLASSES_TXT_BYTES)
        if raw is None:
            raise UserInputError(
                f"{path} is larger than {MAX_CLASSES_TXT_BYTES >> 20} MB; give one class name per line "
                f"(at most {MAX_CLASSES} names)."
            )
        text = raw.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserInputError(
            f"cannot read {path} ({_one_line(exc)}); make it a readable UTF-8 text file "
            "with one class name per line."
        ) from None
    names = [line.strip() for line in text.splitlines() if line.strip()]
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise UserInputError(
                f"{path} lists class {n!r} twice; give each class name once, one per line."
            )
        seen.add(n)
    if not names:
        raise UserInputError(f"{path} is empty; write one class name per line, in label order.")
    if len(names) > MAX_CLASSES:
        raise UserInputError(
            f"{path} lists {len(names)} classes, more than the {MAX_CLASSES} softreg supports; "
            "give one name per class actually used."
        )
    too_long = next((n for n in names if len(n) > MAX_CLASS_NAME), None)
    if too_long is not None:
        raise UserInputError(
            f"{path} has a class name of {len(too_long)} characters ({too_long[:20]}...); "
            f"names are limited to {MAX_CLASS_NAME}: shorten it."
        )
    return names


def _read_images(path: Path) -> torch.Tensor:
    x = read_idx(path)
    if x.dtype != torch.uint8:
        raise UserInputError(
            f"{path} holds {str(x.dtype).replace('torch.', '')} values; image files must hold "
            "uint8 pixels (IDX type 0x08), convert them to 0..255 bytes first."
        )
    if x.dim() != 3:
        raise UserInputError(
            f"{path} has shape {tuple(x.shape)}; an image file must have 3 dimensions "
            "(count, height, width), like train-images-idx3-ubyte."
        )
    if x.shape[1] == 0 or x.shape[2] == 0:
        raise UserInputError(
            f"{path} holds images of {x.shape[1]}x{x.shape[2]} pixels; images need at least one "
            "pixel in each direction: check the file's header."
        )
    return x


def _read_labels(path: Path) -> torch.Tensor:
    y = read_idx(path)
    if y.is_floating_point():
        raise UserInputError(
            f"{path} holds floating-point values; a label file must hold integer class "
            "indices, like train-labels-idx1-ubyte."
        )
    if y.dim() != 1:
        raise UserInputError(
            f"{path} has shape {tuple(y.shape)}; a label file must have 1 dimension (count), "
            "like train-labels-idx1-ubyte."
        )
    return y.to(torch.int64)


def _read_role(role: str, path: Path) -> torch.Tensor:
    return _read_images(path) if role.endswith("_images") else _read_labels(path)


def _read_arrays(files: dict[str, Path], cache: Path | None) -> dict[str, torch.Tensor]:
    """Each role's array: through the memory-mapped copy in ``cache``, or read directly when None."""
    if cache is None:
        return {role: _read_role(role, path) for role, path in files.items()}
    from softreg.data.idx.cache import load_arrays

    return load_arrays(cache, files, _read_role)


def _load_folder(
    folder: Path, name: str, classes: list[str] | None, source: str, cache: Path | None = None
) -> Dataset:
    found = find_idx_files(folder)
    for role in ("train_images", "train_labels"):
        if found[role] is None:
            wanted = _candidate_names(role)[0]
            raise UserInputError(
                f"no {role.replace('_', ' ')} in {folder} (looked for {wanted}[.gz] and "
                "its spelling variants); put the IDX files there or point to the folder "
                "that holds them."
            )
    has_ti, has_tl = found["test_images"] is not None, found["test_labels"] is not None
    if has_ti != has_tl:
        have, missing = ("images", "labels") if has_ti else ("labels", "images")
        raise UserInputError(
            f"{folder} has test {have} ({found['test_' + have].name}) but no test "
            f"{missing} (t10k-{missing}-idx{'3' if missing == 'images' else '1'}-ubyte[.gz]); "
            "add the missing file or remove the other one."
        )
    arrays = _read_arrays({role: p for role, p in found.items() if p is not None}, cache)
    train = Split(arrays["train_images"], arrays["train_labels"])
    test = Split(arrays["test_images"], arrays["test_labels"]) if has_ti else None

    if classes is None:
        classes_txt = folder / "classes.txt"
        if classes_txt.is_file():
            classes = _read_classes_txt(classes_txt)
        else:
            hi = -1
            for split in (train, test):
                if split is not None and split.y.numel() > 0:
                    hi = max(hi, int(split.y.max()))
            if hi >= MAX_IMPLICIT_CLASSES:
                raise UserInputError(
                    f"{folder}: the largest label is {hi}, too many classes to number them "
                    f"0..{hi}; check the label files, or add a classes.txt (one name per line)."
                )
            classes = [str(i) for i in range(hi + 1)]
    dataset = Dataset(
        name=name,
        train=train,
        test=test,
        classes=list(classes),
        image_shape=tuple(int(d) for d in train.X.shape[1:]),
        pixel_max=255.0,
        origin=source,
    )
    return dataset.validate()


def load_idx_dataset(
    name_or_path: str | os.PathLike[str],
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    progress: bool | ProgressCallback = False,
) -> Dataset:
    """Load a named dataset (``mnist``, ``fashion-mnist``, ``kmnist``) or an IDX folder.

    For a name: use ``<cache>/<name>/`` when it holds the four files, else a
    system folder from :data:`SYSTEM_DATA_DIRS`, else (with ``download=True``)
    download the missing files into the cache. For a folder: read its IDX files
    (see :func:`find_idx_files`); the test split is None when the folder has
    no test files; class names come from ``classes.txt`` (one per line) or are
    ``"0".."N-1"``. ``progress`` is True (print to stderr) or a callable
    ``progress(url, bytes_done, bytes_total_or_None)``.

    Images are uint8 tensors of shape (n, height, width), labels int64.
    """
    info = _lookup(str(name_or_path)) if isinstance(name_or_path, str) else None
    if info is not None:
        folder = _find_local(info, data_dir)
        if folder is None:
            target = cache_dir(data_dir) / info.name
            if not download:
                looked = ", ".join(str(p) for p in _local_folders(info, data_dir))
                raise UserInputError(
                    f"{info.name} is not available locally (looked in {looked}) and downloading "
                    f"is off; put the IDX files in {target} or allow downloading."
                )
            _download(info, target, progress)
            folder = target
        return _load_folder(folder, info.name, list(info.classes), str(folder),
                            cache=arrays_dir(info.name, data_dir))

    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return _load_folder(path, path.resolve().name or str(path), None, str(path))
    if path.exists():
        raise UserInputError(
            f"{path} is a file; give the folder that holds the IDX files "
            "(train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], ...)."
        )
    names = ", ".join(DATASETS)
    raise UserInputError(
        f"unknown dataset {str(name_or_path)!r}: it is neither a known name ({names}) nor an "
        "existing folder; give one of those names or a folder holding IDX files."
    )


def dataset_status(data_dir: str | os.PathLike[str] | None = None) -> list[dict]:
    """Describe each named dataset and where it would be loaded from.

    Each dict has ``name``, ``title``, ``classes`` (count), ``available``
    (whether all four files are present locally), ``path`` (the local folder,
    or None) and ``location`` (the folder, or ``"download from <first mirror>"``).
    """
    rows = []
    for info in DATASETS.values():
        folder = _find_local(info, data_dir)
        if folder is not None:
            location = str(folder)
        elif info.mirrors:
            location = f"download from {info.mirrors[0]}"
        else:
            location = "not available (no mirror)"
        rows.append(
            {
                "name": info.name,
                "title": info.title,
                "classes": len(info.classes),
                "available": folder is not None,
                "path": str(folder) if folder is not None else None,
                "location": location,
            }
        )
    return rows


def idx_location(name_or_path: str, data_dir=None, download: bool = True, progress=False) -> tuple[Path, str, list[str] | None]:
    """(folder, dataset name, class names or None) of a named dataset or an IDX folder, without
    reading the images (streaming reads them itself); a named dataset is downloaded if missing."""
    info = _lookup(str(name_or_path))
    if info is not None:
        folder = _find_local(info, data_dir)
        if folder is None:
            if not download:
                raise UserInputError(f"{info.name} is not available locally; put the IDX files in "
                                     f"{cache_dir(data_dir) / info.name} or allow downloading.")
            folder = cache_dir(data_dir) / info.name
            _download(info, folder, progress)
        return folder, info.name, list(info.classes)
    path = Path(name_or_path).expanduser()
    if not path.is_dir():
        raise UserInputError(f"{path}: not an IDX folder or a known dataset name; give one of "
                             f"{', '.join(DATASETS)} or a folder of IDX files.")
    classes_txt = path / "classes.txt"
    return path, path.resolve().name or str(path), _read_classes_txt(classes_txt) if classes_txt.is_file() else None
