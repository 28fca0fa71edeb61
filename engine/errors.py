"""Errors the engine raises for bad input: their message is shown to the user as is."""

from __future__ import annotations


class AnomalyDeskError(Exception):
    """Base class: an expected problem whose message the CLI prints and the GUI shows in a dialog."""


class DataError(AnomalyDeskError):
    """A problem with an input file, located by file, row (1-based, as in a spreadsheet with the
    header on row 1) and column where that applies."""

    def __init__(self, message: str, *, file: str | None = None, row: int | None = None,
                 column: str | None = None):
        self.file, self.row, self.column, self.detail = file, row, column, message
        where = []
        if file is not None:
            where.append(str(file))
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column '{column}'")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)

    def __reduce__(self):
        # keeps file/row/column when the error crosses a process boundary (a Dask worker's failure)
        return (_data_error, (self.detail, self.file, self.row, self.column))


def _data_error(message: str, file: str | None, row: int | None, column: str | None) -> DataError:
    return DataError(message, file=file, row=row, column=column)


class BadRowsError(DataError):
    """Rows with a different number of fields than the header. ``bad_rows`` is [(file row, fields found)]:
    the window offers to read the file without them (engine.io.read_csv's ``skip_bad_rows``)."""

    def __init__(self, message: str, *, file: str | None = None, row: int | None = None,
                 bad_rows: list[tuple[int, int]] | None = None, expected: int | None = None):
        super().__init__(message, file=file, row=row)
        self.bad_rows = list(bad_rows or [])
        self.expected = expected

    def __reduce__(self):
        return (BadRowsError, (self.detail,), {"file": self.file, "row": self.row, "bad_rows": self.bad_rows,
                                               "expected": self.expected})

    def __setstate__(self, state):
        self.__dict__.update(state)


class SchemaMismatchError(AnomalyDeskError):
    """Data to score does not fit the schema a model was trained on."""


class ModelFileError(AnomalyDeskError):
    """A model bundle or project file is missing, damaged, or refused as unsafe."""


class NotFittedError(AnomalyDeskError, ValueError):
    """A detector or preprocessor was used before ``fit``."""


class Cancelled(AnomalyDeskError):  # noqa: N818 - reads as "raise Cancelled"
    """A long job stopped because ``should_stop()`` returned true."""


TRAINING_CANCELLED = "training cancelled"  # what every detector's fit says when it stops


def stop_if_asked(should_stop, message: str) -> None:
    """Raise ``Cancelled(message)`` when the caller's ``should_stop()`` (if any) returns true: the one
    check every long job makes between steps."""
    if should_stop is not None and should_stop():
        raise Cancelled(message)
