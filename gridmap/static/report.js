/* A report's status page: its times in the reader's own time zone (the page says them in UTC). */
(function () {
  "use strict";
  var lang = document.documentElement.lang || undefined;
  document.querySelectorAll("time[datetime]").forEach(function (t) {
    var when = new Date(t.getAttribute("datetime"));
    if (!isNaN(when)) t.textContent = when.toLocaleString(lang, {dateStyle: "medium", timeStyle: "short"});
  });
})();
