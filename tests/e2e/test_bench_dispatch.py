"""The dispatch benchmark itself runs: runner processes take a small job to its
end, on the suite's database (SQLite, or PostgreSQL when the suite names one).

A smoke check, not a timing: the figures are the benchmark's to print."""

from __future__ import annotations

from bench.dispatch import measure, median_of
from tests.conftest import POSTGRES_URL


def test_the_dispatch_benchmark_takes_a_job_to_its_end_with_one_runner_and_with_three() -> None:
    for runners in (1, 3):
        figures = median_of(1, lambda runners=runners: measure(POSTGRES_URL or None, 30, runners))
        assert figures.runs_per_second > 0
        assert figures.cpu_ms_per_run > 0 and figures.runner_cpu_ms_per_run > 0
