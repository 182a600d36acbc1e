"""The memory-mapped copy of named datasets (softreg.data.idx.cache): built once, reused, rebuilt when stale."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from softreg.data.idx import cache
from softreg.data.idx import catalog
from softreg.data.idx.files import read_idx, write_idx
from softreg.errors import UserInputError
from helpers import write_idx_folder

ROLES = ("train_images", "train_labels", "test_images", "test_labels")


@pytest.fixture
def system_fashion(tmp_path, monkeypatch) -> Path:
    """A small Fashion-MNIST-named IDX folder installed as the system folder."""
    folder = write_idx_folder(tmp_path / "system", n_train=30, n_test=9, n_classes=3)
    monkeypatch.setattr(catalog, "SYSTEM_DATA_DIRS", {"fashion-mnist": [folder]})
    return folder


@pytest.fixture
def reads(monkeypatch) -> list[str]:
    """Records each source file the catalog actually parses."""
    seen: list[str] = []
    real = catalog._read_role

    def counting(role, path):
        seen.append(role)
        return real(role, path)

    monkeypatch.setattr(catalog, "_read_role", counting)
    return seen


def direct(folder: Path) -> dict[str, torch.Tensor]:
    """The reference: each file parsed by read_idx, labels widened as the catalog does."""
    files = catalog.find_idx_files(folder)
    return {role: read_idx(p).to(torch.int64) if role.endswith("labels") else read_idx(p)
            for role, p in files.items()}


def as_dict(ds) -> dict[str, torch.Tensor]:
    return {"train_images": ds.train.X, "train_labels": ds.train.y,
            "test_images": ds.test.X, "test_labels": ds.test.y}


def arrays_folder() -> Path:
    return catalog.arrays_dir("fashion-mnist")


def load():
    return catalog.load_idx_dataset("fashion-mnist", download=False)


def assert_same(got: dict, want: dict) -> None:
    for role in ROLES:
        assert got[role].dtype == want[role].dtype, role
        assert torch.equal(got[role], want[role]), role


def test_first_load_writes_the_copy_and_later_loads_read_nothing(system_fashion, reads):
    first = load()
    assert sorted(reads) == sorted(ROLES)
    manifest = json.loads((arrays_folder() / cache.MANIFEST).read_text())
    assert manifest["format"] == cache.FORMAT and sorted(manifest["arrays"]) == sorted(ROLES)
    for role, entry in manifest["arrays"].items():
        src = Path(entry["source"]["path"])
        assert src.parent == system_fashion.resolve()
        assert entry["source"] == cache.source_record(src)
        on_disk = np.load(arrays_folder() / entry["file"])
        assert list(on_disk.shape) == entry["shape"] and str(on_disk.dtype) == entry["dtype"]
    assert_same(as_dict(first), direct(system_fashion))
    assert mapped_file(first.train.X).parent == arrays_folder()  # the parsed copy was let go

    reads.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns on arrays it cannot write to
        second = load()
    assert reads == []
    assert_same(as_dict(second), direct(system_fashion))
    assert not [p for p in arrays_folder().iterdir() if p.name.startswith(".")]  # no temp files


def mapped_file(t: torch.Tensor) -> Path:
    """The file whose mapping holds the tensor's data, from the kernel's list of mappings."""
    maps = Path("/proc/self/maps")
    if not maps.exists():
        pytest.skip("needs /proc/self/maps")
    ptr = t.data_ptr()
    for line in maps.read_text().splitlines():
        fields = line.split(maxsplit=5)
        lo, hi = (int(v, 16) for v in fields[0].split("-"))
        if lo <= ptr < hi:
            return Path(fields[5].strip()) if len(fields) == 6 else Path("")
    raise AssertionError("the tensor's memory is in no mapping")


def test_later_loads_are_memory_mapped_and_writes_stay_private(system_fashion):
    load()
    ds = load()
    assert mapped_file(ds.train.X).name.startswith("train_images-")  # no copy in anonymous memory
    ds.train.X[0] = 7  # copy-on-write: this process only
    again = load()
    assert torch.equal(again.train.X, direct(system_fashion)["train_images"])


def test_a_changed_source_rebuilds_the_copy(system_fashion, reads):
    load()
    target = system_fashion / "train-images-idx3-ubyte.gz"
    new = torch.full((30, 28, 28), 200, dtype=torch.uint8)
    write_idx(target, new)
    old_files = {p.name for p in arrays_folder().glob("*.npy")}
    reads.clear()
    ds = load()
    assert reads == ["train_images"]
    assert torch.equal(ds.train.X, new)
    files = {p.name for p in arrays_folder().glob("*.npy")}
    assert len(files) == 4 and len(old_files - files) == 1  # the stale copy is gone


def test_a_touched_source_with_the_same_checksum_is_not_reread(system_fashion, reads):
    load()
    target = system_fashion / "test-labels-idx1-ubyte.gz"
    target = target if target.exists() else system_fashion / "t10k-labels-idx1-ubyte.gz"
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    reads.clear()
    load()
    assert reads == []
    manifest = json.loads((arrays_folder() / cache.MANIFEST).read_text())
    assert manifest["arrays"]["test_labels"]["source"]["mtime_ns"] == target.stat().st_mtime_ns


@pytest.mark.parametrize("damage", ["truncate", "delete", "manifest", "format", "shape"])
def test_a_damaged_copy_is_rebuilt(system_fashion, reads, damage):
    load()
    folder = arrays_folder()
    manifest_path = folder / cache.MANIFEST
    manifest = json.loads(manifest_path.read_text())
    npy = folder / manifest["arrays"]["train_images"]["file"]
    if damage == "truncate":
        npy.write_bytes(npy.read_bytes()[:1000])
    elif damage == "delete":
        npy.unlink()
    elif damage == "manifest":
        manifest_path.write_text("{not json")
    elif damage == "format":
        manifest_path.write_text(json.dumps({**manifest, "format": cache.FORMAT + 1}))
    else:
        manifest["arrays"]["train_images"]["shape"] = [1, 2, 3]
        manifest_path.write_text(json.dumps(manifest))
    reads.clear()
    ds = load()
    assert "train_images" in reads
    assert_same(as_dict(ds), direct(system_fashion))
    reads.clear()
    load()
    assert reads == []  # and the rebuilt copy is good again


def test_an_unwritable_cache_still_loads(system_fashion, reads):
    blocker = catalog.cache_dir() / "arrays"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("a file where the cache folder should be")
    for _ in range(2):
        reads.clear()
        ds = load()
        assert sorted(reads) == sorted(ROLES)
        assert_same(as_dict(ds), direct(system_fashion))


def test_a_folder_of_ones_own_is_not_copied(tmp_path, reads):
    folder = write_idx_folder(tmp_path / "mine")
    catalog.load_idx_dataset(str(folder))
    catalog.load_idx_dataset(str(folder))
    assert len(reads) == 8  # parsed both times
    assert not (catalog.cache_dir() / "arrays").exists()


def test_a_new_source_folder_rebuilds(system_fashion, reads, tmp_path):
    load()
    # the same dataset now also in the user's cache, which wins over the system folder
    write_idx_folder(catalog.cache_dir() / "fashion-mnist", n_train=12, n_test=None, n_classes=3)
    (catalog.cache_dir() / "fashion-mnist" / "t10k-images-idx3-ubyte.gz").write_bytes(
        (system_fashion / "t10k-images-idx3-ubyte.gz").read_bytes())
    (catalog.cache_dir() / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").write_bytes(
        (system_fashion / "t10k-labels-idx1-ubyte.gz").read_bytes())
    reads.clear()
    ds = load()
    assert sorted(reads) == ["train_images", "train_labels"]  # the test files kept their checksums
    assert len(ds.train) == 12
    assert_same(as_dict(ds), direct(catalog.cache_dir() / "fashion-mnist"))


def test_a_source_that_cannot_be_hashed_is_read_directly(system_fashion, reads, monkeypatch):
    def refuse(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(cache, "_sha256", refuse)
    ds = load()
    assert sorted(reads) == sorted(ROLES)
    assert_same(as_dict(ds), direct(system_fashion))


def test_a_vanished_source_is_the_readers_error(system_fashion, monkeypatch):
    load()
    (system_fashion / "train-labels-idx1-ubyte.gz").unlink()
    monkeypatch.setattr(catalog, "find_idx_files", lambda folder: {
        "train_images": system_fashion / "train-images-idx3-ubyte.gz",
        "train_labels": system_fashion / "train-labels-idx1-ubyte.gz",
        "test_images": system_fashion / "t10k-images-idx3-ubyte.gz",
        "test_labels": system_fashion / "t10k-labels-idx1-ubyte.gz"})
    with pytest.raises(UserInputError, match="not found"):
        catalog._load_folder(system_fashion, "fashion-mnist", ["a", "b", "c"], "x", cache=arrays_folder())
