// docsort review: keyboard shortcuts and the image view switch. The pages work without it.
(function () {
  "use strict";

  function typing(event) {
    var t = event.target;
    if (!t) return false;
    var tag = t.tagName;
    return tag === "TEXTAREA" || tag === "SELECT" || t.isContentEditable ||
      (tag === "INPUT" && !["radio", "checkbox", "button", "submit"].includes(t.type));
  }

  function plainKey(event) {
    return !(event.ctrlKey || event.metaKey || event.altKey);
  }

  // ---- item page -------------------------------------------------------------------------------
  function setupItem(form) {
    var decideBtn = document.getElementById("decide-btn");
    var rejectBtn = document.getElementById("reject-btn");
    var release = document.getElementById("release-form");
    var viewer = document.getElementById("viewer");
    var predicted = form.dataset.predicted;
    var canDecide = !form.classList.contains("disabled");
    var sent = false;

    function chosen() {
      var checked = form.querySelector("input[name=label]:checked");
      return checked ? checked.value : null;
    }

    function updateButton() {
      var label = chosen();
      var text = label === null ? "Choose a class" : (label === predicted ? "Confirm " + label : "Relabel as " + label);
      decideBtn.firstChild.nodeValue = text + " ";
      decideBtn.classList.toggle("relabel", label !== null && label !== predicted);
    }

    function submit(button) {
      if (sent || !canDecide) return;
      sent = true;
      form.requestSubmit(button);
    }

    form.addEventListener("submit", function () {
      sent = true;
      window.setTimeout(function () { decideBtn.disabled = true; rejectBtn.disabled = true; }, 0);
    });
    form.addEventListener("change", updateButton);

    function go(url) {
      if (!url) return;
      if (release && canDecide && !sent) {  // let go of this page so a colleague can take it
        release.querySelector("input[name=next]").value = url;
        sent = true;
        release.submit();
      } else {
        window.location.href = url;
      }
    }

    function setView(view) {
      viewer.dataset.view = view;
      viewer.querySelectorAll(".seg-btn").forEach(function (b) { b.classList.toggle("on", b.dataset.view === view); });
    }
    viewer.querySelectorAll(".seg-btn").forEach(function (b) {
      b.addEventListener("click", function () { setView(b.dataset.view); });
    });
    var views = ["both", "page", "cam"];

    var prev = document.getElementById("prev-link");
    var next = document.getElementById("next-link");
    var queue = document.querySelector("a.crumb");
    [prev, next, queue].forEach(function (a) {
      if (a) a.addEventListener("click", function (e) { e.preventDefault(); go(a.getAttribute("href")); });
    });

    document.addEventListener("keydown", function (event) {
      if (!plainKey(event)) return;
      if (typing(event)) {
        if (event.key === "Escape") event.target.blur();
        return;
      }
      var key = event.key;
      if (/^[0-9]$/.test(key)) {
        var row = form.querySelector('.class-row[data-key="' + key + '"] input');
        if (row && canDecide) { row.checked = true; updateButton(); event.preventDefault(); }
      } else if (key === "Enter") {
        if (chosen() !== null) { event.preventDefault(); submit(decideBtn); }
      } else if (key === "r" || key === "R") {
        event.preventDefault(); submit(rejectBtn);
      } else if (key === "j" || key === "J") {
        event.preventDefault(); go(next && next.getAttribute("href"));
      } else if (key === "k" || key === "K") {
        event.preventDefault(); go(prev && prev.getAttribute("href"));
      } else if (key === "q" || key === "Q") {
        event.preventDefault(); go(queue && queue.getAttribute("href"));
      } else if (key === "v" || key === "V") {
        event.preventDefault(); setView(views[(views.indexOf(viewer.dataset.view) + 1) % views.length]);
      }
    });
    updateButton();
  }

  // ---- queue page ------------------------------------------------------------------------------
  function setupQueue(table) {
    var rows = Array.prototype.slice.call(table.querySelectorAll("tbody tr"));
    var at = 0;
    function select(i) {
      if (!rows.length) return;
      at = Math.max(0, Math.min(rows.length - 1, i));
      rows.forEach(function (r, n) { r.classList.toggle("selected", n === at); });
      rows[at].scrollIntoView({ block: "nearest" });
    }
    rows.forEach(function (r, n) {
      r.addEventListener("click", function (e) {
        if (e.target.closest("a")) return;
        select(n); window.location.href = r.dataset.href;
      });
    });
    document.addEventListener("keydown", function (event) {
      if (!plainKey(event) || typing(event)) return;
      if (event.key === "j" || event.key === "J") { event.preventDefault(); select(at + 1); }
      else if (event.key === "k" || event.key === "K") { event.preventDefault(); select(at - 1); }
      else if (event.key === "Enter" || event.key === "o") {
        if (rows.length) { event.preventDefault(); window.location.href = rows[at].dataset.href; }
      }
    });
    select(0);
  }

  var form = document.getElementById("decide-form");
  if (form) setupItem(form);
  var table = document.querySelector("table.queue");
  if (table) setupQueue(table);
  document.documentElement.dataset.keys = "ready";  // shortcuts are live (tests wait for this)
})();
