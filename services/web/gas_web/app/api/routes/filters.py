"""/api/v1/me/filters: the caller's saved result filters (a name and query parameters).

A saved filter holds the same parameters as `/api/v1/jobs/{job_id}/variants`, the results
page and the CLI, and applies to any of the user's jobs. Filters are read and deleted only
under the caller's own partition: another user's filter id is a 404, like a job's.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from gas_core.jobs import (
    FILTER_PARAMETERS,
    FilterLimitReached,
    FilterNameTaken,
    FilterNotFound,
    InvalidFilter,
    SavedFilter,
    SavedFilterStore,
)
from gas_web.app.core.errors import Problem, not_found
from gas_web.app.deps import CurrentUser, SavedFilters

router = APIRouter(prefix="/api/v1/me/filters", tags=["saved filters"])
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such saved filter (or another user's)"}}


class NewSavedFilter(BaseModel):
    name: str = Field(max_length=200, examples=["Rare coding in APP"],
                      description="Unique among your filters (case and spacing ignored); at "
                                  "most 80 characters once spaces are collapsed.")
    params: dict[str, str | int | float | bool] = Field(
        examples=[{"gene": "APP", "preset": "rare-coding"}],
        description="Query parameters of the variants API, by the same names: "
                    + ", ".join(FILTER_PARAMETERS) + ". Empty values are left out.")


class SavedFilterOut(BaseModel):
    id: str
    name: str
    params: dict[str, str]
    created_at: str


class SavedFilterList(BaseModel):
    items: list[SavedFilterOut]
    limit: int = Field(description="The most filters one user can keep.")


def save(store: SavedFilterStore, user_id: str, name: str, params: dict[str, Any]) -> SavedFilter:
    """Save, or raise the Problem the caller shows (422 invalid, 409 name taken or full);
    shared with the results page's form."""
    try:
        return store.save_filter(user_id, name, params)
    except InvalidFilter as invalid:
        raise Problem(422, str(invalid), title="Invalid request",
                      errors=[{"field": invalid.field, "message": str(invalid)}]) from None
    except (FilterNameTaken, FilterLimitReached) as refused:
        raise Problem(409, str(refused)) from None


@router.get("", response_model=SavedFilterList)
def list_saved_filters(user: CurrentUser, store: SavedFilters) -> Any:
    """Your saved filters, by name."""
    return {"items": [f.to_api() for f in store.list_filters(user.user_id)],
            "limit": store.max_filters}


@router.post("", status_code=201, response_model=SavedFilterOut,
             responses={409: {"description": "The name is taken, or the most filters one "
                                             "user can keep are saved"}})
def save_filter(body: NewSavedFilter, user: CurrentUser, store: SavedFilters,
                response: Response) -> Any:
    """Save a filter under a name. Unknown parameters or values out of bounds are refused."""
    saved = save(store, user.user_id, body.name, body.params)
    response.headers["Location"] = f"{router.prefix}/{saved.filter_id}"
    return saved.to_api()


@router.get("/{filter_id}", response_model=SavedFilterOut, responses=_NOT_FOUND)
def read_saved_filter(filter_id: str, user: CurrentUser, store: SavedFilters) -> Any:
    try:
        return store.get_filter(user.user_id, filter_id).to_api()
    except FilterNotFound:
        raise not_found("saved filter") from None


@router.delete("/{filter_id}", status_code=204, response_class=Response,
               responses=_NOT_FOUND)
def delete_saved_filter(filter_id: str, user: CurrentUser, store: SavedFilters) -> Response:
    try:
        store.delete_filter(user.user_id, filter_id)
    except FilterNotFound:
        raise not_found("saved filter") from None
    return Response(status_code=204)
