// Annotate page: check the size cap, get a presigned POST, upload straight to storage with a
// progress bar (XHR: fetch has no upload progress), then submit and go to the job page.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("annotate-form");
  if (!form) return;
  const fileInput = document.getElementById("file");
  const errorBox = document.getElementById("annotate-error");
  const button = document.getElementById("submit-button");
  const track = document.getElementById("upload-progress");
  const bar = document.getElementById("upload-bar");
  const status = document.getElementById("upload-status");
  const maxBytes = parseInt(form.dataset.maxBytes, 10);

  function showError(message) {
    errorBox.textContent = message;
    errorBox.classList.remove("d-none");
    button.disabled = false;
    track.classList.add("d-none");
    status.textContent = "";
  }
  function clearError() {
    errorBox.textContent = "";
    errorBox.classList.add("d-none");
  }
  function checkFile() {
    clearError();
    const file = fileInput.files[0];
    if (!file) return "Choose a VCF file first.";
    if (!/\.(vcf|vcf\.gz|vcf\.bgz|bcf)$/i.test(file.name)) {
      return "GAS annotates VCF files: choose a .vcf, .vcf.gz or .bcf file.";
    }
    if (file.size === 0) return "This file is empty.";
    if (file.size > maxBytes) {
      return `This file is ${(file.size / 1048576).toFixed(1)} MB; your ${form.dataset.tier} ` +
        `account accepts files up to ${form.dataset.maxLabel}.`;
    }
    return null;
  }
  async function api(method, url, body) {
    const response = await fetch(url, {
      method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": window.gas.csrfToken(),
                 "Accept": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.detail || `The server answered ${response.status}.`);
    return data;
  }
  function upload(target, file) {
    return new Promise((resolve, reject) => {
      const data = new FormData();
      for (const [name, value] of Object.entries(target.fields)) data.append(name, value);
      data.append("file", file);  // S3 requires the file to be the last field
      const xhr = new XMLHttpRequest();
      xhr.open("POST", target.url);
      xhr.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable) window.gas.setProgress(bar, event.loaded / event.total);
      });
      xhr.addEventListener("load", () => {
        if (xhr.status >= 200 && xhr.status < 300) resolve();
        else reject(new Error(`The upload was refused (HTTP ${xhr.status}).`));
      });
      xhr.addEventListener("error", () => reject(new Error("The upload failed: network error.")));
      xhr.send(data);
    });
  }

  fileInput.addEventListener("change", () => {
    const problem = checkFile();
    if (problem && fileInput.files[0]) showError(problem);
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const problem = checkFile();
    if (problem) { showError(problem); return; }
    const file = fileInput.files[0];
    button.disabled = true;
    track.classList.remove("d-none");
    window.gas.setProgress(bar, 0);
    try {
      status.textContent = "Preparing upload…";
      const created = await api("POST", "/api/v1/jobs",
        { file_name: file.name, assembly: document.getElementById("assembly").value });
      status.textContent = "Uploading…";
      await upload(created.upload, file);
      status.textContent = "Checking the file…";
      const job = await api("POST", `/api/v1/jobs/${encodeURIComponent(created.job_id)}/submit`);
      status.textContent = "Submitted.";
      window.location.assign(`/jobs/${encodeURIComponent(job.job_id)}`);
    } catch (error) {
      showError(error.message);
    }
  });
});
