// The only script: refresh the overview table in place, and "select all" on the dead-letter list.
(function () {
  var box = document.getElementById("flows");
  if (box) {
    var every = parseInt(box.getAttribute("data-every"), 10) || 5000;
    setInterval(function () {
      fetch(box.getAttribute("data-refresh"), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) { if (html !== null) { box.innerHTML = html; } })
        .catch(function () {});
    }, every);
  }
  var all = document.getElementById("all");
  if (all) {
    all.addEventListener("change", function () {
      document.querySelectorAll("input[name=ids]").forEach(function (c) { c.checked = all.checked; });
    });
  }
})();
