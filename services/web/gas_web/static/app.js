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
};

document.addEventListener("DOMContentLoaded", () => {
  window.gas.localizeTimes();
  window.gas.initProgress();
});
