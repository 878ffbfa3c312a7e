"""Collaboration report and award, computed by hand: pairs, change, suggested actions, CSV, HTML."""

from __future__ import annotations

import csv
import io

from services.results.policy import AwardRule
from services.results.report import Cell, build_report, collaboration_awards, render_csv, render_html

NAMES = {"sales": "Sales", "ops": "Operations", "fin": "Finance & <Control>"}


def cell(rater: str, rated: str, r: float, d: float, rel: float, overall: float, n: int = 2, *comments: str) -> Cell:
    return Cell(rater, rated, r, d, rel, overall, n, tuple(comments))


CURRENT = [
    cell("sales", "ops", 4.5, 4.0, 4.5, 4.4),
    cell("ops", "sales", 4.0, 4.2, 4.4, 4.2),
    cell("sales", "fin", 2.0, 3.0, 2.8, 2.5, 2, "Answers are always late", "we wait weeks"),
    cell("fin", "sales", 3.0, 2.2, 3.0, 2.9, 2, "numbers often wrong"),
    cell("ops", "fin", 3.5, 3.5, 3.5, 3.5),
    cell("fin", "ops", 3.5, 3.5, 3.5, 3.5),
]
PREVIOUS = [cell("sales", "ops", 4.0, 4.0, 4.0, 4.0), cell("ops", "sales", 4.0, 4.0, 4.0, 4.0)]


def test_pairs_change_and_suggestions() -> None:
    report = build_report(
        cycle_id="c2", cells=CURRENT, names=NAMES, previous_cycle_id="c1", previous_cells=PREVIOUS, top=1
    )
    # Pairs are undirected, averaged over both directions weighted by ratings.
    assert [(p.department_ids, p.overall) for p in report.strongest] == [(("ops", "sales"), 4.3)]
    weakest = report.weakest[0]
    assert (weakest.department_ids, weakest.overall) == (("fin", "sales"), 2.7)
    assert (weakest.responsiveness, weakest.data_quality, weakest.reliability) == (2.5, 2.6, 2.9)
    suggestion = report.suggestions[0]
    assert suggestion.weakest_dimension == "responsiveness"
    assert "response-time service level between Finance & <Control> and Sales" in suggestion.actions[0]
    assert suggestion.matched_keywords == ["late", "wait", "wrong"]
    assert any("shared queue" in a for a in suggestion.actions)
    assert any("root-cause review" in a for a in suggestion.actions)
    by_pair = {c.department_ids: c for c in report.changes}
    assert (by_pair[("ops", "sales")].previous_overall, by_pair[("ops", "sales")].change) == (4.0, 0.3)
    assert by_pair[("fin", "sales")].change is None  # not rated in the previous cycle


def test_csv_has_one_row_per_directed_cell_with_the_previous_value() -> None:
    report = build_report(cycle_id="c2", cells=CURRENT, names=NAMES, previous_cycle_id="c1", previous_cells=PREVIOUS)
    rows = list(csv.DictReader(io.StringIO(render_csv(report))))
    assert len(rows) == 6
    sales_ops = next(r for r in rows if (r["rater_department_id"], r["rated_department_id"]) == ("sales", "ops"))
    assert (sales_ops["overall"], sales_ops["previous_overall"], sales_ops["change"]) == ("4.4", "4.0", "0.4")
    sales_fin = next(r for r in rows if (r["rater_department_id"], r["rated_department_id"]) == ("sales", "fin"))
    assert sales_fin["comments"] == "Answers are always late | we wait weeks"
    assert sales_fin["rated_department"] == "Finance & <Control>"


def test_html_is_a_self_contained_heatmap_with_escaped_names() -> None:
    page = render_html(build_report(cycle_id="c2", cells=CURRENT, names=NAMES))
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page
    assert "Finance &amp; &lt;Control&gt;" in page and "<Control>" not in page
    assert 'class="heatmap"' in page
    assert "hsl(102, 65%, 78%)" in page  # 4.4 on 1..5 -> 85% of the way to green (120)
    assert "hsl(45, 65%, 78%)" in page  # 2.5 on 1..5 -> 37.5%
    assert "No previous cycle given." in page


def test_best_collaboration_team_with_evidence_and_minimum_raters() -> None:
    goals = {"ops": [("g1", "Cut lead time")], "sales": [("g1", "Cut lead time"), ("g2", "Launch EMEA")]}
    ranking = collaboration_awards(cells=CURRENT, shared_goals=goals, names=NAMES, rule=AwardRule())
    by_id = {c.department_id: c for c in ranking}
    # ops receives 4.4 (sales) and 3.5 (fin): mean 3.95 -> (3.95-1)/4 = 0.7375; goals 1/2.
    assert by_id["ops"].received_mean_overall == 3.95
    assert by_id["ops"].score == round(0.7 * 0.7375 + 0.3 * 0.5, 4)
    # sales receives 4.2 and 2.9: mean 3.55 -> 0.6375; goals 2/2.
    assert by_id["sales"].score == round(0.7 * 0.6375 + 0.3 * 1.0, 4)
    assert ranking[0].department_id == "sales"
    assert "rated 4.20 overall by Operations (2 ratings)" in by_id["sales"].evidence
    assert "contributed to shared goal g2 'Launch EMEA'" in by_id["sales"].evidence

    strict = collaboration_awards(
        cells=CURRENT, shared_goals=goals, names=NAMES, rule=AwardRule(min_rater_departments=3)
    )
    assert not any(c.eligible for c in strict)
    assert "not eligible: rated by 2 department(s), the rule needs 3" in strict[0].evidence
