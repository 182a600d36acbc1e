"""Labels of a table: class names and class indices, computed in Arrow."""

from __future__ import annotations

import numpy as np

from softreg.data.tables.columns import arrow_numpy
from softreg.data.tables.csvfile import is_number
from softreg.errors import UserInputError


def class_names(values: np.ndarray) -> list[str]:
    """Sorted distinct labels; numerically when every label is a number."""
    texts = sorted(set(values.tolist()))
    if all(is_number(t) for t in texts):
        texts.sort(key=float)
    return texts


def label_arrow(column, where: str, first_row: int = 0):
    """An Arrow label column as stripped Arrow text; a missing label is an error."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    text = pc.utf8_trim_whitespace(pc.cast(column, pa.string()))
    empty = pc.or_kleene(pc.is_null(text), pc.equal(text, "")).fill_null(True)
    if pc.any(empty).as_py():
        row = int(np.nonzero(arrow_numpy(empty))[0][0])
        raise UserInputError(f"{where}: data row {first_row + row + 1} has no label; fill it in or drop the row.")
    return text


def classes_and_codes(labels, where: str, classes: list[str] | None = None) -> tuple[list[str], np.ndarray]:
    """Sorted classes (or the given ones) and each row's class index, computed in Arrow."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if classes is None:
        classes = class_names(np.asarray(pc.unique(labels).to_pylist(), dtype=object))
    index = pc.index_in(labels, value_set=pa.array(classes, type=pa.string()))
    if index.null_count:
        unknown = sorted(set(pc.filter(labels, pc.is_null(index)).to_pylist()))
        shown = ", ".join(repr(u) for u in unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        raise UserInputError(f"{where}: label(s) {shown} are not among the model's {len(classes)} classes; "
                             "use data labelled like the training data.")
    return classes, arrow_numpy(index).astype(np.int64)
