"""The reported-figures file read as a strict CSV table: what cannot be read is an error naming the place.

A file that is missing, a folder, too large, binary, not UTF-8, with broken quoting or a header
missing or repeating a column of :data:`CSV_COLUMNS` raises :class:`ReportedFileError`
(``file:line: column: message``). Rows that can be read but give no figure are not errors here:
:func:`sim.analysis.reported.load_reported` lists them as unusable, with the reason.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sim.scenario.yamlio import InputError, Location, Problem, read_bounded

CSV_COLUMNS = ("date", "entity", "metric", "value", "unit", "source", "quote", "confidence")
#: Largest reported-figures file read, in bytes (the project's file is about 100 kB).
MAX_FILE_BYTES = 20_000_000


class ReportedFileError(InputError, ValueError):
    """A reported-figures file that cannot be read as a table: ``file:line: column: message``.

    Rows that can be read but give no figure are not errors: they go to ``unusable``.
    """


def csv_records(path: Path) -> Iterator[tuple[int, list[str], list[str]]]:
    """The records of a reported-figures file: ``(first line, header, cells)`` of each non-blank record.

    Raises:
        ReportedFileError: when the file cannot be read as a table (see the module's description).
    """
    text = _read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header = _header(reader, path)
    while True:
        line = reader.line_num + 1  # first physical line of the next record
        try:
            cells = next(reader, None)
        except csv.Error as exc:
            where, column, what = _csv_trouble(text) or (reader.line_num, None, "")
            name = (header[column] if column < len(header) else f"column {column + 1}") if column is not None else ""
            raise ReportedFileError(
                Problem(f"not valid CSV: {what + ' (' if what else ''}{exc}{')' if what else ''}", Location(str(path), where), name)
            ) from None
        if cells is None:
            return
        if not any(c.strip() for c in cells):
            continue
        yield line, header, cells


def _read_text(path: Path) -> str:
    """The file's text; a file that is missing, too large, binary or not UTF-8 is an error."""
    name = str(path)
    try:
        raw = read_bounded(path, MAX_FILE_BYTES)  # a regular file (not a FIFO or a device), bounded
    except InputError as exc:
        raise ReportedFileError(exc.problems) from None
    if b"\x00" in raw:
        raise ReportedFileError(Problem("binary data (NUL bytes), not CSV text", Location(name, 1)))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        before = raw[: exc.start].decode("utf-8", errors="replace")
        header = next(csv.reader(io.StringIO(before, newline="")), [])
        column = _column_at_end(before)
        field = header[column] if line > 1 and column < len(header) else ""
        raise ReportedFileError(Problem("not UTF-8 text", Location(name, line), field)) from None
    if not text.strip():
        raise ReportedFileError(
            Problem(f"file is empty; expected a header line with the columns {', '.join(CSV_COLUMNS)}", Location(name, 1))
        )
    return text


def _header(reader: Any, path: Path) -> list[str]:
    """The header line: every column of :data:`CSV_COLUMNS`, none twice."""
    try:
        header = next(reader, None) or []
    except csv.Error as exc:
        raise ReportedFileError(Problem(f"not valid CSV: {exc}", Location(str(path), 1))) from None
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing:
        raise ReportedFileError(Problem(f"missing column(s) {', '.join(missing)}", Location(str(path), 1)))
    twice = sorted({c for c in header if c in CSV_COLUMNS and header.count(c) > 1})
    if twice:
        raise ReportedFileError(
            [Problem(f"column appears {header.count(c)} times in the header", Location(str(path), 1), c) for c in twice]
        )
    return header


def _csv_trouble(text: str) -> tuple[int, int, str] | None:
    """Line, column index and kind of the first broken quoting or overlong field in CSV ``text``, or None.

    A quoted field must end with a quote followed by a separator or the end of the line; a
    field may not be longer than ``csv.field_size_limit()`` (an unclosed quote usually runs
    to the end of the file).
    """
    limit = csv.field_size_limit()
    line, column, length = 1, 0, 0
    quoted = closed = False
    start_line = 1
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if quoted:
            if ch == '"':
                if i + 1 < n and text[i + 1] == '"':
                    i += 1
                else:
                    quoted, closed = False, True
            else:
                length += 1
                line += ch == "\n"
        elif closed and ch not in ",\r\n":
            return line, column, "text after a closing quote"
        elif ch == ",":
            column, length, closed = column + 1, 0, False
        elif ch == "\n":
            line, column, length, closed = line + 1, 0, 0, False
        elif ch == '"' and length == 0 and not closed:
            quoted, start_line = True, line
        elif ch != "\r":
            length += 1
        if length > limit:
            return (start_line if quoted else line), column, f"a field longer than {limit:,} characters"
        i += 1
    return (start_line, column, "a quoted field is never closed") if quoted else None


def _column_at_end(text: str) -> int:
    """Index of the CSV column that ``text`` (a file's beginning) ends in."""
    column, quoted = 0, False
    for ch in text:
        if ch == '"':
            quoted = not quoted  # a doubled quote toggles twice
        elif not quoted and ch == ",":
            column += 1
        elif not quoted and ch == "\n":
            column = 0
    return column

