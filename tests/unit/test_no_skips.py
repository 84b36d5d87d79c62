"""A run of the suite fails when anything in it was skipped, and says what (tests/no_skips.py)."""

from __future__ import annotations

import pytest

from tests.no_skips import NoSkips

SOME_TESTS = '''
import pytest

def test_runs():
    assert True

@pytest.mark.skip(reason="needs a printer")
def test_marked_skip():
    pass

def test_skips_itself():
    pytest.skip("no broker today")

@pytest.mark.xfail(reason="known bug", strict=True)
def test_expected_failure():
    assert False
'''


def test_a_run_with_skipped_tests_fails_and_names_them(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_some=SOME_TESTS)
    result = pytester.runpytest("-p", "no:asyncio", plugins=[NoSkips()])
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, skipped=2, xfailed=1)
    result.stdout.fnmatch_lines(["*skipped, so the run fails*",
                                 "test_some.py::test_marked_skip: Skipped: needs a printer",
                                 "test_some.py::test_skips_itself: Skipped: no broker today"])


def test_a_module_skipped_at_collection_fails_the_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_gone='import pytest\npytest.skip("no data folder", allow_module_level=True)\n',
                        test_here="def test_runs():\n    assert True\n")
    result = pytester.runpytest("-p", "no:asyncio", plugins=[NoSkips()])
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*skipped, so the run fails*", "test_gone.py: Skipped: no data folder"])


def test_a_run_without_skips_passes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_some="def test_runs():\n    assert True\n")
    result = pytester.runpytest("-p", "no:asyncio", plugins=[NoSkips()])
    assert result.ret == pytest.ExitCode.OK
    result.stdout.no_fnmatch_line("*skipped, so the run fails*")


def test_an_empty_parameter_list_fails_under_the_suites_setting(pytester: pytest.Pytester,
                                                               pytestconfig: pytest.Config) -> None:
    setting = pytestconfig.getini("empty_parameter_set_mark")  # this suite's, from pyproject.toml
    pytester.makeini(f"[pytest]\nempty_parameter_set_mark = {setting}\n")
    pytester.makepyfile(test_some="import pytest\n\n@pytest.mark.parametrize('stem', [])\n"
                                  "def test_each(stem):\n    assert stem\n")
    result = pytester.runpytest("-p", "no:asyncio", plugins=[NoSkips()])
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*Empty parameter set in 'test_each'*"])
