"""Questionnaires as data: item sets, scoring, severity bands at every boundary, validation of form answers,
and the response and remission helpers."""

from __future__ import annotations

import pytest

from telehealth.intake.questionnaires import (
    CSSRS,
    GAD7,
    PHQ9,
    QUESTIONNAIRES,
    in_remission,
    response_rate,
)
from telehealth.lib.errors import InvalidInput


def answers(questionnaire, value=0, **overrides):
    result = {item.key: value for item in questionnaire.items}
    result.update(overrides)
    return result


def test_the_registry_holds_each_questionnaire_under_its_key_and_version():
    assert set(QUESTIONNAIRES) == {"phq9", "gad7", "cssrs"}
    assert all(q.key == key for key, q in QUESTIONNAIRES.items())
    assert (PHQ9.version, GAD7.version, CSSRS.version) == ("phq9-v1", "gad7-v1", "cssrs-screener-v1")


def test_item_sets_and_options():
    assert [item.key for item in PHQ9.items] == [f"phq9_{n}" for n in range(1, 10)]
    assert [item.key for item in GAD7.items] == [f"gad7_{n}" for n in range(1, 8)]
    assert [item.key for item in CSSRS.items] == [f"cssrs_{n}" for n in range(1, 7)] + ["cssrs_6_recent"]
    assert PHQ9.instructions == ("Over the last 2 weeks, how often have you been bothered by any of the following problems?")
    assert PHQ9.items[8].text.startswith("Thoughts that you would be better off dead")
    assert [(o.value, o.label) for o in PHQ9.items[0].options] == [
        (0, "Not at all"),
        (1, "Several days"),
        (2, "More than half the days"),
        (3, "Nearly every day"),
    ]
    assert sorted(o.value for o in CSSRS.items[0].options) == [0, 1]
    assert CSSRS.bands == ()


def test_scores_are_the_sum_of_the_answers():
    assert PHQ9.score(answers(PHQ9, 0)) == 0
    assert PHQ9.score(answers(PHQ9, 3)) == 27
    assert PHQ9.score(answers(PHQ9, 0, phq9_1=2, phq9_5=1, phq9_9=3)) == 6
    assert GAD7.score(answers(GAD7, 3)) == 21
    assert GAD7.score(answers(GAD7, 1, gad7_7=0)) == 6


def test_cssrs_score_counts_yes_answers():
    assert CSSRS.score(answers(CSSRS, 0)) == 0
    assert CSSRS.score(answers(CSSRS, 0, cssrs_1=1, cssrs_2=1, cssrs_6=1)) == 3


@pytest.mark.parametrize(
    ("score", "label"),
    [
        (0, "minimal"),
        (4, "minimal"),
        (5, "mild"),
        (9, "mild"),
        (10, "moderate"),
        (14, "moderate"),
        (15, "moderately severe"),
        (19, "moderately severe"),
        (20, "severe"),
        (27, "severe"),
    ],
)
def test_phq9_bands_at_every_boundary(score, label):
    assert PHQ9.band(score).label == label


@pytest.mark.parametrize(
    ("score", "label"),
    [(0, "minimal"), (4, "minimal"), (5, "mild"), (9, "mild"), (10, "moderate"), (14, "moderate"), (15, "severe"), (21, "severe")],
)
def test_gad7_bands_at_every_boundary(score, label):
    assert GAD7.band(score).label == label


@pytest.mark.parametrize(("questionnaire", "score"), [(PHQ9, -1), (PHQ9, 28), (GAD7, 22), (CSSRS, 0)])
def test_a_score_outside_every_band_is_an_error(questionnaire, score):
    with pytest.raises(ValueError):
        questionnaire.band(score)


def test_validate_returns_clean_ints_and_accepts_digit_strings_from_a_form():
    form = {f"gad7_{n}": str(n % 4) for n in range(1, 8)}
    form["gad7_7"] = " 2 "
    cleaned = GAD7.validate(form)
    assert cleaned == {"gad7_1": 1, "gad7_2": 2, "gad7_3": 3, "gad7_4": 0, "gad7_5": 1, "gad7_6": 2, "gad7_7": 2}
    assert list(cleaned) == [item.key for item in GAD7.items]
    assert CSSRS.validate(answers(CSSRS, "1")) == answers(CSSRS, 1)


def test_validate_names_a_missing_answer():
    form = answers(PHQ9)
    del form["phq9_9"]
    with pytest.raises(InvalidInput) as caught:
        PHQ9.validate(form)
    assert caught.value.code == "phq9.invalid"
    assert caught.value.fields == {"phq9_9": "Please choose an answer."}


def test_validate_treats_blank_and_none_as_missing():
    with pytest.raises(InvalidInput) as caught:
        GAD7.validate(answers(GAD7, gad7_1="", gad7_2=None, gad7_3="  "))
    assert caught.value.fields == {
        "gad7_1": "Please choose an answer.",
        "gad7_2": "Please choose an answer.",
        "gad7_3": "Please choose an answer.",
    }


@pytest.mark.parametrize("bad", [4, -1, "4", "-1", "two", "1.0", "²", True, 2.0, None])
def test_validate_refuses_values_outside_the_options(bad):
    with pytest.raises(InvalidInput) as caught:
        PHQ9.validate(answers(PHQ9, phq9_3=bad))
    assert set(caught.value.fields) == {"phq9_3"}


def test_cssrs_answers_are_yes_or_no_only():
    with pytest.raises(InvalidInput) as caught:
        CSSRS.validate(answers(CSSRS, cssrs_4=2))
    assert caught.value.code == "cssrs.invalid"
    assert caught.value.fields == {"cssrs_4": "Please choose one of the answers shown."}


def test_validate_refuses_unknown_keys():
    with pytest.raises(InvalidInput) as caught:
        GAD7.validate(answers(GAD7, gad7_8=0))
    assert caught.value.fields == {"gad7_8": "is not a question on this form"}


def test_validate_names_every_bad_field_at_once():
    form = answers(PHQ9, phq9_2=7, extra="1")
    del form["phq9_1"]
    with pytest.raises(InvalidInput) as caught:
        PHQ9.validate(form)
    assert caught.value.fields == {
        "phq9_1": "Please choose an answer.",
        "phq9_2": "Please choose one of the answers shown.",
        "extra": "is not a question on this form",
    }


@pytest.mark.parametrize(
    ("baseline", "current", "responded"),
    [(20, 10, True), (20, 11, False), (20, 0, True), (15, 7, True), (15, 8, False), (1, 0, True), (0, 0, False), (10, 12, False)],
)
def test_response_is_at_least_a_fifty_percent_drop(baseline, current, responded):
    assert response_rate(baseline, current) is responded


@pytest.mark.parametrize(
    ("key", "score", "remission"),
    [("phq9", 4, True), ("phq9", 5, False), ("phq9", 0, True), ("gad7", 4, True), ("gad7", 5, False)],
)
def test_remission_is_below_five(key, score, remission):
    assert in_remission(key, score) is remission


def test_remission_is_undefined_for_the_cssrs():
    with pytest.raises(ValueError):
        in_remission("cssrs", 0)


def test_cssrs_skip_logic_follows_the_instrument():
    """Questions 3-5 only after "Yes" to 2, the 3-month follow-up only after "Yes" to 6; skipped means "No"."""
    skipped = {key: value for key, value in answers(CSSRS, 0).items() if key not in {"cssrs_3", "cssrs_4", "cssrs_5", "cssrs_6_recent"}}
    assert CSSRS.validate(skipped) == answers(CSSRS, 0)
    with pytest.raises(InvalidInput) as caught:
        CSSRS.validate(skipped | {"cssrs_2": 1, "cssrs_6": 1})
    assert set(caught.value.fields) == {"cssrs_3", "cssrs_4", "cssrs_5", "cssrs_6_recent"}


def test_a_yes_to_a_skippable_question_is_kept():
    given = answers(CSSRS, 0) | {"cssrs_4": 1}  # "No" to question 2, yet "Yes" to intent: never dropped
    assert CSSRS.validate(given)["cssrs_4"] == 1
