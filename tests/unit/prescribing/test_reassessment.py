"""Response (a drop of at least 50% from baseline) and remission (below 5), as DOMAIN.md defines them."""

from telehealth.prescribing.reassessment import score_change


def test_response_needs_half_the_baseline_or_less():
    assert score_change("phq9", [20, 10]).response is True
    assert score_change("phq9", [20, 11]).response is False
    assert score_change("phq9", [20, 11]).change_percent == -45


def test_remission_is_below_five_at_the_latest_score():
    assert score_change("phq9", [18, 4]).remission is True
    assert score_change("phq9", [18, 5]).remission is False


def test_a_single_score_is_a_baseline_only():
    only = score_change("gad7", [3])
    assert (only.baseline, only.latest, only.response, only.remission) == (3, 3, False, False)
    assert score_change("gad7", []) is None
