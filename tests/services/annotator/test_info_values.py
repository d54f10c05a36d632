"""annotated.info_values: the INFO values our pass reads, all keys in one pass."""

from __future__ import annotations

import pyarrow as pa

from gas_annotator.engine.annotated import info_values

KEYS = ["BCSQ", "GAS_AF", "GAS_AF_AFR", "GAS_CLNSIG"]


def values(*info: str) -> dict[str, list[str | None]]:
    found = info_values(pa.array(info, pa.string()), KEYS)
    return {key: found[key].to_pylist() for key in KEYS}


def test_repeated_key_gives_its_first_value() -> None:
    got = values("GAS_AF=0.1;GAS_AF=0.2;GAS_AF_AFR=0.3;GAS_AF_AFR=0.4", "GAS_AF=0.5")
    assert got["GAS_AF"] == ["0.1", "0.5"]
    assert got["GAS_AF_AFR"] == ["0.3", None]


def test_absent_key_is_null() -> None:
    got = values("BCSQ=missense|APP", "GAS_CLNSIG=pathogenic")
    assert got["BCSQ"] == ["missense|APP", None]
    assert got["GAS_CLNSIG"] == [None, "pathogenic"]
    assert got["GAS_AF"] == [None, None]


def test_key_that_prefixes_another_matches_only_itself() -> None:
    got = values("GAS_AF_AFR=0.3", "GAS_AF_AFR=0.3;GAS_AF=0.1", "GAS_AFX=9;GAS_AF_AFRICA=8")
    assert got["GAS_AF"] == [None, "0.1", None]
    assert got["GAS_AF_AFR"] == ["0.3", "0.3", None]


def test_empty_info_has_no_values() -> None:
    got = values(".", "GAS_AF=.")
    assert all(got[key][0] is None for key in KEYS)
    assert got["GAS_AF"][1] == "."  # a value written as '.' stays as written


def test_records_without_any_wanted_key_are_all_null() -> None:
    got = values(".", "OTHER=1;FLAG")
    assert all(got[key] == [None, None] for key in KEYS)


def test_value_containing_equals_is_kept_whole() -> None:
    got = values("GAS_CLNSIG=a=b;BCSQ=x=y=z", "GAS_CLNSIG==")
    assert got["GAS_CLNSIG"] == ["a=b", "="]
    assert got["BCSQ"] == ["x=y=z", None]


def test_flag_named_like_a_key_is_not_a_value() -> None:
    got = values("GAS_AF;GAS_CLNSIG=benign", "GAS_AF=;BCSQ")
    assert got["GAS_AF"] == [None, ""]
    assert got["BCSQ"] == [None, None]
    assert got["GAS_CLNSIG"] == ["benign", None]


def test_values_of_a_sliced_column_belong_to_its_records() -> None:
    info = pa.array(["GAS_AF=1", "GAS_AF=2;BCSQ=b", "BCSQ=c"], pa.string()).slice(1)
    got = info_values(info, KEYS)
    assert got["GAS_AF"].to_pylist() == ["2", None]
    assert got["BCSQ"].to_pylist() == ["b", "c"]
