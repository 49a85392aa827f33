"""The labels of the baseline, response and remission lines never overlap, whatever the scores: the response
line (half the baseline) can fall on the remission line, as it does for a PHQ-9 baseline of 9."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta

import pytest

from telehealth.intake.questionnaires import QUESTIONNAIRES
from telehealth.outcomes.charts import BOTTOM, HEIGHT, LABEL_STEP, TOP, Point, score_chart

START = datetime(2026, 11, 1, tzinfo=UTC)


def _label_baselines(svg: str) -> dict[str, float]:
    return {kind: float(y) for y, kind in re.findall(r'<text x="[\d.]+" y="([\d.]+)" class="line-label label-(\w+)">', svg)}


def test_the_response_and_remission_labels_part_when_their_lines_meet():
    svg = score_chart(QUESTIONNAIRES["phq9"], [Point(START, 9), Point(START + timedelta(days=30), 4)], zone="UTC", chart_id="c")
    lines = dict(re.findall(r'y1="([\d.]+)" y2="[\d.]+" class="line-(\w+)"', svg))
    assert len(set(lines)) == 2  # response (4.5) and remission (below 5) share one height
    labels = _label_baselines(svg)
    assert set(labels) == {"baseline", "response", "remission"}
    assert abs(labels["response"] - labels["remission"]) >= LABEL_STEP


@pytest.mark.parametrize("key", ["phq9", "gad7"])
def test_no_two_line_labels_overlap_for_any_baseline(key):
    top = QUESTIONNAIRES[key].bands[-1].high
    for baseline in range(top + 1):
        svg = score_chart(QUESTIONNAIRES[key], [Point(START, baseline), Point(START + timedelta(days=30), 0)], zone="UTC", chart_id="c")
        ys = sorted(_label_baselines(svg).values())
        assert all(later - earlier >= LABEL_STEP - 0.1 for earlier, later in itertools.pairwise(ys)), (baseline, ys)
        assert ys[0] >= TOP + 10 and ys[-1] <= HEIGHT - BOTTOM, (baseline, ys)  # inside the plot, above the dates
