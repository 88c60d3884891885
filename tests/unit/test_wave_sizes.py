"""Rollout waves as asked: sizes over a job's hosts, and what is refused (domain.waves)."""

from __future__ import annotations

import pytest

from craton_wf.domain.waves import check_wave_spec, parse_pause, rollout_columns, wave_sizes
from craton_wf.errors import InvalidInput


@pytest.mark.parametrize(
    ("spec", "hosts", "sizes"),
    [
        ([1, "25%", "100%"], 8, [1, 2, 5]),  # 25% of the 7 left, rounded up
        ([1, 5, "25%", "100%"], 100, [1, 5, 24, 70]),
        ([1, "25%", "rest"], 8, [1, 2, 5]),
        ([2], 7, [7]),  # the last entry applies to the rest
        ([1, 2], 10, [1, 9]),
        ([1, 5, "25%"], 2, [1, 1]),  # waves finding no host left are dropped
        (["50%"], 1, [1]),
        (["10%", "100%"], 3, [1, 2]),  # a wave is never empty
        ([3], 0, []),
    ],
)
def test_wave_sizes_cut_the_hosts_in_order(spec, hosts, sizes):  # type: ignore[no-untyped-def]
    assert wave_sizes(check_wave_spec(spec), hosts) == sizes
    assert sum(sizes) == hosts


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ([1, 0], "waves entry 2 (0)"),
        ([-3], "waves entry 1 (-3)"),
        (["0%"], "waves entry 1 ('0%')"),
        (["101%"], "waves entry 1 ('101%')"),
        (["abc"], "waves entry 1 ('abc')"),
        ([1, True], "waves entry 2 (True)"),
        ([1.5], "waves entry 1 (1.5)"),
    ],
)
def test_a_bad_entry_is_named(spec, named):  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput, match=named.replace("(", r"\(").replace(")", r"\)")):
        check_wave_spec(spec)


def test_an_empty_list_is_refused():
    with pytest.raises(InvalidInput, match="non-empty"):
        check_wave_spec([])


@pytest.mark.parametrize(
    ("value", "seconds"), [(None, 0), (30, 30), ("30s", 30), ("10m", 600), ("2h", 7200), ("45", 45)]
)
def test_pauses_read_as_seconds(value, seconds):  # type: ignore[no-untyped-def]
    assert parse_pause(value) == seconds


@pytest.mark.parametrize("value", ["10x", "-1", -5, "m", True, 10**9])
def test_a_bad_pause_is_refused(value):  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput, match="wave_pause"):
        parse_pause(value)


def test_a_pause_or_gate_without_waves_is_refused():
    with pytest.raises(InvalidInput, match="need waves"):
        rollout_columns(None, "10m", None, 3)
    with pytest.raises(InvalidInput, match="wave_gate"):
        rollout_columns([1], None, "later", 3)
    assert rollout_columns(None, None, None, 3) == {}
