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

  // A control (link, button, field, focusable row) has the focus: Enter and Space are its own, and the
  // decision keys (Enter, R) do nothing until Esc hands the keys back to the page.
  var CONTROLS = "a[href], button, input, select, textarea, summary, [tabindex], [contenteditable]";
  function focusedControl() {
    var a = document.activeElement;
    if (!a || a === document.body || a === document.documentElement) return null;
    return a.matches(CONTROLS) ? a : null;
  }

  function showFocusState() {
    var control = focusedControl();
    document.documentElement.dataset.focus = control ? "control" : "page";
    var note = document.getElementById("keys-state");
    if (note) {
      note.textContent = control
        ? "A control has the focus: Enter and Space act on it; decision keys are off. Esc: back to the keys."
        : "Keys act on this page.";
    }
  }
  document.addEventListener("focusin", showFocusState);
  document.addEventListener("focusout", function () { window.setTimeout(showFocusState, 0); });


  // ---- the zoomable viewer: fit width or height, zoom, pan; the view remembered between items -----
  var VIEW_KEY = "docsort.review.view";
  function loadView() {
    try { return JSON.parse(window.localStorage.getItem(VIEW_KEY)) || {}; } catch (e) { return {}; }
  }
  function saveView(view) {
    try { window.localStorage.setItem(VIEW_KEY, JSON.stringify(view)); } catch (e) { /* private mode */ }
  }

  function setupZoom(viewer) {
    var state = loadView();
    state.zoom = state.zoom || "width";  // "width", "height" or "scale" (then state.scale: 1 = full resolution)
    var boxes = Array.prototype.slice.call(viewer.querySelectorAll(".zoom-box"));

    function visible() { return boxes.filter(function (b) { return b.offsetParent !== null; }); }
    function scaleOf(box) {
      var img = box.querySelector("img");
      if (!img.naturalWidth) return 1;
      if (state.zoom === "width") return box.clientWidth / img.naturalWidth;
      if (state.zoom === "height") return box.clientHeight / img.naturalHeight;
      return state.scale || 1;
    }
    function apply() {
      boxes.forEach(function (box) {
        var img = box.querySelector("img");
        if (!img.naturalWidth || box.offsetParent === null) return;
        var scale = scaleOf(box);
        img.style.width = Math.round(img.naturalWidth * scale) + "px";
        img.style.height = Math.round(img.naturalHeight * scale) + "px";
        viewer.dataset.scale = scale.toFixed(2);
      });
      viewer.dataset.zoom = state.zoom;
      viewer.querySelectorAll("[data-zoom]").forEach(function (b) {
        if (b.tagName === "BUTTON") b.classList.toggle("on", b.dataset.zoom === state.zoom || (state.zoom === "scale" && b.dataset.zoom === "full" && state.scale === 1));
      });
      saveView(state);
    }
    function zoom(how) {
      var box = visible()[0];
      var current = box ? scaleOf(box) : 1;
      if (how === "width" || how === "height") { state.zoom = how; }
      else if (how === "full") { state.zoom = "scale"; state.scale = 1; }
      else { state.zoom = "scale"; state.scale = Math.min(8, Math.max(0.1, current * (how === "in" ? 1.25 : 0.8))); }
      apply();
    }
    function pan(dx, dy) { visible().forEach(function (b) { b.scrollBy(dx, dy); }); }

    boxes.forEach(function (box) {
      var img = box.querySelector("img");
      img.addEventListener("load", apply);  // also when another image is put in (a page, its original)
      if (img.complete) apply();
      var drag = null;
      box.addEventListener("mousedown", function (e) {
        if (e.button !== 0) return;
        drag = { x: e.clientX, y: e.clientY }; box.classList.add("dragging"); e.preventDefault();
      });
      window.addEventListener("mousemove", function (e) {
        if (!drag) return;
        pan(drag.x - e.clientX, drag.y - e.clientY); drag = { x: e.clientX, y: e.clientY };
      });
      window.addEventListener("mouseup", function () { drag = null; box.classList.remove("dragging"); });
      box.addEventListener("wheel", function (e) {
        if (!e.ctrlKey) return;  // a plain wheel scrolls (pans); Ctrl+wheel zooms
        e.preventDefault(); zoom(e.deltaY < 0 ? "in" : "out");
      }, { passive: false });
    });
    viewer.querySelectorAll("button[data-zoom]").forEach(function (b) {
      b.addEventListener("click", function () { zoom(b.dataset.zoom); });
    });
    window.addEventListener("resize", apply);
    var keys = { w: "width", W: "width", h: "height", H: "height", f: "full", F: "full", "+": "in", "=": "in", "-": "out" };
    var arrows = { ArrowLeft: [-80, 0], ArrowRight: [80, 0], ArrowUp: [0, -80], ArrowDown: [0, 80] };
    return {
      apply: apply,
      zoom: zoom,
      key: function (event) {
        if (keys[event.key]) { event.preventDefault(); zoom(keys[event.key]); return true; }
        if (arrows[event.key]) { event.preventDefault(); pan(arrows[event.key][0], arrows[event.key][1]); return true; }
        return false;
      },
      state: state,
    };
  }



  // ---- the original: the page of the received file at its scanned resolution, on demand (O) --------
  function setupOriginal(viewer, zoomer) {
    var img = viewer.querySelector("[data-testid=page-image]");
    var note = document.getElementById("original-note");
    var button = document.getElementById("original-btn");
    if (!img || !note || !button) return null;
    var preview = null;  // the preview's address while the original is shown
    var loading = false;
    function say(text, error) {
      note.hidden = !text; note.textContent = text || ""; note.classList.toggle("error", !!error);
    }
    function shown(source) {
      viewer.dataset.source = source;
      button.setAttribute("aria-pressed", source === "original" ? "true" : "false");
    }
    function back() {
      if (preview) { img.src = preview; preview = null; }
      shown("preview"); say("");
    }
    function load() {
      if (loading) return;
      if (preview) { back(); return; }
      var id = viewer.dataset.item;
      loading = true; shown("loading"); say("Loading the original page at its scanned resolution…");
      fetch("/items/" + id + "/original.jpg", { credentials: "same-origin" })
        .then(function (r) {
          if (r.ok) return r.blob();
          return r.json().catch(function () { return {}; }).then(function (d) {
            throw new Error(d.detail || "The original cannot be shown (HTTP " + r.status + ").");
          });
        })
        .then(function (blob) {
          if (viewer.dataset.item !== id) return;  // another page was opened meanwhile
          preview = img.src;
          img.addEventListener("load", function () {
            shown("original");
            say("Original: " + img.naturalWidth + " × " + img.naturalHeight + " px, as scanned. O: back to the preview.");
            zoomer.zoom("full");
          }, { once: true });
          img.src = URL.createObjectURL(blob);
        })
        .catch(function (e) { shown("preview"); say(e.message, true); })
        .then(function () { loading = false; });
    }
    button.addEventListener("click", load);
    viewer.addEventListener("pagechange", function () { preview = null; shown("preview"); say(""); });
    shown("preview");
    return { toggle: load };
  }

  // ---- the CAM: cell votes drawn on a canvas over the page, fixed scale, opacity, runner-up ------
  var RAMP = [[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]];
  var POINTS_AT = 0.5;  // a map whose strongest cell votes less than this points nowhere: hidden
  function rampColour(v) {
    var x = Math.max(0, Math.min(1, v)) * (RAMP.length - 1);
    var i = Math.min(RAMP.length - 2, Math.floor(x));
    var f = x - i;
    return RAMP[i].map(function (c, k) { return Math.round(c + f * (RAMP[i + 1][k] - c)); });
  }
  function setupCam(canvas) {
    var label = document.getElementById("cam-class");
    var note = document.getElementById("cam-note");
    var opacity = document.getElementById("cam-opacity");
    var runner = document.getElementById("cam-runner-up");
    var data = null;
    var showRunnerUp = false;

    function runnerUp() {  // the class with the model's second score for the page opened
      if (canvas.dataset.runnerUp) return canvas.dataset.runnerUp;
      var best = null, bestMean = -1;
      Object.keys(data.votes).forEach(function (name) {
        if (name === canvas.dataset.predicted) return;
        var rows = data.votes[name], sum = 0;
        rows.forEach(function (r) { r.forEach(function (v) { sum += v; }); });
        if (sum > bestMean) { bestMean = sum; best = name; }
      });
      return best;
    }
    function draw() {
      if (!data) return;
      var name = showRunnerUp ? runnerUp() : canvas.dataset.predicted;
      var votes = data.votes[name] || [];
      canvas.width = data.cols; canvas.height = data.rows;
      var ctx = canvas.getContext("2d");
      var img = ctx.createImageData(data.cols, data.rows);
      var peak = 0;
      votes.forEach(function (row, r) {
        row.forEach(function (v, c) {
          var rgb = rampColour(v), at = 4 * (r * data.cols + c);
          img.data[at] = rgb[0]; img.data[at + 1] = rgb[1]; img.data[at + 2] = rgb[2];
          img.data[at + 3] = Math.round(255 * Math.max(0, Math.min(1, v)));
          peak = Math.max(peak, v);
        });
      });
      ctx.putImageData(img, 0, 0);
      label.textContent = name;
      runner.setAttribute("aria-pressed", showRunnerUp ? "true" : "false");
      var points = peak >= POINTS_AT;
      canvas.classList.toggle("hidden-map", !points);
      canvas.dataset.peak = peak.toFixed(3);
      canvas.dataset.state = points ? "shown" : "hidden";
      note.hidden = points;
      note.textContent = points ? "" : "The map points nowhere on this page: no cell votes " +
        Math.round(100 * POINTS_AT) + "% or more for " + name + " (strongest " + Math.round(100 * peak) + "%).";
    }
    function load(src) {
      if (src) canvas.dataset.src = src;
      fetch(canvas.dataset.src, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (d) { data = d; draw(); });
    }
    opacity.addEventListener("input", function () { canvas.style.opacity = opacity.value / 100; });
    runner.addEventListener("click", function () { showRunnerUp = !showRunnerUp; draw(); });
    load();
    return { load: load, toggle: function () { showRunnerUp = !showRunnerUp; draw(); } };
  }

  // ---- a document under review: its page strip, split points and a class per part -------------
  function setupDocument(strip, form, viewer, camView) {
    var items = Array.prototype.slice.call(strip.querySelectorAll(".strip-page"));
    var pages = items.map(function (li) { return { n: parseInt(li.dataset.page, 10), id: li.dataset.id }; });
    var field = document.getElementById("parts-field");
    var summary = document.getElementById("parts-summary");
    var starts = {};  // page number -> class of the part starting there
    starts[pages[0].n] = strip.dataset.label;
    var at = Math.max(0, pages.findIndex(function (p) { return p.n === parseInt(strip.dataset.current, 10); }));

    function startOf(i) { for (var k = i; k >= 0; k--) if (pages[k].n in starts) return k; return 0; }
    function parts() {
      var out = [];
      pages.forEach(function (p) {
        if (p.n in starts) out.push({ pages: [], label: starts[p.n] });
        out[out.length - 1].pages.push(p.n);
      });
      return out;
    }
    function render() {
      var start = startOf(at);
      items.forEach(function (li, i) {
        li.querySelector(".thumb").classList.toggle("current", i === at);
        var cut = li.querySelector(".cut-btn");
        if (cut) cut.setAttribute("aria-pressed", pages[i].n in starts ? "true" : "false");
        li.querySelector(".part-chip").textContent = pages[i].n in starts ? starts[pages[i].n] : "";
      });
      var all = parts();
      field.value = JSON.stringify(all);
      summary.textContent = all.length === 1 ? "one document" : all.length + " documents";
      var radio = form.querySelector('input[name=label][value="' + CSS.escape(starts[pages[start].n]) + '"]');
      if (radio) radio.checked = true;
    }
    function show(i) {
      at = Math.max(0, Math.min(pages.length - 1, i));
      var id = pages[at].id;
      var img = viewer.querySelector("[data-testid=page-image]");
      var cam = viewer.querySelector("[data-testid=cam-image]");
      if (img) img.src = "/items/" + id + "/page.webp";
      if (cam && camView) { cam.src = "/items/" + id + "/page.webp"; camView.load("/items/" + id + "/cam.json"); }
      else if (cam) cam.src = "/items/" + id + "/cam.png";
      viewer.dataset.page = pages[at].n;
      viewer.dataset.item = id;
      viewer.dispatchEvent(new Event("pagechange"));
      var pageOf = document.getElementById("page-of");
      if (pageOf) pageOf.textContent = "page " + pages[at].n + " of " + pageOf.dataset.of;
      render();
    }
    function toggle(i) {
      if (i <= 0) return;
      var n = pages[i].n;
      if (n in starts) delete starts[n]; else starts[n] = starts[pages[startOf(i)].n];
      render();
    }
    function move(step) {  // the split that starts the current part, one page earlier or later
      var s = startOf(at);
      var to = s + step;
      if (s === 0 || to <= 0 || to >= pages.length || pages[to].n in starts) return;
      if (step < 0 && startOf(to) !== startOf(s - 1)) return;
      starts[pages[to].n] = starts[pages[s].n];
      delete starts[pages[s].n];
      render();
    }
    items.forEach(function (li, i) {
      li.querySelector(".thumb").addEventListener("click", function () { show(i); });
      var cut = li.querySelector(".cut-btn");
      if (cut) cut.addEventListener("click", function () { toggle(i); });
    });
    form.addEventListener("change", function (e) {
      if (e.target.name === "label") { starts[pages[startOf(at)].n] = e.target.value; render(); }
    });
    show(at);
    return {
      count: function () { return parts().length; },
      key: function (event) {
        var k = event.key;
        if (k === "PageDown" || k === ".") { event.preventDefault(); show(at + 1); return true; }
        if (k === "PageUp" || k === ",") { event.preventDefault(); show(at - 1); return true; }
        if (k === "s" || k === "S") { event.preventDefault(); toggle(at); return true; }
        if (k === "[" || k === "]") { event.preventDefault(); move(k === "[" ? -1 : 1); return true; }
        return false;
      },
    };
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

    var strip = document.getElementById("strip");
    var doc = null;

    function updateButton() {
      var label = chosen();
      if (doc && doc.count() > 1) {
        decideBtn.firstChild.nodeValue = "Deliver " + doc.count() + " documents ";
        decideBtn.classList.add("relabel");
        return;
      }
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

    var zoomer = setupZoom(viewer);
    var original = setupOriginal(viewer, zoomer);
    var camCanvas = document.getElementById("cam-canvas");
    var camView = camCanvas ? setupCam(camCanvas) : null;
    function setView(view) {
      viewer.dataset.view = view;
      viewer.querySelectorAll(".seg-btn[data-view]").forEach(function (b) { b.classList.toggle("on", b.dataset.view === view); });
      zoomer.state.view = view;
      zoomer.apply();
    }
    viewer.querySelectorAll(".seg-btn[data-view]").forEach(function (b) {
      b.addEventListener("click", function () { setView(b.dataset.view); });
    });
    var views = ["both", "page", "cam"];

    var prev = document.getElementById("prev-link");
    var next = document.getElementById("next-link");
    var queue = document.querySelector("a.crumb");
    [prev, next, queue].forEach(function (a) {
      if (a) a.addEventListener("click", function (e) { e.preventDefault(); go(a.getAttribute("href")); });
    });

    var undoForm = document.getElementById("undo-form");
    if (undoForm) {  // offered for the rest of the undo window only
      window.setTimeout(function () { undoForm.remove(); }, 1000 * parseFloat(undoForm.dataset.secondsLeft));
    }

    document.addEventListener("keydown", function (event) {
      if (!plainKey(event)) return;
      if (typing(event)) {
        if (event.key === "Escape") event.target.blur();
        return;
      }
      var key = event.key;
      var control = focusedControl();
      if (key === "Escape" && control) { control.blur(); showFocusState(); return; }
      if (control && (key === "Enter" || key === " ")) {
        if (key === "Enter" && control.type === "radio") {  // a class's action is to be chosen, never to send
          event.preventDefault(); control.checked = true; updateButton();
        }
        return;  // the focused control's own action
      }
      if (/^[0-9]$/.test(key)) {
        var row = form.querySelector('.class-row[data-key="' + key + '"] input');
        if (row && canDecide) {
          row.checked = true; row.dispatchEvent(new Event("change", { bubbles: true })); event.preventDefault();
        }
      } else if (key === "Enter") {
        if (chosen() !== null) { event.preventDefault(); submit(decideBtn); }
      } else if (key === "r" || key === "R") {
        if (!control) { event.preventDefault(); submit(rejectBtn); }
      } else if (key === "u" || key === "U") {
        if (undoForm && document.body.contains(undoForm) && !sent) { event.preventDefault(); sent = true; undoForm.submit(); }
      } else if (key === "j" || key === "J") {
        event.preventDefault(); go(next && next.getAttribute("href"));
      } else if (key === "k" || key === "K") {
        event.preventDefault(); go(prev && prev.getAttribute("href"));
      } else if (key === "q" || key === "Q") {
        event.preventDefault(); go(queue && queue.getAttribute("href"));
      } else if (key === "v" || key === "V") {
        event.preventDefault(); setView(views[(views.indexOf(viewer.dataset.view) + 1) % views.length]);
      } else if ((key === "o" || key === "O") && original) {
        event.preventDefault(); original.toggle();
      } else if ((key === "x" || key === "X") && camView) {
        event.preventDefault(); camView.toggle();
      } else if (!(doc && doc.key(event))) {
        zoomer.key(event);
      }
    });
    if (zoomer.state.view) setView(zoomer.state.view);  // the view chosen on the last item
    if (strip) {
      doc = setupDocument(strip, form, viewer, camView);
      strip.addEventListener("click", function () { window.setTimeout(updateButton, 0); });
      document.addEventListener("keyup", updateButton);
    }
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
      r.addEventListener("focus", function () { select(n); });
    });
    document.addEventListener("keydown", function (event) {
      if (!plainKey(event) || typing(event)) return;
      var control = focusedControl();
      var onRow = control && control.parentNode && control.parentNode.parentNode === table;
      if (event.key === "j" || event.key === "J") { event.preventDefault(); select(at + 1); if (onRow) rows[at].focus(); }
      else if (event.key === "k" || event.key === "K") { event.preventDefault(); select(at - 1); if (onRow) rows[at].focus(); }
      else if (event.key === "Enter" || event.key === "o") {
        if (control && !onRow) return;  // a focused link, button or field does its own action
        if (rows.length) { event.preventDefault(); window.location.href = rows[at].dataset.href; }
      }
    });
    var remembered = window.sessionStorage.getItem("docsort.queue.row");
    var back = rows.findIndex(function (r) { return r.dataset.id === remembered; });
    select(back >= 0 ? back : 0);
    var every = parseInt(table.dataset.refresh || "0", 10);
    if (every > 0) {  // reload the queue, unless the operator is busy in a field of the page
      window.setInterval(function () {
        if (document.hidden || typing({ target: document.activeElement })) return;
        if (rows.length) window.sessionStorage.setItem("docsort.queue.row", rows[at].dataset.id);
        window.location.reload();
      }, every * 1000);
    }
  }

  // ---- grid review -----------------------------------------------------------------------------
  function setupGrid(grid) {
    var boxes = Array.prototype.slice.call(grid.querySelectorAll("input[name=ids]"));
    var counter = document.getElementById("chosen-count");
    function count() { counter.textContent = boxes.filter(function (b) { return b.checked; }).length; }
    grid.addEventListener("change", count);
    document.addEventListener("keydown", function (event) {
      if (!plainKey(event) || typing(event)) return;
      var control = focusedControl();
      if (control && control.type === "checkbox" && event.key === "Enter") {  // never sends: chooses
        event.preventDefault(); control.checked = !control.checked; count(); return;
      }
      if (control && (event.key === "Enter" || event.key === " ")) return;
      var k = event.key.toLowerCase();
      if (k === "a" || k === "n") {
        event.preventDefault(); boxes.forEach(function (b) { b.checked = k === "a"; }); count();
      } else if (k === "c" && !control) {
        event.preventDefault(); grid.requestSubmit(document.getElementById("bulk-confirm"));
      } else if (k === "u") {
        var undoForm = document.getElementById("undo-form");
        if (undoForm) { event.preventDefault(); undoForm.submit(); }
      }
    });
    count();
  }

  var gridForm = document.getElementById("grid-form");
  if (gridForm) setupGrid(gridForm);
  var form = document.getElementById("decide-form");
  if (form) setupItem(form);
  var table = document.querySelector("table.queue");
  if (table) setupQueue(table);
  showFocusState();
  document.documentElement.dataset.keys = "ready";  // shortcuts are live (tests wait for this)
})();
