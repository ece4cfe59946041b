// A job's page follows the job's events (GET /jobs/{id}/events, with the session cookie): its
// status (and a batch's items done), the model's log lines and streamed chunks as they come; at
// `done` the page loads again, with the result, its files and items. The browser's EventSource
// resumes by itself after the last event.
const section = document.querySelector("[data-job]");
if (section) {
  const source = new EventSource(`/jobs/${section.dataset.job}/events`);
  const status = document.getElementById("status");
  const output = document.getElementById("output");
  const log = document.getElementById("log");
  const progress = document.getElementById("items-progress");
  const itemsDone = document.getElementById("items-done");
  const ended = section.dataset.ended === "true";
  source.addEventListener("status", (event) => {
    const fields = JSON.parse(event.data);
    status.textContent = fields.status;
    if (progress && typeof fields.items_done === "number") {
      progress.value = fields.items_done;
      itemsDone.textContent = String(fields.items_done);
    }
  });
  source.addEventListener("log", (event) => {
    log.textContent += JSON.parse(event.data).line + "\n";
  });
  source.addEventListener("output", (event) => {
    if (ended) return;
    const chunk = JSON.parse(event.data).chunk;
    output.textContent += typeof chunk === "string" ? chunk : JSON.stringify(chunk);
  });
  source.addEventListener("done", () => {
    source.close();
    if (!ended) location.reload();
  });
}
