// A job's page follows the job's events (GET /jobs/{id}/events, with the session cookie): its
// status, the model's log lines and streamed chunks as they come; at `done` the page loads
// again, with the result. The browser's EventSource resumes by itself after the last event.
const section = document.querySelector("[data-job]");
if (section) {
  const source = new EventSource(`/jobs/${section.dataset.job}/events`);
  const status = document.getElementById("status");
  const output = document.getElementById("output");
  const log = document.getElementById("log");
  const ended = section.dataset.ended === "true";
  source.addEventListener("status", (event) => {
    status.textContent = JSON.parse(event.data).status;
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
