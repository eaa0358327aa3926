"""Visit assignment at the edges of its windows (TRIAL.md sections 2 to 4)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from fhir_adapter.errors import InvalidResource
from fhir_adapter.trial.model import Infusion
from fhir_adapter.trial.visits import BASELINE, assign_visits, latest_within
from tests.trial.trial_builders import DAY0, TEHRAN, at, day_meas, meas

PLUS_0330 = timezone(timedelta(hours=3, minutes=30))


def visit_of(m, study, day0=DAY0):
    """The visit a single value is assigned to, or None."""
    a = assign_visits([m], day0, study)
    placed = a.placements[m.analyte]
    return placed[0].window if placed[0].chosen else None


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (at(days=11), "W2"),  # window start, inclusive
        (at(days=17), "W2"),  # window end, inclusive
        (at(days=17, seconds=1), None),  # one second past the end
        (at(days=11, seconds=-1), None),  # between W1 (ends 9 d) and W2 (starts 11 d)
        (at(days=9), "W1"),
        (at(hours=6), "H12"),
        (at(hours=18), "H12"),
        (at(hours=18, seconds=1), None),
        (at(days=351), "M12"),
        (at(days=379), "M12"),
        (at(days=380), None),
        (at(days=60 + 7), "M2"),
        (at(days=60 + 7, seconds=1), None),
    ],
)
def test_window_edges(study, offset, expected):
    assert visit_of(meas("creatinine", "0.5", offset), study) == expected


def test_nearest_to_nominal_wins(study):
    far, near = (
        meas("creatinine", "0.5", at(days=12)),
        meas("creatinine", "0.6", at(days=14, hours=1)),
    )
    a = assign_visits([far, near], DAY0, study)
    assert a.value("creatinine", "W2") is near


def test_tie_goes_to_the_later_value(study):
    # 13 d and 15 d are both exactly 1 d from the nominal 14 d
    early, late = meas("creatinine", "0.5", at(days=13)), meas("creatinine", "0.6", at(days=15))
    assert assign_visits([late, early], DAY0, study).value("creatinine", "W2") is late
    assert assign_visits([early, late], DAY0, study).value("creatinine", "W2") is late


def test_baseline_is_the_last_value_in_the_30_days_before(study):
    older, last = meas("alt", 30, at(days=-10)), meas("alt", 33, at(hours=-1))
    a = assign_visits([last, older], DAY0, study)
    assert a.baseline("alt") is last
    assert a.value("alt", BASELINE) is last


def test_baseline_window_edges(study):
    assert visit_of(meas("alt", 30, at(days=-30)), study) == BASELINE  # -30 d included
    assert visit_of(meas("alt", 30, at(days=-30, seconds=-1)), study) is None
    assert visit_of(meas("alt", 30, at(seconds=-1)), study) == BASELINE
    assert visit_of(meas("alt", 30, at()), study) is None  # at Day 0 itself: not before it


def test_value_outside_every_window_is_kept(study):
    out = meas("creatinine", "0.7", at(days=20))
    a = assign_visits([out], DAY0, study)
    assert a.outside("creatinine") == [out]
    assert a.visits("creatinine") == {}
    assert [p.measurement for p in a.after_day0("creatinine")] == [out]


def test_preliminary_is_reported_but_does_not_count(study):
    final = meas("alt", 30, at(days=-2))
    prelim = meas("alt", 90, at(hours=-1), status="preliminary")
    withdrawn = meas("alt", 99, at(hours=-2), status="entered-in-error")
    a = assign_visits([final, prelim, withdrawn], DAY0, study)
    assert a.baseline("alt") is final
    assert a.not_counting["alt"] == [prelim, withdrawn]
    for status in ("amended", "corrected"):
        counted = meas("alt", 31, at(hours=-3), status=status)
        assert assign_visits([final, counted], DAY0, study).baseline("alt") is counted


def test_plus_0330_compared_with_utc_in_elapsed_time(study):
    # Day 0 is 06:00Z. 09:00+03:30 is 05:30Z: half an hour BEFORE Day 0, although its wall
    # clock reads later than 06:00. 09:45+03:30 is 06:15Z: after Day 0.
    before = meas("alt", 30, datetime(2024, 3, 20, 9, 0, tzinfo=PLUS_0330))
    after = meas("alt", 31, datetime(2024, 3, 20, 9, 45, tzinfo=PLUS_0330))
    a = assign_visits([before, after], DAY0, study)
    assert a.baseline("alt") is before
    assert [p.offset for p in a.placements["alt"]] == [
        timedelta(minutes=-30),
        timedelta(minutes=15),
    ]
    # H12 = 18:00Z = 21:30+03:30 exactly
    h12 = meas("alt", 32, datetime(2024, 3, 20, 21, 30, tzinfo=PLUS_0330))
    assert assign_visits([h12], DAY0, study).placements["alt"][0].offset == timedelta(hours=12)


def test_day_precision_on_day0_date_is_neither_baseline_nor_h12(study):
    # Day 0 at 09:30 Tehran; a value dated that same day may have been drawn after the infusion
    same_day = day_meas("creatinine", "0.5", date(2024, 3, 20))
    a = assign_visits([same_day], DAY0, study)
    assert a.baseline("creatinine") is None
    assert a.visits("creatinine") == {}
    assert a.outside("creatinine") == [same_day]
    # the next day: within 6..18 h of an evening Day 0, but a date never goes to H12
    evening = datetime(2024, 3, 20, 16, 0, tzinfo=UTC)  # 19:30 Tehran
    next_day = day_meas("creatinine", "0.5", date(2024, 3, 21))
    assert assign_visits([next_day], evening, study).visits("creatinine") == {}
    exact = meas("creatinine", "0.5", evening + timedelta(hours=12))
    assert assign_visits([exact], evening, study).visits("creatinine") == {"H12": exact}


def test_day_precision_counts_calendar_days_in_the_study_zone(study):
    # Day 0 = 2024-03-20 22:00Z = 2024-03-21 01:30 in Tehran: Day 0's calendar day is 03-21.
    day0 = datetime(2024, 3, 20, 22, 0, tzinfo=UTC)
    assert day0.astimezone(TEHRAN).date() == date(2024, 3, 21)
    prev = day_meas("creatinine", "0.6", date(2024, 3, 20))  # day -1 -> baseline
    day_zero = day_meas("creatinine", "0.7", date(2024, 3, 21))  # day 0 -> never baseline
    a = assign_visits([prev, day_zero], day0, study)
    assert a.baseline("creatinine") is prev
    # W2 is days 11..17: 2024-04-01 is day 11, 2024-04-07 day 17, 2024-04-08 day 18
    assert visit_of(day_meas("creatinine", "1", date(2024, 4, 1)), study, day0) == "W2"
    assert visit_of(day_meas("creatinine", "1", date(2024, 4, 7)), study, day0) == "W2"
    assert visit_of(day_meas("creatinine", "1", date(2024, 4, 8)), study, day0) is None
    # 30 calendar days before 2024-03-21 is 2024-02-20: included; 02-19 is not
    assert visit_of(day_meas("creatinine", "1", date(2024, 2, 20)), study, day0) == BASELINE
    assert visit_of(day_meas("creatinine", "1", date(2024, 2, 19)), study, day0) is None


def test_calendar_days_are_not_those_of_the_machine_zone(study):
    # Day 0 = 2024-03-20 12:00Z: 15:30 on 03-20 in Tehran, but 01:45 on 03-21 on this machine's
    # frozen clock (Pacific/Chatham). Counted in Tehran, a value dated 03-20 is Day 0's own day
    # (not baseline), and 04-07 is day 18 (not W2); counted on the machine they would be day -1
    # and day 17.
    day0 = datetime(2024, 3, 20, 12, 0, tzinfo=UTC)
    assert day0.astimezone().date() == date(2024, 3, 21)  # the machine's zone is not Tehran's
    same_day = day_meas("creatinine", "0.6", date(2024, 3, 20))
    assert assign_visits([same_day], day0, study).baseline("creatinine") is None
    assert visit_of(day_meas("creatinine", "1", date(2024, 4, 7)), study, day0) is None
    assert visit_of(day_meas("creatinine", "1", date(2024, 4, 6)), study, day0) == "W2"


def test_day0_as_infusion_or_datetime(study):
    values = [meas("alt", 30, at(days=-1)), meas("alt", 50, at(days=14))]
    by_time = assign_visits(values, DAY0, study)
    by_infusion = assign_visits(
        values, Infusion("MedicationAdministration/x", DAY0, "completed"), study
    )
    assert by_time.placements == by_infusion.placements


def test_day_precision_infusion_has_no_hour_visit(study):
    # Day 0 known only to the day: no value can be placed 12 h after an unknown hour
    midnight = datetime(2024, 3, 20, 0, 0, tzinfo=TEHRAN)
    infusion = Infusion("MedicationAdministration/x", midnight, "completed", day_precision=True)
    v = meas("creatinine", "0.5", midnight + timedelta(hours=12))
    assert assign_visits([v], infusion, study).visits("creatinine") == {}


def test_missed_visits(study):
    values = [meas("creatinine", "0.5", at(days=7)), meas("creatinine", "0.5", at(days=60))]
    a = assign_visits(values, DAY0, study)
    # follow-up reached day 60: H12, W2 and W4 passed without a value; M3 and later not yet due
    assert a.missed["creatinine"] == ("H12", "W2", "W4")
    late = assign_visits(values, DAY0, study, as_of=at(days=400))
    assert late.missed["creatinine"][-1] == "M12"
    assert "M2" not in late.missed["creatinine"]


def test_naive_time_is_refused(study):
    naive = meas("alt", 30, datetime(2024, 3, 20, 6, 0))
    with pytest.raises(InvalidResource, match="no time zone"):
        assign_visits([naive], DAY0, study)


def test_latest_within_never_after_the_sample():
    sample = at(days=14)
    old = meas("height", 120, sample - timedelta(days=90))  # exactly 90 d: included
    older = meas("height", 119, sample - timedelta(days=90, seconds=1))
    later = meas("height", 125, sample + timedelta(hours=1))
    assert latest_within([older, old, later], "height", sample, timedelta(days=90)) is old
    assert latest_within([older, later], "height", sample, timedelta(days=90)) is None
