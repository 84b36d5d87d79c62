"""A pytest plugin: a run in which any test or module was skipped fails (exit status 1), and the summary names
every skipped one with its reason. The suite has no optional parts: a test that cannot run is a failure, not
something to pass over in silence. Registered by tests/conftest.py."""

from __future__ import annotations

import pytest


class NoSkips:
    """Collects skipped tests (pytest.skip, skip marks, skipped collection) and fails the session when any."""

    def __init__(self) -> None:
        self.skipped: list[str] = []

    def _note(self, report: pytest.CollectReport | pytest.TestReport) -> None:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        self.skipped.append(f"{report.nodeid or report.fspath}: {reason}")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.skipped and not hasattr(report, "wasxfail"):
            self._note(report)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.skipped:
            self._note(report)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.skipped and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.skipped:
            return
        terminalreporter.section("skipped, so the run fails", sep="=", red=True, bold=True)
        for line in self.skipped:
            terminalreporter.line(line, red=True)

