"""Errors of the mapping layer: load-time (a file is wrong) and run-time (a record is wrong).

Load-time errors are ``ConfigError``\\ s: they stop start-up and name ``file:line:column``.
Run-time errors are ``MappingError``\\ s (permanent): the record is dead-lettered with every field
that failed, and the rest of its batch goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.errors import ConfigError, MappingError


class TransformError(ValueError):
    """Raised by a transform for a value it cannot accept. The message says why, for a person."""


class TransformArgError(ValueError):
    """Raised at load time when a transform is given arguments it cannot work with."""


@dataclass(frozen=True)
class LoadIssue:
    """One problem found in a mapping (or mapping test) file, with where it is."""

    file: str
    line: int
    column: int
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        text = f"{self.file}:{self.line}:{self.column}: {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text


class MappingFileError(ConfigError):
    """A mapping file failed to load; ``issues`` lists every problem, not just the first."""

    def __init__(self, issues: list[LoadIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


@dataclass(frozen=True)
class FieldError:
    """One field of one record that could not be translated.

    Carries everything an operator needs to fix the record or the mapping without a debugger:
    the entity, the canonical field, the native path (with the array index, if any), the value
    that reached the failing transform, and the transform's name and message.
    """

    entity: str
    field: str
    native_path: str
    value: Any
    transform: str | None
    message: str
    direction: str = "in"

    def __str__(self) -> str:
        where = f"{self.entity}.{self.field} <- {self.native_path}"
        if self.direction == "out":
            where = f"{self.entity}.{self.field} -> {self.native_path}"
        step = f" [{self.transform}]" if self.transform else ""
        return f"{where}{step}: {self.message} (value: {self.value!r:.200})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "entity": self.entity,
            "field": self.field,
            "native_path": self.native_path,
            "value": repr(self.value)[:200],
            "transform": self.transform,
            "message": self.message,
            "direction": self.direction,
        }


class RecordMappingError(MappingError):
    """A record failed to map. ``errors`` lists every failed field; ``partial`` what did map."""

    def __init__(self, errors: list[FieldError], partial: dict[str, Any]) -> None:
        self.errors = errors
        self.partial = partial
        super().__init__("; ".join(str(e) for e in errors))
