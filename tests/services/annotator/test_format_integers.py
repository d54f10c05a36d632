"""genotypes._integer: FORMAT DP/GQ text as int32, null for anything but a plain integer."""

from __future__ import annotations

import pyarrow as pa

from gas_annotator.engine.genotypes import _integer


def test_only_plain_integers_of_up_to_nine_digits_parse() -> None:
    text = ["12", "", ".", "-3", "\u0663", "1234567890", "123456789", "0012", None, "1e3", " 5"]
    got = _integer(pa.array(text, pa.string())).to_pylist()
    assert got == [12, None, None, -3, None, None, 123456789, 12, None, None, None]


def test_a_column_of_digits_only_needs_no_fallback() -> None:
    assert _integer(pa.array(["7", "30", "99"], pa.string())).to_pylist() == [7, 30, 99]
    assert _integer(pa.array([None, None], pa.string())).to_pylist() == [None, None]
