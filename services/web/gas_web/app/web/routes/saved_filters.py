"""Saved filters on the results page: save the current view under a name, delete one.

Plain form posts (CSRF-checked like every other form) that answer with a redirect back to the
results page, so they work without JavaScript and under the strict CSP. A refused save (a
taken name, the cap, a bad parameter) comes back as a note on the same view rather than an
error page. The page shows the partial `_saved_filters.html` with `saved_filters_context`.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from gas_core.jobs import FILTER_PARAMETERS, FilterNotFound, Job, UserProfile
from gas_web.app.api.routes.filters import save
from gas_web.app.core.errors import Problem, not_found
from gas_web.app.deps import CsrfChecked, PageJob, PageUser, SavedFilters

router = APIRouter(include_in_schema=False)
# One note for the next rendering of the results page: (kind, text).
NOTE_SESSION_KEY = "saved_filter_note"
MAX_QUERY_LENGTH = 4000


def current_params(pairs: Any) -> dict[str, str]:
    """The filter parameters among a query's (name, value) pairs, empty ones left out, as the
    API spells them (older results links said known=known|novel)."""
    params = {name: value for name, value in pairs if name in FILTER_PARAMETERS and value}
    if params.get("known") in ("known", "novel"):
        params["known"] = "true" if params["known"] == "known" else "false"
    return params


def saved_filters_context(request: Request, user: UserProfile) -> dict[str, Any]:
    """What `_saved_filters.html` needs: the user's filters, the view's own parameters and a
    note left by the last save or delete."""
    store = request.app.state.saved_filters
    return {
        "saved_filters": store.list_filters(user.user_id),
        "saved_filter_limit": store.max_filters,
        "saved_filter_current": current_params(request.query_params.multi_items()),
        "saved_filter_note": request.session.pop(NOTE_SESSION_KEY, None),
    }


def _back(job: Job, params: dict[str, str]) -> RedirectResponse:
    query = urlencode(params)
    return RedirectResponse(f"/jobs/{job.job_id}/results" + (f"?{query}" if query else ""),
                            status_code=303)


def _posted_params(query: str) -> dict[str, str]:
    return current_params(parse_qsl(query[:MAX_QUERY_LENGTH], keep_blank_values=False))


@router.post("/jobs/{job_id}/results/saved-filters")
def save_results_filter(
    *,
    request: Request,
    user: PageUser,
    job: PageJob,
    store: SavedFilters,
    _csrf: CsrfChecked,
    name: Annotated[str, Form(max_length=200)] = "",
    params: Annotated[str, Form(max_length=MAX_QUERY_LENGTH)] = "",
) -> Response:
    """Save the view's parameters (`params`, its query string) as `name`."""
    wanted = _posted_params(params)
    try:
        saved = save(store, user.user_id, name, wanted)
    except Problem as refused:
        request.session[NOTE_SESSION_KEY] = ("danger", f"Not saved: {refused.detail}")
        return _back(job, wanted)
    request.session[NOTE_SESSION_KEY] = ("success", f"Saved this filter as “{saved.name}”.")
    return _back(job, saved.params)


@router.post("/jobs/{job_id}/results/saved-filters/{filter_id}/delete")
def delete_results_filter(
    *,
    request: Request,
    user: PageUser,
    job: PageJob,
    store: SavedFilters,
    _csrf: CsrfChecked,
    filter_id: str,
    back: Annotated[str, Form(max_length=MAX_QUERY_LENGTH)] = "",
) -> Response:
    """Delete one of the user's saved filters and return to the same view (`back`)."""
    try:
        deleted = store.delete_filter(user.user_id, filter_id)
    except FilterNotFound:
        raise not_found("saved filter") from None
    request.session[NOTE_SESSION_KEY] = ("success", f"Deleted the saved filter “{deleted.name}”.")
    return _back(job, _posted_params(back))
