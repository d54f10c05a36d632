// Job page: follow a pending or running job; reload when it finishes to show its results.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("job");
  if (!root || !["PENDING", "RUNNING"].includes(root.dataset.status)) return;
  const bar = document.getElementById("job-progress-bar");
  const value = document.getElementById("progress-value");
  const label = document.getElementById("progress-label");
  const badge = document.getElementById("job-status");
  const queueInfo = document.getElementById("queue-info");
  const INTERVAL_MS = 2000;

  // "Position 3 in the queue, estimated start ~14:05, finish ~14:07" (the browser's local time).
  function showQueue(job) {
    if (!queueInfo) return;
    if (job.status !== "PENDING" || job.queue_position === null || job.queue_position === undefined) {
      queueInfo.hidden = true;
      return;
    }
    const clock = (iso) => new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    let text = `Position ${job.queue_position + 1} in the queue`;
    if (job.eta) text += `, estimated start ~${clock(job.eta.start)}, finish ~${clock(job.eta.finish)}`;
    queueInfo.textContent = text;
    queueInfo.hidden = false;
  }

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
        showQueue(job);
        if (bar) window.gas.setProgress(bar, job.progress);
        if (value) value.textContent = `${Math.round(job.progress * 100)}%`;
      }
    } catch (error) {
      // Offline for a moment: try again.
    }
    setTimeout(poll, INTERVAL_MS);
  }
  // At once: the queue position and estimate are only in the JSON.
  poll();
});
