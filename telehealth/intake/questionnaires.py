"""The questionnaires (PHQ-9, GAD-7, C-SSRS screener) as data: one definition renders the form, validates
the answers and scores them.

Each questionnaire carries a version so a stored response always names the exact wording it answered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from telehealth.lib.errors import InvalidInput
from telehealth.lib.validation import parse_whole_number


@dataclass(frozen=True)
class AnswerOption:
    value: int
    label: str


@dataclass(frozen=True)
class Item:
    key: str
    text: str
    options: tuple[AnswerOption, ...]
    asked_if_yes: str | None = None  # the instrument's skip logic: asked only after "Yes" to this item

    @property
    def values(self) -> tuple[int, ...]:
        return tuple(option.value for option in self.options)

    def label_for(self, value: int) -> str:
        """The label of the option with `value` (KeyError if there is none)."""
        for option in self.options:
            if option.value == value:
                return option.label
        raise KeyError(f"{self.key} has no option {value}")


@dataclass(frozen=True)
class Band:
    """A severity range of total scores, both ends included."""

    low: int
    high: int
    label: str


@dataclass(frozen=True)
class Questionnaire:
    key: str
    version: str
    title: str
    instructions: str
    items: tuple[Item, ...]
    bands: tuple[Band, ...]

    def validate(self, answers: Mapping[str, object]) -> dict[str, int]:
        """Return the answers as {item key: value}, or raise InvalidInput naming every bad field.

        Every item must be answered with one of its options' values; unknown keys are refused. Values may
        be ints or digit strings (an HTML form sends "2"); booleans are refused as ambiguous.
        """
        known = {item.key: item for item in self.items}
        cleaned: dict[str, int] = {}
        fields: dict[str, str] = {}
        for key in answers:
            if key not in known:
                fields[key] = "is not a question on this form"
        for item in self.items:
            if item.key not in answers or _is_blank(answers[item.key]):
                if item.asked_if_yes is not None and cleaned.get(item.asked_if_yes) != 1:
                    cleaned[item.key] = 0  # skipped as the instrument says: recorded as "No"
                else:
                    fields[item.key] = "Please choose an answer."
                continue
            value = parse_whole_number(answers[item.key])
            if value is None or value not in item.values:
                fields[item.key] = "Please choose one of the answers shown."
                continue
            cleaned[item.key] = value  # an answer given to a skippable question is kept: a "Yes" is never dropped
        if fields:
            raise InvalidInput(f"{self.key}.invalid", f"Some answers to the {self.title} need another look.", fields=fields)
        return cleaned

    def score(self, answers: Mapping[str, int]) -> int:
        """The total score: the sum of the item values (for yes/no items, the number of yes answers).

        Expects answers already passed through `validate`; a missing item is an error, not a zero.
        """
        return sum(answers[item.key] for item in self.items)

    def band(self, score: int) -> Band:
        """The severity band holding `score`; ValueError outside the range or when there are no bands."""
        for band in self.bands:
            if band.low <= score <= band.high:
                return band
        raise ValueError(f"{self.key} has no band for score {score}")


def _is_blank(raw: object) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip())


FREQUENCY_OPTIONS = (
    AnswerOption(0, "Not at all"),
    AnswerOption(1, "Several days"),
    AnswerOption(2, "More than half the days"),
    AnswerOption(3, "Nearly every day"),
)
YES_NO_OPTIONS = (AnswerOption(1, "Yes"), AnswerOption(0, "No"))


def _items(prefix: str, texts: tuple[str, ...], options: tuple[AnswerOption, ...]) -> tuple[Item, ...]:
    return tuple(Item(f"{prefix}_{number}", text, options) for number, text in enumerate(texts, start=1))


PHQ9 = Questionnaire(
    key="phq9",
    version="phq9-v1",
    title="PHQ-9",
    instructions="Over the last 2 weeks, how often have you been bothered by any of the following problems?",
    items=_items(
        "phq9",
        (
            "Little interest or pleasure in doing things",
            "Feeling down, depressed, or hopeless",
            "Trouble falling or staying asleep, or sleeping too much",
            "Feeling tired or having little energy",
            "Poor appetite or overeating",
            "Feeling bad about yourself, or that you are a failure or have let yourself or your family down",
            "Trouble concentrating on things, such as reading the newspaper or watching television",
            "Moving or speaking so slowly that other people could have noticed? Or the opposite, being so "
            "fidgety or restless that you have been moving around a lot more than usual",
            "Thoughts that you would be better off dead or of hurting yourself in some way",
        ),
        FREQUENCY_OPTIONS,
    ),
    bands=(
        Band(0, 4, "minimal"),
        Band(5, 9, "mild"),
        Band(10, 14, "moderate"),
        Band(15, 19, "moderately severe"),
        Band(20, 27, "severe"),
    ),
)

GAD7 = Questionnaire(
    key="gad7",
    version="gad7-v1",
    title="GAD-7",
    instructions="Over the last 2 weeks, how often have you been bothered by the following problems?",
    items=_items(
        "gad7",
        (
            "Feeling nervous, anxious, or on edge",
            "Not being able to stop or control worrying",
            "Worrying too much about different things",
            "Trouble relaxing",
            "Being so restless that it is hard to sit still",
            "Becoming easily annoyed or irritable",
            "Feeling afraid as if something awful might happen",
        ),
        FREQUENCY_OPTIONS,
    ),
    bands=(
        Band(0, 4, "minimal"),
        Band(5, 9, "mild"),
        Band(10, 14, "moderate"),
        Band(15, 21, "severe"),
    ),
)

# The screener's question 6 asks about suicidal behavior ever, then "Was this within the past 3 months?".
# We keep both as items (cssrs_6 and cssrs_6_recent) because recent behavior is what makes it high risk.
# As on the paper form, questions 3-5 are asked only after "Yes" to question 2, and the follow-up only after
# "Yes" to question 6; a skipped item is recorded as "No". The score counts every yes.
CSSRS = Questionnaire(
    key="cssrs",
    version="cssrs-screener-v1",
    title="Suicide risk screen (C-SSRS)",
    instructions="Please answer each question about the past month, unless it asks about another time.",
    items=(
        Item(
            "cssrs_1",
            "Have you wished you were dead or wished you could go to sleep and not wake up?",
            YES_NO_OPTIONS,
        ),
        Item("cssrs_2", "Have you actually had any thoughts of killing yourself?", YES_NO_OPTIONS),
        Item("cssrs_3", "Have you been thinking about how you might do this?", YES_NO_OPTIONS, asked_if_yes="cssrs_2"),
        Item(
            "cssrs_4",
            "Have you had these thoughts and had some intention of acting on them?",
            YES_NO_OPTIONS,
            asked_if_yes="cssrs_2",
        ),
        Item(
            "cssrs_5",
            "Have you started to work out or worked out the details of how to kill yourself? Do you intend to carry out this plan?",
            YES_NO_OPTIONS,
            asked_if_yes="cssrs_2",
        ),
        Item(
            "cssrs_6",
            "Have you ever done anything, started to do anything, or prepared to do anything to end your life? "
            "(For example: collected pills, obtained a gun, gave away valuables, wrote a will or suicide note, "
            "took out pills but didn't swallow any, or actually took pills or tried to hurt yourself.)",
            YES_NO_OPTIONS,
        ),
        Item("cssrs_6_recent", "If yes: was this within the past 3 months?", YES_NO_OPTIONS, asked_if_yes="cssrs_6"),
    ),
    bands=(),
)

QUESTIONNAIRES: dict[str, Questionnaire] = {q.key: q for q in (PHQ9, GAD7, CSSRS)}

# Remission is "below 5" on both scales: the top of the minimal band is 4.
REMISSION_BELOW: dict[str, int] = {"phq9": 5, "gad7": 5}


def response_rate(baseline: int, current: int) -> bool:
    """True when `current` is at least 50% below `baseline` (a treatment response).

    A baseline of 0 cannot drop, so it is never a response.
    """
    if baseline <= 0:
        return False
    # Integer arithmetic: current <= baseline / 2 without float rounding at the edge.
    return current * 2 <= baseline


def in_remission(key: str, score: int) -> bool:
    """True when a PHQ-9 or GAD-7 score is below 5. ValueError for a questionnaire without a remission rule."""
    if key not in REMISSION_BELOW:
        raise ValueError(f"no remission rule for questionnaire {key!r}")
    return score < REMISSION_BELOW[key]
