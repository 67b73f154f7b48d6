"""The one domain error a command's field can raise, so the shell can name the field."""

from __future__ import annotations


class InvalidField(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
