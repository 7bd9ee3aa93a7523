"""A list of findings with one short call per status, so checks read as a list of rules."""

from __future__ import annotations

from ._report import Finding, Status

__all__ = ["Findings"]


class Findings(list[Finding]):
    """The findings of one check, in order."""

    def passed(self, area: str, subject: str, message: str) -> None:
        """Add a PASS line."""
        self.append(Finding(area=area, subject=subject, status=Status.PASS, message=message))

    def info(self, area: str, subject: str, message: str) -> None:
        """Add an INFO line."""
        self.append(Finding(area=area, subject=subject, status=Status.INFO, message=message))

    def warn(self, area: str, subject: str, message: str, fix: str = "") -> None:
        """Add a WARN line with its fix."""
        self.append(
            Finding(area=area, subject=subject, status=Status.WARN, message=message, fix=fix)
        )

    def fail(self, area: str, subject: str, message: str, fix: str = "") -> None:
        """Add a FAIL line with its fix."""
        self.append(
            Finding(area=area, subject=subject, status=Status.FAIL, message=message, fix=fix)
        )

    def add(self, status: Status, area: str, subject: str, message: str, fix: str = "") -> None:
        """Add a line of any status."""
        self.append(Finding(area=area, subject=subject, status=status, message=message, fix=fix))
