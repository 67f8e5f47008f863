"""The errors a data-file load raises, and the message format every one of them shares.

A load that fails must say exactly where: ``DataLoadError`` puts the file, the row and the
field in front of the reason, so the CSV reader, the Parquet reader and the row checks all
report problems the same way. ``_FieldError`` is the package-internal half of that: the
per-cell parsers raise it knowing only the value, and the row loop that catches it adds
the file, row and field.
"""

from __future__ import annotations

from pathlib import Path

from node.model.errors import InvalidValueError, OutOfOrderDataError


class DataLoadError(InvalidValueError):
    """A data file cannot be loaded; says which file, row and field, and why.

    ``row`` is None for problems with the file as a whole (unknown extension, wrong
    instrument) and 0 for header problems; ``field`` is None when no single column is at
    fault (a row with the wrong number of fields, for example).
    """

    def __init__(self, file: str | Path, row: int | None, field: str | None, reason: str) -> None:
        self.file = str(file)
        self.row = row
        self.field = field
        self.reason = reason
        where = self.file
        if row == 0:
            where += " header"
        elif row is not None:
            where += f" row {row}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {reason}")


class DataOrderError(DataLoadError, OutOfOrderDataError):
    """A timestamp goes backwards; also an ``OutOfOrderDataError`` for generic handlers."""


class _FieldError(Exception):
    """Internal: a single value is bad; the row loop adds file, row and field."""
