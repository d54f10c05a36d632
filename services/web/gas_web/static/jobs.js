// Jobs page: while any job is pending or running, refresh the table every few seconds.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const INTERVAL_MS = 3000;
  async function refresh() {
    const body = document.getElementById("jobs-body");
    if (!body || body.dataset.active !== "true" || document.hidden) return;
    try {
      const response = await fetch(window.location.href, { credentials: "same-origin",
                                                           headers: { "Accept": "text/html" } });
      if (!response.ok) return;
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = page.getElementById("jobs-body");
      if (fresh) {
        body.replaceWith(fresh);
        window.gas.localizeTimes(fresh);
        window.gas.initProgress(fresh);
      }
    } catch (error) {
      // Offline for a moment: try again next time.
    }
  }
  setInterval(refresh, INTERVAL_MS);
});
