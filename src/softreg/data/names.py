"""The datasets softreg knows by name, and their other spellings (light: no torch)."""

from __future__ import annotations

LESSON_TABLES = ("toy", "toy-binary", "xor")  # the lessons' small tables (their own recipe: lesson-table)
BUILTIN = ("digits", *LESSON_TABLES)  # no file needed
NAMED_IDX = ("mnist", "fashion-mnist", "kmnist")  # IDX files found on disk or downloaded (softreg.data.idx.catalog)
DATASET_NAMES = BUILTIN[:1] + NAMED_IDX + BUILTIN[1:]  # in the order --help lists them
DATASET_ALIASES: dict[str, str] = {
    "fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist", "fmnist": "fashion-mnist",
    "k-mnist": "kmnist", "kuzushiji-mnist": "kmnist",
}


def canonical(name: str) -> str | None:
    """A known dataset's name for ``name`` in any case or spelling, else None."""
    key = name.strip().lower()
    if key in DATASET_NAMES:
        return key
    return DATASET_ALIASES.get(key)
