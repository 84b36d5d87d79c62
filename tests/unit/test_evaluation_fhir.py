"""The evaluation as FHIR R4 Measure and MeasureReport: valid resources carrying the synthetic quarter's figures
(hand-computed in test_evaluation_quarter), with suppressed counts left out and marked `masked`."""

from __future__ import annotations

from services.billing_shadow.domain.evaluation import evaluation, suppress
from services.billing_shadow.domain.measures_fhir import MEASURES, measure_reports, measure_resource
from shared.fhir import validate_resource
from tests.unit.test_evaluation_quarter import EXPERIMENT, quarter


def _document(uzovi: str | None = None) -> dict:
    records, entries = quarter()
    return evaluation(["2026-10"], requests=records, entries=entries, effective=entries, experiment=EXPERIMENT,
                      uzovi=uzovi)


def test_every_measure_is_a_valid_r4_measure_with_its_numerator_and_denominator() -> None:
    for m in MEASURES:
        resource = measure_resource(m)
        assert validate_resource(resource) == [], m.id
        codes = {p["code"]["coding"][0]["code"] for p in resource["group"][0]["population"]}
        assert codes == ({"measure-population"} if m.scoring == "continuous-variable" else
                         {"numerator", "denominator"})


def test_one_summary_report_per_measure_and_month_with_the_figures() -> None:
    reports = {r["measure"].rsplit("/", 1)[1]: r for r in measure_reports(_document())}
    assert len(reports) == len(MEASURES) == 8
    for report in reports.values():
        assert validate_resource(report) == [], report["id"]
        assert report["type"] == "summary" and report["period"] == {"start": "2026-10-01", "end": "2026-10-31"}
    inclusion = reports["inclusion-rate"]["group"][0]
    assert [p["count"] for p in inclusion["population"]] == [133, 134]
    assert inclusion["measureScore"]["value"] == 0.9925
    u2 = next(g for g in reports["target-met-share"]["group"] if g["code"]["text"] == "U2")
    assert ([p["count"] for p in u2["population"]], u2["measureScore"]["value"]) == ([15, 31], 0.4839)
    p90 = reports["minutes-to-first-contact"]["group"][1]
    assert (p90["code"]["text"], p90["measureScore"], p90["population"][0]["count"]) == \
        ("p90", {"value": 200.0, "unit": "min", "system": "http://unitsofmeasure.org", "code": "min"}, 129)


def test_suppressed_counts_are_masked_not_given() -> None:
    reports = {r["measure"].rsplit("/", 1)[1]: r for r in measure_reports(suppress(_document("9001")))}
    retriage = reports["retriage-share"]
    assert validate_resource(retriage) == []
    assert retriage["subject"]["identifier"]["value"] == "9001"
    group = retriage["group"][0]
    assert "measureScore" not in group and group["extension"][0]["valueCode"] == "masked"
    numerator, denominator = group["population"]
    assert "count" not in numerator and numerator["extension"][0]["valueCode"] == "masked"
    assert denominator["count"] == 72
