"""Every FILTER, INFO and FORMAT key a record uses must be declared in the header.

htslib reading VCF text adds an undeclared key to its in-memory header with a warning, but the
BCF it writes carries the header as it was before that record: the next bcftools step then fails
("Invalid INFO id"), an internal error with no line number. So the validator checks the keys and
names the first undeclared one, with the line, before any bcftools work.

In the fast path INFO costs one RE2 match per block (a pattern of the declared keys), FILTER and
FORMAT one hash (a file has few distinct values); the slow path checks each distinct value once.
"""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

from gas_annotator.engine.errors import InputError

KINDS = ("FILTER", "INFO", "FORMAT")
_SEPARATOR = {"FILTER": ";", "INFO": ";", "FORMAT": ":"}
_DECLARATION = re.compile(r"^##(FILTER|INFO|FORMAT)=<ID=([^,>]+)")
_EXAMPLE = {
    "FILTER": '##FILTER=<ID={key},Description="...">',
    "INFO": '##INFO=<ID={key},Number=.,Type=String,Description="...">',
    "FORMAT": '##FORMAT=<ID={key},Number=.,Type=String,Description="...">',
}


class Declared:
    """The keys the chunk header declares, and the key combinations already found valid."""

    def __init__(self, header_lines: list[str]) -> None:
        # "." is "none"; an empty value or key is left to htslib, as before this check.
        self.keys: dict[str, set[str]] = {kind: {".", ""} for kind in KINDS}
        self.keys["FILTER"].add("PASS")  # implicit in every VCF header
        for line in header_lines:
            found = _DECLARATION.match(line)
            if found:
                self.keys[found.group(1)].add(found.group(2))
        self._good: dict[str, set[str]] = {kind: set() for kind in KINDS}
        # INFO values differ record by record: one RE2 match over the column, no strings built.
        keys = "|".join(re.escape(k) for k in sorted(self.keys["INFO"]))
        item = f"(?:{keys})(?:=[^;]*)?"
        self._info_re = f"^(?:{item})(?:;{item})*$"

    def undeclared(self, kind: str, value: str) -> str | None:
        """The first undeclared key in one FILTER, INFO or FORMAT value, or None."""
        if value in self._good[kind]:
            return None
        keys = value.split(_SEPARATOR[kind])
        if kind == "INFO":
            keys = [k.partition("=")[0] for k in keys]
        known = self.keys[kind]
        for key in keys:
            if key not in known:
                return key
        self._good[kind].add(value)
        return None

    def column_ok(self, kind: str, values: pa.Array | pa.ChunkedArray) -> bool:
        """Whether every key in a column is declared (vectorised: one check per combination)."""
        if kind == "INFO":
            return bool(pc.all(pc.match_substring_regex(values, self._info_re)).as_py())
        combos = pc.unique(values)
        if len(combos) > 1000:
            # Many combinations (records with optional keys): check the keys themselves.
            combos = pc.unique(pc.list_flatten(pc.split_pattern(combos, _SEPARATOR[kind])))
        return all(self.undeclared(kind, v) is None for v in combos.to_pylist())

    def check_line(self, fields: list[str], lineno: int) -> None:
        """Raise for the first undeclared key; ``fields`` are QUAL, FILTER, INFO[, FORMAT]."""
        for kind, value in zip(KINDS, fields[1:4], strict=False):
            key = self.undeclared(kind, value)
            if key is not None:
                example = _EXAMPLE[kind].format(key=key)
                raise InputError(
                    f"line {lineno}: {kind} key '{key[:40]}' is not declared in the header "
                    f"(add a line like {example[:120]})"
                )
