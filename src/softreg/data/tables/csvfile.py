"""CSV details for the table reader: separator and header detection, and pyarrow's CSV errors
turned into one line naming the row."""

from __future__ import annotations

import csv
import io

from softreg.errors import UserInputError
from softreg.settings import spell
from softreg.system.storage import Location, storage_error

SAMPLE_BYTES = 1 << 20  # read to detect the separator and the header


def csv_error(exc: Exception, path: Location, bad: list, n_columns: int, header: bool, sep: str = ",") -> UserInputError:
    if bad:
        row = bad[0]
        number = row.number if row.number is not None else ragged_row(path, sep, n_columns)
        where = f"row {number}" if number is not None else "a row"
        return UserInputError(f"{path}: {where} has {row.actual_columns} fields but the header has "
                              f"{n_columns}; every row needs one value per column.")
    text = detail(exc)
    if "UTF8" in text or "UTF-8" in text:
        return UserInputError(f"{path}: not a text CSV file; save the table as UTF-8 CSV.")
    if "conversion error" in text and "invalid value" in text:
        value = text.split("invalid value", 1)[1].strip()
        column = column_of(text)
        return UserInputError(f"{path}: column {column} holds {value}, not a number, in a column of numbers; "
                              f"fix the value, or {spell('drop')} the column.")
    if isinstance(exc, OSError) and getattr(path, "remote", False):
        return storage_error(exc, str(path))
    if isinstance(exc, OSError) and not type(exc).__module__.startswith("pyarrow"):
        return UserInputError(f"cannot read {path} ({exc.strerror or text}); fix its permissions or copy it "
                              "somewhere readable.")
    return UserInputError(f"{path}: malformed CSV ({text}); check quoting and delimiters ({spell('sep')}).")


def ragged_row(path: Location, sep: str, n_columns: int) -> int | None:
    """The line number of the first row without ``n_columns`` fields (only called on an error)."""
    try:
        with path.open_stream() as raw:
            lines = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")
            for number, row in enumerate(csv.reader(lines, delimiter=sep), start=1):
                if row and len(row) != n_columns:
                    return number
    except (OSError, csv.Error):
        return None
    return None


def column_of(detail: str) -> str:
    if "column #" in detail:
        return "#" + detail.split("column #", 1)[1].split(":", 1)[0]
    return "?"


def detail(exc: Exception) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def read_sample(path: Location) -> bytes:
    try:
        with path.open_stream() as stream:
            return stream.read(SAMPLE_BYTES)
    except FileNotFoundError:
        raise UserInputError(f"{path}: no such file; check the path.") from None
    except PermissionError:
        raise UserInputError(f"cannot read {path} (Permission denied); fix its permissions or copy it "
                             "somewhere readable.") from None
    except OSError as exc:
        if path.remote:
            raise storage_error(exc, str(path)) from None
        raise UserInputError(f"cannot read {path} ({detail(exc)}); check that the file is complete.") from None


def sniff(lines: list[str]) -> str:
    """The separator among , ; tab | that splits the sample lines into the most equal fields."""
    best, best_score = ",", 0
    for sep in (",", "\t", ";", "|"):
        counts = [len(row) for row in csv.reader(lines[:20], delimiter=sep)]
        if counts and min(counts) > 1 and len(set(counts)) == 1 and counts[0] > best_score:
            best, best_score = sep, counts[0]
    return best


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def looks_like_header(rows: list[list[str]]) -> bool:
    """A first row is a header when some column holds numbers below it but not in it. Otherwise a
    first row with any number in it is data (names are not numbers), and text over text is taken
    as a header (names are more common than tables of text alone)."""
    first, rest = rows[0], rows[1:]
    for j, cell in enumerate(first):
        below = [r[j] for r in rest if j < len(r) and r[j].strip()]
        if below and not is_number(cell) and sum(map(is_number, below)) >= 0.9 * len(below):
            return True
    return not any(is_number(c) for c in first)
