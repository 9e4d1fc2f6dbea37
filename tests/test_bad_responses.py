"""Bad answers from Matomo: one line naming the problem, exit != 0, no bookmark advanced; odd but valid data loads."""

from __future__ import annotations

from pathlib import Path

import pytest
from matomo_simulator import Fault, MatomoSimulator

from tests.helpers import run_tap

pytestmark = pytest.mark.unit


def _without_action_details(visits: list[dict]) -> list[dict]:
    return [{k: v for k, v in visit.items() if k != "actionDetails"} for visit in visits]


def _non_numeric_id(visits: list[dict]) -> list[dict]:
    return [{**visits[0], "idVisit": "abc"}, *visits[1:]] if visits else visits


def _not_a_list(visits: list[dict]) -> dict:
    return {"value": len(visits)}


@pytest.mark.parametrize(
    ("transform", "expected"),
    [
        (_without_action_details, "has no actionDetails list"),
        (_non_numeric_id, "visit without a numeric idVisit: 'abc'"),
        (_not_a_list, "expected a JSON list, got dict"),
    ],
    ids=["visit-without-actionDetails", "non-numeric-idVisit", "object-instead-of-list"],
)
def test_malformed_visits_stop_the_run_with_a_clear_line(
    simulator: MatomoSimulator, tap_config: dict, tmp_path: Path, transform: object, expected: str
) -> None:
    simulator.inject(Fault("mangle", times=99, transform=transform))
    run = run_tap(tmp_path, {**tap_config, "site_ids": [2]})
    assert run.returncode != 0
    assert any(expected in line for line in run.error_lines()), run.stderr[-2000:]
    assert not run.bookmarks().get(2)


def test_unknown_action_types_are_loaded_as_given(simulator: MatomoSimulator, tap_config: dict, tmp_path: Path) -> None:
    def media(visits: list[dict]) -> list[dict]:
        for visit in visits:
            visit["actionDetails"][0]["type"] = "mediaPlay"
        return visits

    simulator.inject(Fault("mangle", times=99, transform=media))
    run = run_tap(tmp_path, {**tap_config, "site_ids": [1]})
    assert run.returncode == 0, run.stderr[-2000:]
    assert "mediaPlay" in {r["action_type"] for r in run.records()}
    assert {r["action_id"] for r in run.records()} == set(simulator.world.truth(1))


@pytest.mark.parametrize("kind", ["html", "empty"])
def test_html_or_empty_answers_fail_after_retries(
    simulator: MatomoSimulator, tap_config: dict, tmp_path: Path, kind: str
) -> None:
    simulator.inject(Fault(kind, times=99, method=None))
    run = run_tap(tmp_path, {**tap_config, "max_retries": 1})
    assert run.returncode != 0
    assert any("body is not JSON" in line for line in run.error_lines()), run.stderr[-2000:]
    assert run.records() == []
