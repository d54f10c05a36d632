"""Marking this pod costly to delete while it handles a message.

When a Deployment scales in, its ReplicaSet deletes the pods with the lowest
`controller.kubernetes.io/pod-deletion-cost` first. A worker sets its own pod's cost high when
it starts handling a message and back to zero when it is idle again, so KEDA or the HPA
scaling a queue consumer down removes idle pods and leaves a running annotation alone (see
docs/operations.md, "Scaling"). The cost is a preference, not a guarantee: a scale-in larger
than the number of idle pods still deletes busy ones, which then get their grace period and
release their messages (gas_core.worker).

The marking is one HTTP PATCH on our own pod with the pod's service-account token, so this
module uses the standard library instead of the official client (tens of MB and its own
config loading, for one request). The token is re-read for every request because the kubelet
rotates projected tokens. Requests run on a background thread so a slow API server never
delays a message; busy/idle flips that happen before a request goes out are coalesced.
"""

from __future__ import annotations

import json
import ssl
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Final
from urllib.parse import quote

from gas_core.logging import get_logger
from gas_core.settings import GasSettings

DELETION_COST_ANNOTATION: Final = "controller.kubernetes.io/pod-deletion-cost"
# Any int32 works; only the order between pods matters.
BUSY_COST: Final = 1000
IDLE_COST: Final = 0
SERVICE_ACCOUNT_DIR: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount")
REQUEST_TIMEOUT_SECONDS: Final = 5.0
# After a failed request, retry (with doubling) up to this interval while the state is unapplied.
MAX_RETRY_SECONDS: Final = 30.0

log = get_logger("gas.k8s")


class KubernetesApiError(Exception):
    """The API server refused or could not be reached."""


class PodDeletionCostMarker:
    """A `QueueWorker(on_busy_change=...)` hook that sets the pod's deletion cost."""

    def __init__(
        self,
        *,
        api_url: str,
        namespace: str,
        pod_name: str,
        token_path: Path,
        ca_path: Path | None = None,
        busy_cost: int = BUSY_COST,
        idle_cost: int = IDLE_COST,
        retry_seconds: float = 1.0,
    ) -> None:
        self._url = (
            f"{api_url.rstrip('/')}/api/v1/namespaces/{quote(namespace, safe='')}"
            f"/pods/{quote(pod_name, safe='')}"
        )
        self._token_path = token_path
        self._ssl = (
            ssl.create_default_context(cafile=str(ca_path))
            if ca_path is not None and ca_path.is_file()
            else None
        )
        self._costs = {True: busy_cost, False: idle_cost}
        self._retry_seconds = retry_seconds
        self._wanted: bool | None = None
        self._applied: bool | None = None
        self._closed = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="pod-deletion-cost", daemon=True)
        self._thread.start()

    def __call__(self, busy: bool) -> None:
        with self._changed:
            self._wanted = busy
            self._changed.notify_all()

    def close(self, timeout: float = REQUEST_TIMEOUT_SECONDS) -> None:
        """Stop the background thread after it applied the last state (or gave up)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self._thread.join(timeout)

    def wait_applied(self, timeout: float) -> bool:
        """True once the last requested state is on the pod (for tests and shutdown)."""
        with self._changed:
            return self._changed.wait_for(lambda: self._wanted == self._applied, timeout)

    def set_cost(self, cost: int) -> None:
        """PATCH the annotation now (a JSON merge patch touches nothing else on the pod)."""
        body = json.dumps(
            {"metadata": {"annotations": {DELETION_COST_ANNOTATION: str(cost)}}}
        ).encode()
        request = urllib.request.Request(  # noqa: S310 - the URL is the API server, from settings
            self._url,
            data=body,
            method="PATCH",
            headers={
                "Authorization": f"Bearer {self._token_path.read_text().strip()}",
                "Content-Type": "application/merge-patch+json",
                "Accept": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(  # noqa: S310
                request, timeout=REQUEST_TIMEOUT_SECONDS, context=self._ssl
            ) as response:
                response.read()
        except urllib.error.HTTPError as error:
            detail = error.read()[:300].decode(errors="replace")
            raise KubernetesApiError(f"PATCH pod: HTTP {error.code}: {detail}") from error
        except (urllib.error.URLError, OSError) as error:
            raise KubernetesApiError(f"PATCH pod: {error}") from error

    def _run(self) -> None:
        delay = self._retry_seconds
        while True:
            with self._changed:
                self._changed.wait_for(
                    lambda: self._closed or self._wanted != self._applied
                )
                if self._wanted == self._applied:
                    return  # closed with nothing left to apply
                wanted = bool(self._wanted)
            try:
                self.set_cost(self._costs[wanted])
            except (KubernetesApiError, OSError) as error:
                log.warning("pod_deletion_cost_failed", busy=wanted, error=str(error))
                with self._changed:
                    if self._closed:
                        return
                    # Retry later unless the state flips meanwhile (then the new one is tried).
                    self._changed.wait(delay)
                delay = min(delay * 2, MAX_RETRY_SECONDS)
                continue
            delay = self._retry_seconds
            with self._changed:
                self._applied = wanted
                self._changed.notify_all()


def marker_from_settings(
    settings: GasSettings, *, service_account_dir: Path = SERVICE_ACCOUNT_DIR
) -> PodDeletionCostMarker | None:
    """The marker for this pod, or None outside Kubernetes (or with marking not configured).

    The chart sets GAS_POD_NAME/GAS_POD_NAMESPACE from the downward API and mounts the
    service-account token only for services whose pods mark themselves.
    """
    if not (settings.pod_name and settings.pod_namespace):
        return None
    token_path = service_account_dir / "token"
    if not token_path.is_file():
        log.info("pod_deletion_cost_disabled", reason=f"no service-account token at {token_path}")
        return None
    log.info("pod_deletion_cost_enabled", pod=settings.pod_name, namespace=settings.pod_namespace)
    return PodDeletionCostMarker(
        api_url=settings.kubernetes_api_url,
        namespace=settings.pod_namespace,
        pod_name=settings.pod_name,
        token_path=token_path,
        ca_path=service_account_dir / "ca.crt",
    )
