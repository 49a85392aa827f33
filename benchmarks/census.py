"""Resident population of the 50 states and DC in the 2020 census (April 1, 2020; US Census Bureau,
table "Apportionment and resident population", resident population column). The waiting-list benchmark
spreads its entries over the 51 queues in these proportions."""

from __future__ import annotations

POPULATION_2020: dict[str, int] = {
    "AL": 5_024_279,
    "AK": 733_391,
    "AZ": 7_151_502,
    "AR": 3_011_524,
    "CA": 39_538_223,
    "CO": 5_773_714,
    "CT": 3_605_944,
    "DE": 989_948,
    "DC": 689_545,
    "FL": 21_538_187,
    "GA": 10_711_908,
    "HI": 1_455_271,
    "ID": 1_839_106,
    "IL": 12_812_508,
    "IN": 6_785_528,
    "IA": 3_190_369,
    "KS": 2_937_880,
    "KY": 4_505_836,
    "LA": 4_657_757,
    "ME": 1_362_359,
    "MD": 6_177_224,
    "MA": 7_029_917,
    "MI": 10_077_331,
    "MN": 5_706_494,
    "MS": 2_961_279,
    "MO": 6_154_913,
    "MT": 1_084_225,
    "NE": 1_961_504,
    "NV": 3_104_614,
    "NH": 1_377_529,
    "NJ": 9_288_994,
    "NM": 2_117_522,
    "NY": 20_201_249,
    "NC": 10_439_388,
    "ND": 779_094,
    "OH": 11_799_448,
    "OK": 3_959_353,
    "OR": 4_237_256,
    "PA": 13_002_700,
    "RI": 1_097_379,
    "SC": 5_118_425,
    "SD": 886_667,
    "TN": 6_910_840,
    "TX": 29_145_505,
    "UT": 3_271_616,
    "VT": 643_077,
    "VA": 8_631_393,
    "WA": 7_705_281,
    "WV": 1_793_716,
    "WI": 5_893_718,
    "WY": 576_851,
}

TOTAL_2020 = sum(POPULATION_2020.values())  # 331,449,281


def shares() -> dict[str, float]:
    """Each state's share of the total, in the order above."""
    return {state: people / TOTAL_2020 for state, people in POPULATION_2020.items()}


def cumulative_bounds() -> tuple[list[str], list[float]]:
    """The codes, and the lower bound of each code's slice of [0, 1): a uniform random number r belongs to
    codes[i] where bounds[i] <= r < bounds[i + 1] (PostgreSQL's width_bucket(r, bounds) answers i + 1)."""
    codes, bounds, running = [], [], 0.0
    for state, share in shares().items():
        codes.append(state)
        bounds.append(running)
        running += share
    return codes, bounds


def largest(n: int) -> list[str]:
    return sorted(POPULATION_2020, key=POPULATION_2020.__getitem__, reverse=True)[:n]
