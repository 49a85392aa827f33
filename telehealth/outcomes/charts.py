"""Score charts as SVG drawn on the server (no script, no third-party asset): severity bands behind, the
baseline, the response line (half the baseline) and the remission line, then the scores in time order.
Pure: points in, markup out; every text is escaped. The page puts a table of the same numbers beside it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

from telehealth.intake.questionnaires import REMISSION_BELOW, Questionnaire

WIDTH, HEIGHT = 560, 240
LEFT, RIGHT, TOP, BOTTOM = 44, 16, 16, 36
LABEL_STEP = (
    24  # between label baselines: an 11 px label's box measured up to 20 units tall in Chromium (DejaVu Sans, scaled down on a phone)
)
BAND_FILLS = ("#eef6f1", "#f6f3e6", "#f8ebe0", "#f6e1e1", "#f1dada")


@dataclass(frozen=True)
class Point:
    at: datetime
    score: int


def _y(score: float, top_score: int) -> float:
    return TOP + (HEIGHT - TOP - BOTTOM) * (1 - score / top_score)


def _x(index: int, count: int) -> float:
    inner = WIDTH - LEFT - RIGHT
    return LEFT + (inner / 2 if count == 1 else inner * index / (count - 1))


def score_chart(questionnaire: Questionnaire, points: list[Point], *, zone: str, chart_id: str) -> str:
    """An accessible SVG (role img, a title and a description saying the same as the chart)."""
    top_score = questionnaire.bands[-1].high
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" class="chart" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc">',
        f'<title id="{chart_id}-title">{escape(questionnaire.title)} scores over time</title>',
        f'<desc id="{chart_id}-desc">{escape(describe(questionnaire, points))}</desc>',
    ]
    for index, band in enumerate(questionnaire.bands):
        y_top, y_bottom = _y(band.high + 0.5 if band.high < top_score else top_score, top_score), _y(max(band.low - 0.5, 0), top_score)
        parts.append(
            f'<rect x="{LEFT}" y="{y_top:.1f}" width="{WIDTH - LEFT - RIGHT}" height="{y_bottom - y_top:.1f}" '
            f'fill="{BAND_FILLS[index % 5]}"/>'
        )
        parts.append(f'<text x="{WIDTH - RIGHT - 4}" y="{y_top + 12:.1f}" text-anchor="end" class="band">{escape(band.label)}</text>')
    for tick in range(0, top_score + 1, 5 if top_score > 15 else 3):
        parts.append(f'<text x="{LEFT - 6}" y="{_y(tick, top_score) + 4:.1f}" text-anchor="end" class="tick">{tick}</text>')
    if points:
        baseline = points[0].score
        lines: list[tuple[str, float, str]] = [("baseline", baseline, f"baseline {baseline}")]
        if len(points) > 1 or baseline:
            lines.append(("response", baseline / 2, "response: half the baseline"))
        if questionnaire.key in REMISSION_BELOW:
            lines.append(("remission", REMISSION_BELOW[questionnaire.key] - 0.5, f"remission: below {REMISSION_BELOW[questionnaire.key]}"))
        ys = [_y(score, top_score) for _, score, _ in lines]
        for (kind, _, label), y, label_y in zip(lines, ys, label_positions(ys), strict=True):
            parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="line-{kind}"/>')
            parts.append(f'<text x="{LEFT + 4}" y="{label_y:.1f}" class="line-label label-{kind}">{escape(label)}</text>')
        coords = [(_x(i, len(points)), _y(p.score, top_score)) for i, p in enumerate(points)]
        if len(coords) > 1:
            parts.append('<polyline class="scores" fill="none" points="' + " ".join(f"{x:.1f},{y:.1f}" for x, y in coords) + '"/>')
        for index, ((x, y), point) in enumerate(zip(coords, points, strict=True)):
            # The first and last dates sit at the plot's edges: anchored inward so they are not cut off.
            anchor = "middle" if len(coords) == 1 or 0 < index < len(coords) - 1 else ("start" if index == 0 else "end")
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" class="score-dot"><title>{point.score} on {_day(point.at, zone)}</title></circle>'
            )
            parts.append(f'<text x="{x:.1f}" y="{HEIGHT - 12}" text-anchor="{anchor}" class="tick">{escape(_day(point.at, zone))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def label_positions(line_ys: list[float]) -> list[float]:
    """Baselines for the labels of horizontal lines at `line_ys`: each just above its line, moved apart so no
    two overlap (the response and remission lines can fall on the same score), and kept inside the plot."""
    order = sorted(range(len(line_ys)), key=lambda i: line_ys[i])
    placed: dict[int, float] = {}
    previous = None
    for index in order:
        wanted = max(line_ys[index] - 4, TOP + 11)  # a line at the very top gets its label just below it
        placed[index] = wanted if previous is None else max(wanted, previous + LABEL_STEP)
        previous = placed[index]
    overflow = max(placed.values(), default=0.0) - (HEIGHT - BOTTOM - 2)
    room_above = min(placed.values(), default=0.0) - (TOP + 11)  # the top label's baseline keeps its 11 px text inside
    shift = max(0.0, min(overflow, room_above))
    return [placed[i] - shift for i in range(len(line_ys))]


def _day(moment: datetime, zone: str) -> str:
    return moment.astimezone(ZoneInfo(zone)).strftime("%d %b")


def describe(questionnaire: Questionnaire, points: list[Point]) -> str:
    if not points:
        return f"No {questionnaire.title} answers yet."
    scores = ", ".join(str(p.score) for p in points)
    return f"{questionnaire.title} totals from first to latest: {scores} (highest possible {questionnaire.bands[-1].high})."
