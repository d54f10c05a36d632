"""Client commands of `gas`: log in, submit files, follow jobs and download results.

They talk to the REST API of a GAS server — `gas dev` locally, or a deployment.
Credentials live in `~/.config/gas/credentials.json` (mode 0600; `--config-dir` or
GAS_CONFIG_DIR overrides the folder): a development token (`dev:<user>`, only accepted by a
server in development login mode) or Globus tokens from the native-app login flow, refreshed
when they expire.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlencode

import click
import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from gas_cli.filter_params import (
    FilterUsageError,
    combine,
    find_saved,
    parse_filters,
    same_name,
)

DEFAULT_API_URL = "http://127.0.0.1:8000"
DEFAULT_CONFIG_DIR = Path("~/.config/gas")
CREDENTIALS_FILE = "credentials.json"
RESULT_KINDS = ("vcf", "tsv", "summary", "log")
FINISHED = frozenset({"COMPLETED", "FAILED"})
# Development user names become user ids as they are (lower case); the server checks them too.
_DEV_USER = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")
# Refresh Globus tokens this long before they expire, so a request never races the expiry.
_EXPIRY_MARGIN_SECONDS = 60

err = Console(stderr=True)


class ClientError(click.ClickException):
    """An error the user can act on; printed as one line, exit status 1."""

    exit_code = 1


# -- credentials -------------------------------------------------------------------------------


@dataclass
class Credentials:
    api_url: str
    kind: str  # "dev" | "globus"
    access_token: str
    refresh_token: str | None = None
    expires_at: float | None = None
    native_client_id: str | None = None

    @classmethod
    def load(cls, config_dir: Path) -> Credentials | None:
        path = config_dir / CREDENTIALS_FILE
        if not path.is_file():
            return None
        try:
            return cls(**json.loads(path.read_text()))
        except (ValueError, TypeError):
            raise ClientError(f"{path} is damaged: run `gas login` again.") from None

    def save(self, config_dir: Path) -> Path:
        config_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = config_dir / CREDENTIALS_FILE
        # Created 0600 before anything is written: tokens are never readable by others.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(self.__dict__, handle, indent=2)
        return path


def _globus() -> Any:
    try:
        import globus_sdk
    except ImportError:  # pragma: no cover - globus-sdk ships with the workspace
        raise ClientError("Globus login needs the globus-sdk package: pip install globus-sdk") \
            from None
    return globus_sdk


def _refresh_globus(credentials: Credentials, config_dir: Path) -> Credentials:
    globus_sdk = _globus()

    if not (credentials.refresh_token and credentials.native_client_id):
        raise ClientError("Your login has expired: run `gas login` again.")
    client = globus_sdk.NativeAppAuthClient(credentials.native_client_id)
    try:
        response = client.oauth2_refresh_token(credentials.refresh_token)
    except globus_sdk.GlobusAPIError:
        raise ClientError("Your login has expired: run `gas login` again.") from None
    data = next(iter(response.by_resource_server.values()))
    credentials.access_token = str(data["access_token"])
    credentials.refresh_token = str(data.get("refresh_token") or credentials.refresh_token)
    credentials.expires_at = float(data["expires_at_seconds"])
    credentials.save(config_dir)
    return credentials


# -- the API ------------------------------------------------------------------------------------


class GasClient:
    """A thin client of the REST API; raises ClientError with the server's own explanation."""

    def __init__(self, api_url: str, token: str | None, *, timeout: float = 60) -> None:
        self.api_url = api_url.rstrip("/")
        headers = {"Accept": "application/json", "User-Agent": "gas-cli"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.http = httpx.Client(base_url=self.api_url, headers=headers, timeout=timeout)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise ClientError(f"cannot reach {self.api_url}: {error}") from None
        if response.status_code >= 400:
            raise ClientError(_problem_text(response))
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()

    @contextmanager
    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """A streamed answer (a download), as `request` judges it; no read timeout between
        the server's chunks beyond five minutes."""
        try:
            with self.http.stream(method, path, timeout=httpx.Timeout(30, read=300),
                                  **kwargs) as response:
                if response.status_code >= 400:
                    response.read()
                    raise ClientError(_problem_text(response))
                yield response
        except httpx.HTTPError as error:
            raise ClientError(f"the download failed: {error}") from None

    def result_url(self, job_id: str, kind: str) -> str:
        response = self.request("GET", f"/api/v1/jobs/{job_id}/results/{kind}",
                                follow_redirects=False)
        if response.status_code != 302 or "location" not in response.headers:
            raise ClientError(f"unexpected answer {response.status_code} for {kind} of {job_id}")
        return response.headers["location"]


def _problem_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = {}
    detail = body.get("detail") if isinstance(body, dict) else None
    if response.status_code == 401:
        return f"{detail or 'not signed in'} (run `gas login`)"
    return str(detail or f"the server answered {response.status_code}")


@dataclass
class Context:
    api_url: str
    config_dir: Path

    def client(self, *, authenticated: bool = True) -> GasClient:
        if not authenticated:
            return GasClient(self.api_url, None)
        credentials = Credentials.load(self.config_dir)
        if credentials is None:
            raise ClientError("not signed in: run `gas login` first.")
        if credentials.api_url.rstrip("/") != self.api_url.rstrip("/"):
            raise ClientError(f"you are signed in to {credentials.api_url}, not {self.api_url}: "
                              "run `gas login` for this server.")
        if (credentials.kind == "globus" and credentials.expires_at is not None
                and credentials.expires_at - _EXPIRY_MARGIN_SECONDS < time.time()):
            credentials = _refresh_globus(credentials, self.config_dir)
        return GasClient(self.api_url, credentials.access_token)


def _resolve_api_url(api_url: str | None, config_dir: Path) -> str:
    if api_url:
        return api_url.rstrip("/")
    stored = Credentials.load(config_dir)
    return stored.api_url if stored else DEFAULT_API_URL


def client_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--api-url and --config-dir on every client command, turned into a `Context`."""
    command = click.option(
        "--config-dir", type=click.Path(file_okay=False, path_type=Path),
        envvar="GAS_CONFIG_DIR", default=DEFAULT_CONFIG_DIR, show_default=True,
        help="Where credentials are kept.")(command)
    return click.option(
        "--api-url", envvar="GAS_API_URL",
        help=f"The GAS server (default: the one you logged in to, else {DEFAULT_API_URL}).",
    )(command)


def _context(api_url: str | None, config_dir: Path) -> Context:
    config_dir = config_dir.expanduser()
    return Context(api_url=_resolve_api_url(api_url, config_dir), config_dir=config_dir)


# -- progress -----------------------------------------------------------------------------------


class ProgressReader:
    """A file wrapper that reports bytes read (httpx reads uploads through it)."""

    def __init__(self, handle: IO[bytes], advance: Callable[[int], None]) -> None:
        self._handle = handle
        self._advance = advance

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size)
        self._advance(len(data))
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._handle.seek(offset, whence)

    def tell(self) -> int:
        return self._handle.tell()

    def fileno(self) -> int:  # lets httpx send a Content-Length (S3 POST requires one)
        return self._handle.fileno()


def _bars_disabled() -> bool:
    # Bars are for people watching a terminal: redirected to a file or a pipe (CI logs,
    # scripts) they are only noise, and rich would still print their final frame.
    return not (err.is_terminal and Console().is_terminal)


def _transfer_progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                    TransferSpeedColumn(), TimeRemainingColumn(), console=err,
                    transient=False, disable=_bars_disabled())


def _human(size: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


# -- commands -----------------------------------------------------------------------------------


@click.command()
@client_options
@click.option("--dev-user", help="Development servers: sign in as this user (no password).")
@click.option("--no-browser", is_flag=True, help="Globus: print the login URL, do not open it.")
def login(api_url: str | None, config_dir: Path, dev_user: str | None, no_browser: bool) -> None:
    """Sign in to a GAS server and keep the credentials for the other commands."""
    ctx = _context(api_url, config_dir)
    info = ctx.client(authenticated=False).json("GET", "/api/v1/auth")
    if info.get("mode") == "dev":
        name = (dev_user or click.prompt("User name")).strip().lower()
        if not _DEV_USER.match(name):
            raise click.BadParameter("use letters, digits, '.', '_', '@' or '-'",
                                     param_hint="--dev-user")
        credentials = Credentials(api_url=ctx.api_url, kind="dev", access_token=f"dev:{name}")
    else:
        if dev_user:
            raise ClientError(f"{ctx.api_url} does not accept development logins.")
        credentials = _globus_login(ctx, info, open_browser=not no_browser)
    me = GasClient(ctx.api_url, credentials.access_token).json("GET", "/api/v1/me")
    path = credentials.save(ctx.config_dir)
    click.echo(f"Signed in to {ctx.api_url} as {me['name'] or me['user_id']} "
               f"({me['tier']} tier). Credentials: {path}")


def _globus_login(ctx: Context, info: dict[str, Any], *, open_browser: bool) -> Credentials:
    globus_sdk = _globus()

    client_id = info.get("globus_native_client_id")
    scopes = info.get("scopes") or []
    if not client_id or not scopes:
        raise ClientError(f"{ctx.api_url} does not offer a command-line login (no native app).")
    auth = globus_sdk.NativeAppAuthClient(client_id)
    auth.oauth2_start_flow(requested_scopes=scopes, refresh_tokens=True,
                           prefill_named_grant="gas CLI")
    url = auth.oauth2_get_authorize_url()
    click.echo(f"Sign in with Globus at:\n\n  {url}\n")
    if open_browser:
        click.launch(url)
    code = click.prompt("Then paste the authorization code here").strip()
    try:
        tokens = auth.oauth2_exchange_code_for_tokens(code)
    except globus_sdk.GlobusAPIError:
        raise ClientError("Globus did not accept that code; run `gas login` again.") from None
    wanted = set(scopes[0].split())
    for data in tokens.by_resource_server.values():
        if wanted <= set(str(data.get("scope", "")).split()):
            return Credentials(
                api_url=ctx.api_url, kind="globus", access_token=str(data["access_token"]),
                refresh_token=data.get("refresh_token"),
                expires_at=float(data["expires_at_seconds"]), native_client_id=client_id,
            )
    raise ClientError("Globus did not grant access to GAS; run `gas login` again.")


@click.command()
@client_options
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--assembly", default="GRCh38", show_default=True)
@click.option("--wait/--no-wait", default=False, help="Follow the annotation until it ends.")
@click.option("--poll-seconds", default=2.0, show_default=True, hidden=True)
def submit(  # noqa: PLR0917 - click passes options positionally by name
    api_url: str | None, config_dir: Path, file: Path, assembly: str, wait: bool,
    poll_seconds: float,
) -> None:
    """Upload FILE (VCF, VCF.gz or BCF) and start its annotation."""
    client = _context(api_url, config_dir).client()
    size = file.stat().st_size
    created = client.json("POST", "/api/v1/jobs", json={"file_name": file.name,
                                                        "assembly": assembly})
    if size > created["max_bytes"]:
        raise ClientError(f"{file.name} is {_human(size)}; your account accepts files up to "
                          f"{_human(created['max_bytes'])}.")
    target = created["upload"]
    with _transfer_progress() as progress, file.open("rb") as handle:
        task = progress.add_task(f"Uploading {file.name}", total=size)
        reader = ProgressReader(handle, lambda n: progress.advance(task, n))
        try:
            # No read timeout: a large upload on a slow link takes as long as it takes.
            response = httpx.post(
                target["url"], data=target["fields"],
                files={"file": (created["file_name"], reader)},  # type: ignore[dict-item]
                timeout=httpx.Timeout(30, read=None, write=None),
            )
        except httpx.HTTPError as error:
            raise ClientError(f"the upload failed: {error}") from None
    if response.status_code >= 300:
        raise ClientError(f"the upload was refused (HTTP {response.status_code}).")
    job = client.json("POST", f"/api/v1/jobs/{created['job_id']}/submit")
    click.echo(f"Submitted job {job['job_id']} ({job['input_file_name']}).")
    if not wait:
        click.echo(f"Follow it with `gas status {job['job_id']}`.")
        return
    job = _follow(client, job, poll_seconds=poll_seconds)
    if job["status"] == "FAILED":
        raise ClientError(f"job {job['job_id']} failed: {job['error']}")
    click.echo(f"Job {job['job_id']} completed{_summary_line(job)}. "
               f"Download with `gas download {job['job_id']}`.")


def _follow(client: GasClient, job: dict[str, Any], *, poll_seconds: float) -> dict[str, Any]:
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=err, disable=_bars_disabled()) as progress:
        task = progress.add_task("Waiting for an annotator", total=1.0)
        while job["status"] not in FINISHED:
            time.sleep(poll_seconds)
            job = client.json("GET", f"/api/v1/jobs/{job['job_id']}")
            label = ("Annotating" if job["status"] == "RUNNING"
                     else f"Waiting for an annotator ({_queue_text(job)})"
                     if job.get("queue_position") is not None else "Waiting for an annotator")
            progress.update(task, completed=job["progress"], description=label)
        progress.update(task, completed=1.0, description=job["status"].capitalize())
    return job


def _queue_text(job: dict[str, Any]) -> str:
    """A PENDING job's place in the queue and, once there is a recent pace, its estimate."""
    ahead = int(job["queue_position"])
    text = "next in the queue" if ahead == 0 else f"{ahead:,} job{'s' if ahead != 1 else ''} ahead"
    eta = job.get("eta")
    if eta:
        text += f", estimated start {eta['start']}, finish {eta['finish']}"
    return text


def _summary_line(job: dict[str, Any]) -> str:
    variants = (job.get("summary") or {}).get("variants") or {}
    annotated = variants.get("annotated")
    return f": {annotated:,} variants annotated" if isinstance(annotated, int) else ""


@click.command()
@client_options
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 100))
@click.option("--all", "everything", is_flag=True, help="Every job, not only the newest page.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one job per line).")
def jobs(api_url: str | None, config_dir: Path, limit: int, everything: bool,
         as_json: bool) -> None:
    """List your jobs, newest first."""
    client = _context(api_url, config_dir).client()
    items = list(_iter_jobs(client, limit=limit, everything=everything))
    if as_json:
        for item in items:
            click.echo(json.dumps(item))
        return
    if not items:
        click.echo("No jobs yet. Start one with `gas submit FILE`.")
        return
    rows = [
        (item["job_id"],
         item["status"] + ("" if item["storage"] == "hot" else f" ({item['storage']})"),
         f"{item['progress'] * 100:.0f}%",
         (item["submitted_at"] or "")[:16].replace("T", " "),
         item["input_file_name"],
         (item.get("error") or "unknown") if item["status"] == "FAILED" else "")
        for item in items
    ]
    console = Console()
    if not console.is_terminal:
        # Piped: one tab-separated line per job, never truncated.
        for row in rows:
            click.echo("\t".join(row))
        return
    # Job ids are what every other command takes: never cut, folded or wrapped; the file name
    # and the reason give way instead.
    table = Table("job", "status", "progress", "submitted (UTC)", "file", "reason")
    job_column = table.columns[0]
    job_column.no_wrap = True
    job_column.min_width = max(len(row[0]) for row in rows)
    for column in table.columns[4:]:
        column.overflow = "fold"
    for row in rows:
        table.add_row(*row, style="red" if row[5] else None)
    console.print(table)


def _iter_jobs(client: GasClient, *, limit: int, everything: bool) -> Iterator[dict[str, Any]]:
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        page = client.json("GET", "/api/v1/jobs", params=params)
        yield from page["items"]
        cursor = page.get("next_cursor")
        if not (everything and cursor):
            return


@click.command()
@client_options
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Print the job as JSON.")
def status(api_url: str | None, config_dir: Path, job_id: str, as_json: bool) -> None:
    """Show one job: status, progress, times, and why it failed if it did."""
    job = _context(api_url, config_dir).client().json("GET", f"/api/v1/jobs/{job_id}")
    if as_json:
        click.echo(json.dumps(job, indent=2))
        if job["status"] == "FAILED":
            click.get_current_context().exit(1)
        return
    lines = [
        ("job", job["job_id"]), ("file", job["input_file_name"]), ("status", job["status"]),
        ("progress", f"{job['progress'] * 100:.0f}%"), ("storage", job["storage"]),
        ("submitted", job["submitted_at"]), ("started", job["started_at"] or "—"),
        ("completed", job["completed_at"] or "—"),
    ]
    if job["status"] == "FAILED":
        lines.append(("reason", job["error"] or "unknown"))
    if job.get("queue_position") is not None:
        lines.append(("queue", _queue_text(job)))
    for name, value in lines:
        click.echo(f"{name:>10}  {value}")
    if job["status"] == "FAILED":
        # Scripts (`gas status JOB && ...`) must see a failed job as a failure.
        click.get_current_context().exit(1)


@click.command()
@client_options
@click.argument("job_id")
@click.option("--kind", type=click.Choice(RESULT_KINDS),
              help="A whole result file: vcf (the default), tsv, summary or log.")
@click.option("--filter", "filters", multiple=True, metavar="KEY=VALUE",
              help="Only the matching variants, e.g. impact=HIGH or gene=APP; repeat it (a "
                   "key twice: either value). A saved filter's name works too.")
@click.option("--saved", multiple=True, metavar="NAME", help="Apply your saved filter NAME.")
@click.option("--preset", metavar="ID", help="A built-in filter: clinvar-plp, rare-coding, lof.")
@click.option("--view", type=click.Choice(["variant", "transcript"]),
              help="One row per variant (the server's default) or every transcript row.")
@click.option("--carriers", type=click.Choice(["only", "all"]),
              help="Only sites a sample carries (the default for files with samples), or all.")
@click.option("--format", "file_format", type=click.Choice(["tsv", "vcf"]),
              help="Of a filtered download: tsv (the default) or vcf (bgzipped).")
@click.option("--out", "-o", "out", type=click.Path(path_type=Path),
              help="File or folder to write to (default: the result's own name, here).")
@click.option("--force", is_flag=True, help="Replace the file if it exists.")
def download(  # noqa: PLR0917 - click passes options positionally by name
    api_url: str | None, config_dir: Path, job_id: str, kind: str | None,
    filters: tuple[str, ...], saved: tuple[str, ...], preset: str | None, view: str | None,
    carriers: str | None, file_format: str | None, out: Path | None, force: bool,
) -> None:
    """Download a result of a completed job: a whole file (--kind), or exactly the variants
    matching filters (--filter, --saved, --preset, --view, --carriers) as TSV or VCF."""
    filtered = bool(filters or saved or preset or view or carriers or file_format)
    if filtered and kind is not None:
        raise FilterUsageError("--kind downloads a whole file; a filtered download takes "
                               "--format tsv|vcf")
    options = parse_filters(filters, saved=saved)  # before any request: bad keys exit 2 now
    client = _context(api_url, config_dir).client()
    if not filtered:
        kind = kind or "vcf"
        url = client.result_url(job_id, kind)
        try:
            with httpx.stream("GET", url, timeout=httpx.Timeout(30, read=300)) as response:
                if response.status_code != 200:
                    raise ClientError(f"the download failed (HTTP {response.status_code}).")
                target = _save(response, out, force=force, default_name=f"{job_id}.{kind}")
        except httpx.HTTPError as error:
            raise ClientError(f"the download failed: {error}") from None
        click.echo(f"Saved {target}")
        return
    saved_filters = (client.json("GET", "/api/v1/me/filters")["items"]
                     if options.saved_names else [])
    params = combine(*(find_saved(saved_filters, name) for name in options.saved_names),
                     {"preset": preset}, options.params, {"view": view, "carriers": carriers})
    file_format = file_format or "tsv"
    suffix = "tsv" if file_format == "tsv" else "vcf.gz"
    with client.stream("GET", f"/api/v1/jobs/{job_id}/variants/export",
                       params={**params, "format": file_format}) as response:
        target = _save(response, out, force=force,
                       default_name=f"{job_id}.filtered.{suffix}")
    if file_format == "tsv":
        with target.open("rb") as handle:
            rows = sum(1 for _ in handle) - 1  # below the header line
        click.echo(f"Saved {target} ({rows:,} row{'' if rows == 1 else 's'})")
    else:
        click.echo(f"Saved {target}")


def _save(response: httpx.Response, out: Path | None, *, force: bool, default_name: str) -> Path:
    """Stream a download to its file: under a temporary name first (no half-written file
    under the real name), never over an existing file without `force`."""
    name = _file_name(response) or default_name
    target = out / name if out is not None and out.is_dir() else (out or Path(name))
    if target.exists() and not force:
        raise ClientError(f"{target} exists; use --force to replace it.")
    total = int(response.headers.get("content-length") or 0) or None
    partial = target.with_name(target.name + ".part")
    try:
        with _transfer_progress() as progress, partial.open("wb") as handle:
            task = progress.add_task(f"Downloading {name}", total=total)
            for chunk in response.iter_bytes():
                handle.write(chunk)
                progress.advance(task, len(chunk))
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)
    return target


def _file_name(response: httpx.Response) -> str | None:
    disposition = response.headers.get("content-disposition", "")
    match = re.search(r'filename="?([^";]+)"?', disposition)
    if not match:
        return None
    name = Path(match.group(1)).name  # never a path from the server
    return name if name not in ("", ".", "..") else None


@click.command()
@client_options
@click.option("--save", "save_as", metavar="NAME",
              help="Save the --filter parameters as your filter NAME.")
@click.option("--filter", "pairs", multiple=True, metavar="KEY=VALUE",
              help="With --save: a parameter of the filter, as for `gas download`; repeat it.")
@click.option("--delete", "delete_name", metavar="NAME", help="Delete your saved filter NAME.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one filter per line).")
def filters(  # noqa: PLR0917 - click passes options positionally by name
    api_url: str | None, config_dir: Path, save_as: str | None, pairs: tuple[str, ...],
    delete_name: str | None, as_json: bool,
) -> None:
    """List your saved filters (use one with `gas download JOB --saved NAME`), save one
    (--save NAME --filter KEY=VALUE ...) or delete one (--delete NAME)."""
    if save_as is not None and delete_name is not None:
        raise FilterUsageError("use --save or --delete, not both")
    if pairs and save_as is None:
        raise FilterUsageError("--filter goes with --save NAME here")
    client = _context(api_url, config_dir).client()
    if save_as is not None:
        _save_filter(client, save_as, pairs)
        return
    items = client.json("GET", "/api/v1/me/filters")["items"]
    if delete_name is not None:
        _delete_filter(client, items, delete_name)
        return
    if as_json:
        for item in items:
            click.echo(json.dumps(item))
        return
    if not items:
        click.echo("No saved filters yet: save one on a results page, or with "
                   "`gas filters --save NAME --filter KEY=VALUE`.")
        return
    for item in items:  # name, the parameters as the API takes them, the id
        click.echo("\t".join((item["name"], urlencode(item["params"]), item["id"])))


def _save_filter(client: GasClient, name: str, pairs: tuple[str, ...]) -> None:
    options = parse_filters(pairs)
    if options.saved_names:
        raise FilterUsageError(f"--filter {options.saved_names[0]!r} is not KEY=VALUE")
    if not options.params:
        raise FilterUsageError("--save needs at least one --filter KEY=VALUE")
    saved = client.json("POST", "/api/v1/me/filters",
                        json={"name": name, "params": options.params})
    click.echo(f"Saved filter {saved['name']!r}: {urlencode(saved['params'])}")


def _delete_filter(client: GasClient, items: list[dict[str, Any]], name: str) -> None:
    for item in items:
        if same_name(item["name"], name):
            client.request("DELETE", f"/api/v1/me/filters/{item['id']}")
            click.echo(f"Deleted saved filter {item['name']!r}.")
            return
    raise FilterUsageError(f"you have no saved filter named {name!r}")


@click.command()
@client_options
def upgrade(api_url: str | None, config_dir: Path) -> None:
    """Move to the premium tier (larger files; archived results are restored)."""
    me = _set_tier(_context(api_url, config_dir).client(), "premium")
    click.echo(f"You are on the {me['tier']} tier. Any archived results are being restored.")


@click.command()
@client_options
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def downgrade(api_url: str | None, config_dir: Path, yes: bool) -> None:
    """Move to the free tier (results are archived after the retention window)."""
    client = _context(api_url, config_dir).client()
    if client.json("GET", "/api/v1/me")["tier"] == "free":
        click.echo("You are already on the free tier.")
        return
    warning = ("On the free tier, results of your jobs are archived after the retention "
               "window and must be restored (which can take hours) before you can download them.")
    if not yes:
        if not _interactive():
            raise ClientError("downgrade needs confirmation: run it in a terminal, or pass "
                              "--yes to confirm.")
        click.echo(warning)
        click.confirm("Move to the free tier?", abort=True)
    me = _set_tier(client, "free")
    click.echo(f"You are on the {me['tier']} tier; results will be archived after the "
               "retention window.")


def _interactive() -> bool:
    """Someone at a terminal can answer a question (not a script, a pipe or CI)."""
    return Console().is_terminal and sys.stdin is not None and sys.stdin.isatty()


def _set_tier(client: GasClient, tier: str) -> dict[str, Any]:
    me: dict[str, Any] = client.json("POST", "/api/v1/me/tier", json={"tier": tier})
    return me
