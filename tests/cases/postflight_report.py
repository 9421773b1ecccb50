"""Good/bad cases for the RPT checks: report.md exactly as nanochat.report writes it (facts §3)."""

from __future__ import annotations

from preflight.testing import Scenario, bad, good
from tests import factories as F


def _scenario(report_kw=None, report=True):
    def setup(root):
        F.write_run(root / "base", report=False)
        if report:
            F.write_report(root / "base/report/report.md", **(report_kw or {}))

    return Scenario(stage="post", base_dir="base", setup=setup, env={})


@good("report-missing")
@good("report-section-missing")
@good("report-summary-incomplete")
def _full_report():
    return _scenario()


@bad("report-missing")
def _no_report():
    return _scenario(report=False)


@bad("report-section-missing")
def _midtraining_section_missing():
    return _scenario({"skip_sections": ["Midtraining"]})


@bad("report-summary-incomplete")
def _wall_clock_unknown():
    return _scenario({"wall": "unknown"})
