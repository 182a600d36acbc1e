"""Batch prediction over a table: every row's predicted label and class probabilities, written to
CSV or Parquet as the table is read (bounded memory), through softreg.system.io's atomic write."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from softreg.system import io
from softreg.errors import UserInputError
from softreg.settings import spell

OUT_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def predict_table(run, table: str | Path, out: str | Path, keep: list[str] | None = None) -> tuple[Path, int]:
    """Score every row of ``table`` with the run's model; write ``out``; return (out, rows).

    run : a LoadedRun of a model trained on a table (its schema matches columns by name)
    keep : columns of ``table`` copied into the output beside the predictions
    The output has the kept columns, ``predicted`` and one ``p_<class>`` column per class.
    """
    import pyarrow as pa

    from softreg.data.tables.reader import TableReader

    out = Path(out)
    kind = OUT_FORMATS.get(out.suffix.lower())
    if kind is None:
        raise UserInputError(f"{spell('out', out)}: write predictions to a .csv or .parquet file.")
    schema = run.model.schema
    if schema is None:
        raise UserInputError(f"this model was trained on images, not a table; give an image or {spell('index')}.")
    source = run.source()
    reader = TableReader(table, header=source.header, sep=source.sep)
    where = str(table)
    schema.check_columns(reader.names, where)
    keep = list(keep or [])
    unknown = [c for c in keep if c not in reader.names]
    if unknown:
        raise UserInputError(f"{spell('keep')} names column(s) {', '.join(map(repr, unknown))} that {where} does not have.")
    classes = run.data["classes"]
    feature_columns = [c.name for c in schema.columns]
    columns = list(dict.fromkeys(feature_columns + keep))
    names = keep + ["predicted"] + [f"p_{c}" for c in classes]
    count = {"rows": 0}

    def write(f) -> None:  # streamed into softreg.system.io's temporary file, renamed when complete
        writer = None
        sink = pa.PythonFile(f, mode="w")
        for batch in reader.batches(columns):
            rows = count["rows"]
            X = schema.encode(batch, where=where, first_row=rows)
            if X.dtype.kind == "f" and np.isnan(X).any():
                r, j = np.argwhere(np.isnan(X))[0]
                raise UserInputError(f"{where}: column {schema.feature_names()[j]!r} is missing in data row "
                                     f"{rows + r + 1} and the model has no value to fill it with; fill it in.")
            with torch.no_grad():
                probs = run.model.predict_proba(torch.from_numpy(X)).double().numpy()
            predicted = np.asarray(classes, dtype=object)[probs.argmax(axis=1)]
            arrays = [batch.column(c) for c in keep] + [pa.array(predicted.tolist(), type=pa.string())]
            arrays += [pa.array(probs[:, k]) for k in range(len(classes))]
            part = pa.record_batch(arrays, names=names)
            writer = writer or _writer(kind, sink, part.schema)
            writer.write_batch(part)
            count["rows"] += batch.num_rows
        if writer is None:
            raise UserInputError(f"{where}: the table has no rows to predict.")
        writer.close()

    io.atomic_write(out, write, fix=f"choose another {spell('out')}", what=spell("out", out))
    return out, count["rows"]


def _writer(kind: str, sink, schema):
    if kind == "csv":
        import pyarrow.csv as pcsv

        return pcsv.CSVWriter(sink, schema)
    import pyarrow.parquet as pq

    return pq.ParquetWriter(sink, schema)
