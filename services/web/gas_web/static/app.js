// Small progressive enhancements shared by every page. The pages work without them.
"use strict";

window.gas = {
  csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  },
  // Progress bars get their width from data-progress (0..1): the CSP allows no inline styles.
  setProgress(bar, fraction) {
    const percent = Math.max(0, Math.min(100, Math.round(fraction * 100)));
    bar.style.width = percent + "%";
    bar.textContent = percent + "%";
    const track = bar.closest(".progress");
    if (track) track.setAttribute("aria-valuenow", String(percent));
  },
  localizeTimes(root) {
    for (const el of (root || document).querySelectorAll("time[datetime]")) {
      const value = el.getAttribute("datetime");
      if (!value) continue;
      const date = new Date(value);
      if (!isNaN(date)) {
        el.title = el.textContent.trim();
        el.textContent = date.toLocaleString();
      }
    }
  },
  initProgress(root) {
    for (const bar of (root || document).querySelectorAll(".progress-bar[data-progress]")) {
      window.gas.setProgress(bar, parseFloat(bar.dataset.progress) || 0);
    }
  },
  // The results page shows its rows first; the filtered set's summary (a whole-set scan) is
  // fetched on its own and put in its place. Without script, the page links to it inline.
  async loadSummaries(root) {
    for (const slot of (root || document).querySelectorAll("[data-summary-src]")) {
      const status = slot.querySelector("#summary-status");
      try {
        const response = await fetch(slot.dataset.summarySrc, {
          credentials: "same-origin", headers: { Accept: "text/html" } });
        if (!response.ok) throw new Error("HTTP " + response.status);
        const holder = document.createElement("div");
        holder.innerHTML = await response.text();
        const summary = holder.querySelector("#filtered-summary");
        if (!summary) throw new Error("no summary in the response");
        slot.replaceWith(summary);
      } catch (error) {
        if (status) status.textContent = "The summary could not be loaded (" + error.message +
          "); reload the page to try again.";
      }
    }
  },
};

document.addEventListener("DOMContentLoaded", () => {
  window.gas.localizeTimes();
  window.gas.initProgress();
  window.gas.loadSummaries();
});
