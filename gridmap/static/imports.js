/* The import page's progress bar: polls the upload's job state and reloads the page when the job
   is over, so the dry run's findings or the import's result are drawn by the server. */
(function () {
  "use strict";
  var job = document.getElementById("job");
  if (!job) return;
  var bar = document.getElementById("progress"), text = document.getElementById("job-text");
  function poll() {
    fetch(job.getAttribute("data-status"), {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (r) { return r.json(); })
      .then(function (s) {
        if (s.status !== "queued" && s.status !== "running") { window.location.reload(); return; }
        var words = job.getAttribute("data-stage-" + s.stage);
        if (s.total) {
          bar.max = s.total;
          bar.value = s.done || 0;
          text.textContent = (words || "") + " " + (s.done || 0).toLocaleString() + " / " + s.total.toLocaleString();
        } else if (words) {
          text.textContent = words;
        }
        window.setTimeout(poll, 400);
      })
      .catch(function () { window.setTimeout(poll, 2000); });
  }
  window.setTimeout(poll, 200);
})();
