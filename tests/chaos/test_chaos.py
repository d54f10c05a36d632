"""Chaos: random SIGKILLs of every service while users submit jobs and change tiers at the
edges of the free retention window, then every invariant of the system is checked.

The short profile runs in the normal suite (CI); `make chaos` runs the long one
(GAS_CHAOS_PROFILE=long). GAS_CHAOS_SEED=N repeats a run's random choices (inputs, kill
moments and targets, tier-change offsets; the processes' timing is not reproducible): the
seed is printed first.
"""

from __future__ import annotations

import functools
import io
import os
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from gas_cli.dev import DevStack
from gas_core.jobs import JobRepository, JobStatus
from tests.chaos.invariants import Snapshot, snapshot, unsettled, violations
from tests.chaos.load import (
    ApiUser,
    Submitted,
    calm_results,
    flip_tiers_at_retention_edges,
    make_inputs,
)
from tests.chaos.stack import ChaosStack


@dataclass(frozen=True)
class Profile:
    distinct_valid: int  # distinct valid inputs (each has one calm reference run)
    valid_jobs: int
    bad_jobs: int
    kills: int
    load_seconds: float  # submissions and kills are spread over this long
    settle_seconds: float  # the longest wait for quiescence after the load
    # Per user: the tier it starts with and its tier changes; the last is where it ends.
    tiers: tuple[tuple[str, tuple[str, ...]], ...]


PROFILES = {
    "short": Profile(distinct_valid=4, valid_jobs=8, bad_jobs=2, kills=10, load_seconds=45,
                     settle_seconds=120,
                     tiers=(("free", ("premium", "free")),
                            ("free", ("premium", "free", "premium")),
                            ("premium", ("free",)))),
    "long": Profile(distinct_valid=8, valid_jobs=40, bad_jobs=4, kills=120, load_seconds=300,
                    settle_seconds=300,
                    tiers=(("free", ("premium", "free") * 4),
                           ("free", ("premium", "free") * 3 + ("premium",)),
                           ("premium", ("free", "premium") * 3 + ("free",)),
                           ("free", ("premium",)))),
}
PROFILE_NAME = os.environ.get("GAS_CHAOS_PROFILE", "short")
PROFILE = PROFILES[PROFILE_NAME]
RETENTION_SECONDS = 4

pytestmark = [pytest.mark.e2e, pytest.mark.slow,
              pytest.mark.timeout(600 if PROFILE_NAME == "short" else 2400)]


def test_random_kills_lose_no_job_result_event_or_email(tmp_path: Path) -> None:
    seed = int(os.environ.get("GAS_CHAOS_SEED") or random.SystemRandom().randrange(10**6))
    print(f"\nchaos profile {PROFILE_NAME}, seed {seed} "
          f"(GAS_CHAOS_SEED={seed} repeats its choices)")
    rng = random.Random(seed)
    p = PROFILE

    bundle = DevStack(state_dir=tmp_path, out=io.StringIO()).ensure_reference()
    valid, bad = make_inputs(bundle, tmp_path / "inputs", rng, valid=p.distinct_valid,
                             bad=p.bad_jobs)
    calm = calm_results(valid, bundle, tmp_path)
    stack = ChaosStack(workdir=tmp_path, reference=bundle, retention_seconds=RETENTION_SECONDS)
    stack.start()
    users = [ApiUser(f"chaos{i}", stack.web_url) for i in range(len(p.tiers))]
    try:
        for user, (start_tier, _) in zip(users, p.tiers, strict=True):
            user.call("GET", "/api/v1/me")  # the profile exists (dev login)
            if start_tier != "free":
                user.set_tier(start_tier, stack.now())
        stack.say(f"up: {len(stack.replicas)} replicas; {p.valid_jobs} valid + {p.bad_jobs} bad "
                  f"jobs, {p.kills} kills over {p.load_seconds:.0f}s")
        submitted = _run_load(stack, users, rng, valid=[valid[i % len(valid)]
                                                       for i in range(p.valid_jobs)], bad=bad)
        snap = _wait_for_quiescence(stack, submitted, p.settle_seconds)
        found = violations(stack, snap, submitted, calm)
        _print_summary(stack, snap, submitted, users)
        print(f"service logs: {stack.save_logs(_log_path(tmp_path))}")
        final = {user.name: tiers[-1] for user, (_, tiers) in zip(users, p.tiers, strict=True)}
        found += [f"{name} ends {snap.tiers.get(name)}, expected {tier}"
                  for name, tier in final.items() if snap.tiers.get(name) != tier]
        assert not found, (f"seed {seed}: {len(found)} invariant(s) broken:\n  "
                           + "\n  ".join(found) + "\n" + stack.tail(40))
    finally:
        for user in users:
            user.close()
        stack.stop()
        stack.cleanup()


def _log_path(tmp_path: Path) -> Path:
    # GAS_CHAOS_LOG_DIR=DIR keeps them somewhere lasting; by default the test's tmp_path.
    folder = Path(os.environ.get("GAS_CHAOS_LOG_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "chaos-services.log"


def _run_load(stack: ChaosStack, users: list[ApiUser], rng: random.Random, *, valid: list,
              bad: list) -> list[Submitted]:
    """Submissions, tier changes and kills at once; returns what was submitted."""
    p = PROFILE
    work = [*valid, *bad]
    rng.shuffle(work)
    plan: dict[str, list] = {user.name: [] for user in users}
    for number, item in enumerate(work):
        plan[users[number % len(users)].name].append(
            (rng.uniform(0, p.load_seconds * 0.8), item))
    submitted: list[Submitted] = []
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[BaseException] = []
    began = time.monotonic()

    def guarded(target, *args, **kwargs):  # type: ignore[no-untyped-def]
        def run() -> None:
            try:
                target(*args, **kwargs)
            except BaseException as error:
                errors.append(error)
                stack.say(f"load thread failed: {error!r}")
        return threading.Thread(target=run, daemon=True)

    def submit_all(user: ApiUser) -> None:
        for moment, item in sorted(plan[user.name], key=lambda pair: pair[0]):
            if stop.wait(max(began + moment - time.monotonic(), 0)):
                return
            sub = user.submit(item)
            with lock:
                submitted.append(sub)
            stack.say(f"{user.name} submitted {sub.job_id} ({item.name})")

    submitters = [guarded(submit_all, user) for user in users]
    repository = JobRepository(stack.aws.dynamodb, stack.settings.names.table)

    def completions(user: str) -> list[float]:
        # Read from the table, not through the API: the web may be down right now.
        jobs = repository.list_jobs(user, limit=100).items
        return [job.completed_at.timestamp() for job in jobs
                if job.status is JobStatus.COMPLETED and job.completed_at]

    flippers = [guarded(flip_tiers_at_retention_edges, user,
                        functools.partial(completions, user.name), tiers=list(tiers),
                        retention_seconds=RETENTION_SECONDS, rng=random.Random(rng.random()),
                        clock=stack.now, say=stack.say, stop=stop,
                        spread_seconds=p.load_seconds)
                for user, (_, tiers) in zip(users, p.tiers, strict=True)]
    chaos = guarded(stack.run_chaos, random.Random(rng.random()), kills=p.kills,
                    seconds=p.load_seconds, stop=stop)
    for thread in [*submitters, *flippers, chaos]:
        thread.start()
    for thread in submitters:
        thread.join(timeout=p.load_seconds + 120)
    chaos.join(timeout=p.load_seconds + 10)
    # Tier changes wait for completions; give them the settle time, then stop what is left.
    for thread in flippers:
        thread.join(timeout=max(began + p.load_seconds + p.settle_seconds - time.monotonic(), 1))
    stop.set()
    assert not errors, f"the load itself failed: {errors!r}"
    assert len(submitted) == len(work), "not every job was submitted"
    return submitted


def _wait_for_quiescence(stack: ChaosStack, submitted: list[Submitted],
                         bound: float) -> Snapshot:
    """Poll until nothing is unsettled twice in a row (or the bound passes): every job finished,
    storage where the owner's tier puts it, every queue and outbox empty."""
    deadline = time.monotonic() + bound
    quiet_once = False
    reasons: list[str] = []
    while True:
        snap = snapshot(stack)
        reasons = unsettled(snap, submitted)
        if not reasons:
            if quiet_once:
                stack.say("quiet")
                return snap
            quiet_once = True
        else:
            quiet_once = False
        if time.monotonic() > deadline:
            stack.say(f"not quiet after {bound:.0f}s: {reasons[:10]}")
            return snap
        time.sleep(2)


def _print_summary(stack: ChaosStack, snap: Snapshot, submitted: list[Submitted],
                   users: list[ApiUser]) -> None:
    kills = Counter(kill.label for kill in stack.kills)
    events = Counter(record.get("event") for _, record in stack.records())
    ours = [snap.jobs[s.job_id] for s in submitted if s.job_id in snap.jobs]
    takeovers = {job.job_id: job.attempts for job in ours if job.attempts > 1}
    states = Counter(f"{job.status}/{job.storage}" for job in ours)
    lines = [
        f"kills ({len(stack.kills)}): {dict(sorted(kills.items()))}",
        "  " + ", ".join(f"{k.at:.1f}s {k.label}[{k.pid}]" for k in stack.kills),
        f"restarts: {dict(sorted(stack.restarts.items()))}",
        f"annotator takeovers (jobs claimed more than once): {len(takeovers)} {takeovers}",
        "worker events: " + ", ".join(
            f"{name}={events[name]}" for name in (
                "job_held_by_live_lease", "lease_lost_job_abandoned", "complete_refused_lease_lost",
                "stale_scratch_removed", "outbox_events_republished", "archive_abandoned",
                "archived", "thawed", "thaw_waiting", "restore_requested",
                "expired_restore_requested_again", "email_sent")),
        f"API retries through web restarts: {sum(u.retries for u in users)}",
        f"tier changes: { {u.name: [t for _, t in u.tier_changes] for u in users} }",
        f"jobs per final state: {dict(sorted(states.items()))}",
        f"emails sent: {len(snap.emails)}",
        f"upload reservations of submitted jobs left unconsumed (expire by TTL): "
        f"{len(set(snap.unconsumed) & {s.job_id for s in submitted})}",
    ]
    print("\n== chaos summary ==\n" + "\n".join(lines))
