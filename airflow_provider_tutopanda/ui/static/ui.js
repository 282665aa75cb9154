// Regenerate: start a new run of the DAG through Airflow's own REST API, as the signed-in user
// (the api-server reads the UI's session cookie and checks the user may trigger the DAG), with
// the run's parameters and refresh_jobs naming the one job to make again.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button.regenerate");
  if (!button) return;
  const form = document.getElementById("regenerate");
  const statusLine = document.getElementById("regenerate-status");
  const conf = JSON.parse(form.dataset.conf);
  conf.refresh = false;
  conf.refresh_jobs = [button.dataset.key];
  button.disabled = true;
  statusLine.textContent = `Starting a run that makes ${button.dataset.key} again…`;
  try {
    const answer = await fetch(form.dataset.api, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ logical_date: null, conf, note: `Regenerate ${button.dataset.key}` }),
    });
    const body = await answer.json().catch(() => ({}));
    if (!answer.ok) throw new Error(body.detail ? JSON.stringify(body.detail) : answer.statusText);
    const link = document.createElement("a");
    link.href = form.dataset.gallery + encodeURIComponent(body.dag_run_id);
    link.textContent = body.dag_run_id;
    link.id = "regenerated-run";
    link.dataset.runId = body.dag_run_id;
    statusLine.textContent = "Started run ";
    statusLine.append(link);
  } catch (error) {
    statusLine.textContent = `Airflow refused: ${error.message}`;
    button.disabled = false;
  }
});
