"""Filters on the command line: `--filter KEY=VALUE` (or a saved filter's name) into the query
parameters of the variants API.

The names are the API's and the results page's (gene, impact, view, ...): the same words
everywhere. The API ignores parameters it does not know, so an unknown key is refused here,
before anything is downloaded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import click

FILTER_KEYS = (
    "preset", "gene", "consequence", "impact", "clinvar", "known", "max_af", "af_field",
    "keep_no_af", "view", "carriers", "zygosity", "sample", "sort", "order",
)


class FilterUsageError(click.ClickException):
    """A filter the command cannot use: one line, exit status 2 (a usage error)."""

    exit_code = 2


@dataclass
class FilterOptions:
    params: dict[str, str] = field(default_factory=dict)  # from KEY=VALUE, repeats joined
    saved_names: list[str] = field(default_factory=list)  # --filter NAME and --saved NAME


def parse_filters(values: Iterable[str], *, saved: Sequence[str] = ()) -> FilterOptions:
    """`KEY=VALUE` pairs (a key given twice means either value: `impact=HIGH` and
    `impact=MODERATE` become `impact=HIGH,MODERATE`); a value without `=` names a saved
    filter."""
    options = FilterOptions(saved_names=list(saved))
    collected: dict[str, list[str]] = {}
    for value in values:
        key, sep, text = value.partition("=")
        key, text = key.strip(), text.strip()
        if not sep:
            options.saved_names.append(value.strip())
            continue
        if key not in FILTER_KEYS:
            raise FilterUsageError(f"unknown filter key {key!r} in --filter {value!r}; "
                                   f"use one of: {', '.join(FILTER_KEYS)}")
        if not text:
            raise FilterUsageError(f"--filter {value!r} has no value")
        collected.setdefault(key, []).append(text)
    options.params = {key: ",".join(texts) for key, texts in collected.items()}
    return options


def same_name(left: str, right: str) -> bool:
    """Saved-filter names compare as the server compares them: no case, one space."""
    return " ".join(left.split()).casefold() == " ".join(right.split()).casefold()


def find_saved(saved_filters: Sequence[Mapping[str, object]], name: str) -> dict[str, str]:
    for saved in saved_filters:
        if same_name(str(saved["name"]), name):
            params = saved["params"]
            assert isinstance(params, Mapping)
            return {str(k): str(v) for k, v in params.items()}
    raise FilterUsageError(f"you have no saved filter named {name!r} (`gas filters` lists "
                           "them; a filter on the command line is KEY=VALUE)")


def combine(*layers: Mapping[str, str | None]) -> dict[str, str]:
    """Later layers win: saved filters, then --preset, then --filter/--view/--carriers."""
    combined: dict[str, str] = {}
    for layer in layers:
        combined.update({k: v for k, v in layer.items() if v is not None})
    return combined
