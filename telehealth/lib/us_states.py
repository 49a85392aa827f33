"""US states and DC by two-letter code."""

US_STATES: dict[str, str] = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
    "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "DC": "District of Columbia",
    "FL": "Florida", "GA": "Georgia", "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois", "IN": "Indiana",
    "IA": "Iowa", "KS": "Kansas", "KY": "Kentucky", "LA": "Louisiana", "ME": "Maine", "MD": "Maryland",
    "MA": "Massachusetts", "MI": "Michigan", "MN": "Minnesota", "MS": "Mississippi", "MO": "Missouri",
    "MT": "Montana", "NE": "Nebraska", "NV": "Nevada", "NH": "New Hampshire", "NJ": "New Jersey",
    "NM": "New Mexico", "NY": "New York", "NC": "North Carolina", "ND": "North Dakota", "OH": "Ohio",
    "OK": "Oklahoma", "OR": "Oregon", "PA": "Pennsylvania", "RI": "Rhode Island", "SC": "South Carolina",
    "SD": "South Dakota", "TN": "Tennessee", "TX": "Texas", "UT": "Utah", "VT": "Vermont",
    "VA": "Virginia", "WA": "Washington", "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming",
}  # fmt: skip

# Each state's IANA zones, the main one (where most of its people live) first. A calendar day "in a state"
# is read in one of these: the patient's own zone when it is one of the state's (a patient in El Paso who
# chose Mountain time), else the main zone (a traveller, or a patient whose zone is not the state's). The
# generic names patients choose from (America/New_York, America/Chicago, America/Denver, America/Los_Angeles)
# are listed wherever the state has that time, beside the tz database's local names.
STATE_ZONES: dict[str, tuple[str, ...]] = {
    "AL": ("America/Chicago",), "AK": ("America/Anchorage", "America/Juneau", "America/Sitka", "America/Metlakatla",
    "America/Yakutat", "America/Nome", "America/Adak"), "AZ": ("America/Phoenix", "America/Denver"),
    "AR": ("America/Chicago",), "CA": ("America/Los_Angeles",), "CO": ("America/Denver",), "CT": ("America/New_York",),
    "DE": ("America/New_York",), "DC": ("America/New_York",), "FL": ("America/New_York", "America/Chicago"),
    "GA": ("America/New_York",), "HI": ("Pacific/Honolulu",), "ID": ("America/Boise", "America/Denver", "America/Los_Angeles"),
    "IL": ("America/Chicago",), "IN": ("America/Indiana/Indianapolis", "America/New_York", "America/Chicago",
    "America/Indiana/Knox", "America/Indiana/Tell_City", "America/Indiana/Petersburg", "America/Indiana/Vincennes",
    "America/Indiana/Winamac", "America/Indiana/Marengo", "America/Indiana/Vevay"), "IA": ("America/Chicago",),
    "KS": ("America/Chicago", "America/Denver"), "KY": ("America/New_York", "America/Chicago", "America/Kentucky/Louisville",
    "America/Kentucky/Monticello"), "LA": ("America/Chicago",), "ME": ("America/New_York",), "MD": ("America/New_York",),
    "MA": ("America/New_York",), "MI": ("America/Detroit", "America/New_York", "America/Menominee", "America/Chicago"),
    "MN": ("America/Chicago",), "MS": ("America/Chicago",), "MO": ("America/Chicago",), "MT": ("America/Denver",),
    "NE": ("America/Chicago", "America/Denver"), "NV": ("America/Los_Angeles", "America/Denver"), "NH": ("America/New_York",),
    "NJ": ("America/New_York",), "NM": ("America/Denver",), "NY": ("America/New_York",), "NC": ("America/New_York",),
    "ND": ("America/Chicago", "America/Denver", "America/North_Dakota/Center", "America/North_Dakota/New_Salem",
    "America/North_Dakota/Beulah"), "OH": ("America/New_York",), "OK": ("America/Chicago",),
    "OR": ("America/Los_Angeles", "America/Boise", "America/Denver"), "PA": ("America/New_York",), "RI": ("America/New_York",),
    "SC": ("America/New_York",), "SD": ("America/Chicago", "America/Denver"), "TN": ("America/Chicago", "America/New_York"),
    "TX": ("America/Chicago", "America/Denver"), "UT": ("America/Denver",), "VT": ("America/New_York",),
    "VA": ("America/New_York",), "WA": ("America/Los_Angeles",), "WV": ("America/New_York",), "WI": ("America/Chicago",),
    "WY": ("America/Denver",),
}  # fmt: skip


def state_zone_name(state: str, *, own_zone: str | None = None) -> str:
    """The zone a calendar day in `state` is read in: `own_zone` (the person's chosen zone) when the state
    has that time, else the state's main zone. KeyError for a code that is not a state or DC."""
    zones = STATE_ZONES[state]
    return own_zone if own_zone in zones else zones[0]
