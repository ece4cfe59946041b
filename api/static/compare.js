// A comparison's page follows each of its jobs' events (GET /jobs/{id}/events, with the session
// cookie, as a job's page does): its status as it changes; when every job has ended, the page
// loads again, with their results, files and run times.
const comparison = document.querySelector("[data-compare]");
if (comparison && comparison.dataset.ended !== "true") {
  const sections = [...comparison.querySelectorAll("[data-job-id]")];
  let running = sections.length;
  for (const section of sections) {
    const status = section.querySelector("[data-status]");
    const source = new EventSource(`/jobs/${section.dataset.jobId}/events`);
    source.addEventListener("status", (event) => {
      status.textContent = JSON.parse(event.data).status;
    });
    source.addEventListener("done", () => {
      source.close();
      running -= 1;
      if (running === 0) location.reload();
    });
  }
}
