// Job page: follow a pending or running job; reload when it finishes to show its results.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("job");
  if (!root || !["PENDING", "RUNNING"].includes(root.dataset.status)) return;
  const bar = document.getElementById("job-progress-bar");
  const value = document.getElementById("progress-value");
  const label = document.getElementById("progress-label");
  const badge = document.getElementById("job-status");
  const INTERVAL_MS = 2000;

  async function poll() {
    try {
      const response = await fetch(`/api/v1/jobs/${encodeURIComponent(root.dataset.jobId)}`,
        { credentials: "same-origin", headers: { "Accept": "application/json" } });
      if (response.ok) {
        const job = await response.json();
        if (job.status !== root.dataset.status && !["PENDING", "RUNNING"].includes(job.status)) {
          window.location.reload();
          return;
        }
        root.dataset.status = job.status;
        badge.textContent = job.status;
        if (job.status === "RUNNING") {
          badge.className = "badge fs-6 text-bg-primary";
          label.textContent = "Annotating…";
        }
        if (bar) window.gas.setProgress(bar, job.progress);
        if (value) value.textContent = `${Math.round(job.progress * 100)}%`;
      }
    } catch (error) {
      // Offline for a moment: try again.
    }
    setTimeout(poll, INTERVAL_MS);
  }
  setTimeout(poll, INTERVAL_MS);
});
