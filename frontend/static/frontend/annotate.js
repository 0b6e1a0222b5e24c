/* The annotation voting page: fetches a task, takes a keyboard-first vote, posts it, shows the next.
 *
 * Plain script, no build step. The server renders the page skeleton and a JSON config
 * (<script id="annotate-config">); everything else comes from the annotate API:
 *   POST {nextUrl}  -> {task, progress, next} or {task: null, done: true, completion, progress}
 *   POST {voteUrl}  -> {ok: true[, feedback: {correct}]}; errors {detail} with 400/403/404/409/410.
 *   POST {replaceUrl} -> the same, replacing the answer to the last task ("back to my last answer").
 *   POST {onboardedUrl} {consent} -> {ok: true}, once the first screen was read.
 * A vote's idempotency key is made once per lease and reused on every retry, so a double press or a
 * retry after a network error records one vote.
 */
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("annotate-config").textContent);
  var $ = function (id) { return document.getElementById(id); };
  var SIDES = ["left", "right"];
  var LABEL = { left: "A", right: "B", tie: "Tie" };

  var els = {
    app: $("annotate-app"),
    loading: $("ann-loading"),
    task: $("ann-task"),
    end: $("ann-end"),
    status: $("ann-status"),
    error: $("ann-error"),
    progressBar: $("ann-progress-bar"),
    progressText: $("ann-progress-text"),
    refImg: $("ann-ref-img"),
    text: $("ann-text"),
    submit: $("ann-submit"),
    tie: $("ann-choose-tie"),
    irrelevant: $("ann-irrelevant"),
    irrelevantBox: $("ann-irrelevant-box"),
    summary: $("ann-summary"),
    instructions: $("ann-instructions"),
    warning: $("ann-warning"),
    feedback: $("ann-feedback"),
    undo: $("ann-undo"),
    replacing: $("ann-replacing"),
    onboarding: $("ann-onboarding"),
    zoom: $("ann-zoom"),
    zoomImg: $("ann-zoom-img"),
    zoomCaption: $("ann-zoom-caption"),
  };

  var state = {
    task: null,
    choice: null,
    ratings: { left: null, right: null },
    ratingSide: "left",
    irrelevant: false,
    key: null,
    shownAt: 0,
    busy: false,
    warned: false,     // the choice-versus-ratings warning was shown for the current answer
    last: null,        // the last answered task and its answer, while its lease lives ("back to my last answer")
    replacing: false,  // the task on screen is the last answered one, reopened
    zoomAt: 0,
    hovered: null,
  };

  // ---- HTTP -----------------------------------------------------------------------------------

  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : config.csrfToken;
  }

  /** POST JSON; resolves {status, body} for any HTTP answer, rejects only on network failure.
   * In the staff preview (config.preview: one task) nothing is sent: every "next" is that task again and
   * every vote is accepted without being recorded. */
  function post(url, payload) {
    if (config.preview) {
      var isNext = url === config.nextUrl;
      return Promise.resolve({
        status: isNext ? 200 : 201,
        body: isNext ? { task: config.preview, progress: { done: 0, quota: config.quota || 0 }, done: false } : { ok: true },
      });
    }
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        "X-CSRFToken": csrfToken(),
      },
      body: JSON.stringify(payload || {}),
    }).then(function (response) {
      return response.text().then(function (text) {
        var body = null;
        try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
        return { status: response.status, body: body };
      });
    });
  }

  function detailOf(result, fallback) {
    if (result.body && typeof result.body.detail === "string") return result.body.detail;
    if (result.body && typeof result.body === "object") {
      var parts = [];
      Object.keys(result.body).forEach(function (k) { parts.push(k + ": " + [].concat(result.body[k]).join(" ")); });
      if (parts.length) return parts.join("; ");
    }
    return fallback;
  }

  // ---- messages -------------------------------------------------------------------------------

  function say(message) {
    // Re-set so screen readers announce the same message twice in a row.
    els.status.textContent = "";
    window.setTimeout(function () { els.status.textContent = message; }, 30);
  }

  function showError(message) {
    els.error.textContent = message;
    els.error.hidden = !message;
  }

  // ---- preload --------------------------------------------------------------------------------

  var preloaded = [];

  /** Collects every image url in the `next` preview, whatever its exact shape. */
  function urlsIn(value, out) {
    if (!value) return out;
    if (typeof value === "string") {
      if (value.charAt(0) === "/" || /^https?:\/\//.test(value)) out.push(value);
    } else if (Array.isArray(value)) {
      value.forEach(function (v) { urlsIn(v, out); });
    } else if (typeof value === "object") {
      Object.keys(value).forEach(function (k) { urlsIn(value[k], out); });
    }
    return out;
  }

  function preload(preview) {
    preloaded = urlsIn(preview, []).map(function (url) {
      var img = new Image();
      img.decoding = "async";
      img.src = url;
      return img;  // kept referenced so the browser does not drop the request
    });
  }

  // ---- rendering ------------------------------------------------------------------------------

  function renderProgress(progress) {
    if (!progress) return;
    var done = progress.done || 0;
    var quota = progress.quota || config.quota || 0;
    els.progressBar.max = Math.max(quota, 1);
    els.progressBar.value = Math.min(done, quota || done);
    els.progressText.textContent = quota ? done + " of " + quota : done + " done";
  }

  function renderSet(side, items) {
    var list = $("ann-set-" + side + "-images");
    var label = LABEL[side];
    list.textContent = "";
    items.forEach(function (item, i) {
      var li = document.createElement("li");
      var img = document.createElement("img");
      img.src = item.url;
      // The API's alt text is positional ("Left set, image 1 of 5"); the page names its sets A and B.
      img.alt = "Set " + label + ", image " + (i + 1) + " of " + items.length;
      img.decoding = "async";
      img.className = "ann-zoomable";
      img.tabIndex = 0;
      li.appendChild(img);
      list.appendChild(li);
    });
    list.style.setProperty("--n", String(Math.max(items.length, 1)));
  }

  function renderTask(task, answer) {
    state.task = task;
    state.choice = answer ? answer.choice : null;
    state.ratings = answer ? { left: answer.ratings.left, right: answer.ratings.right } : { left: null, right: null };
    state.ratingSide = "left";
    state.irrelevant = answer ? answer.irrelevant : false;
    state.warned = false;
    showWarning("");
    // One key per lease: reused by every retry of this vote.
    state.key = window.crypto && window.crypto.randomUUID ? window.crypto.randomUUID() : fallbackUuid();

    var options = task.options || {};
    els.refImg.src = task.reference.url;
    els.refImg.alt = task.reference.alt || "Reference image";
    els.text.textContent = task.text;
    SIDES.forEach(function (side) { renderSet(side, (task.sets && task.sets[side]) || []); });

    els.tie.hidden = !options.tie;
    els.irrelevantBox.hidden = !options.irrelevant;
    document.querySelectorAll("[data-if-option]").forEach(function (el) {
      el.hidden = !options[el.getAttribute("data-if-option")];
    });
    SIDES.forEach(function (side) {
      document.querySelectorAll('input[name="rating-' + side + '"]').forEach(function (r) { r.checked = false; });
    });

    els.loading.hidden = true;
    els.end.hidden = true;
    els.task.hidden = false;
    els.replacing.hidden = !state.replacing;
    showError("");
    sync();
    // On a phone the answer bar is below the sets: each task starts at the top of the page.
    if (window.scrollY > 0) window.scrollTo(0, 0);
    state.shownAt = performance.now();
  }

  function fallbackUuid() {
    var b = new Uint8Array(16);
    window.crypto.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 0x100).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  /** Brings every control in line with `state`. */
  function sync() {
    var options = (state.task && state.task.options) || {};
    ["left", "right", "tie"].forEach(function (choice) {
      var button = $("ann-choose-" + choice);
      var on = state.choice === choice;
      button.setAttribute("aria-pressed", on ? "true" : "false");
    });
    SIDES.forEach(function (side) {
      var panel = $("ann-set-" + side);
      var chosen = state.choice === side;
      panel.classList.toggle("is-chosen", chosen);
      panel.classList.toggle("is-tied", state.choice === "tie");
      $("ann-set-" + side + "-badge").textContent =
        chosen ? "\u2713 Your choice" : state.choice === "tie" ? "= Tie" : "";
      panel.classList.toggle("is-rating", !!options.ratings && state.ratingSide === side);
      $("ann-set-" + side + "-cursor").hidden = !(options.ratings && state.ratingSide === side);
      document.querySelectorAll('input[name="rating-' + side + '"]').forEach(function (r) {
        r.checked = String(state.ratings[side]) === r.value;
      });
    });
    els.irrelevant.checked = state.irrelevant;
    els.undo.hidden = !canUndo();

    var missing = missingParts();
    if (!missing.length && /^Not yet/.test(els.error.textContent)) showError("");
    els.submit.disabled = state.busy;
    els.submit.setAttribute("aria-disabled", missing.length || state.busy ? "true" : "false");
    els.summary.textContent = missing.length
      ? "Still needed: " + missing.join(" \u00b7 ") + (options.irrelevant ? " (or I: both irrelevant)" : "")
      : state.irrelevant && !state.choice ? "Ready: both sets irrelevant. Press Enter to submit."
      : "Ready: press Enter to submit.";
  }

  function missingParts() {
    var options = (state.task && state.task.options) || {};
    var missing = [];
    // "Both sets are irrelevant" is a whole answer: no winner and no ratings needed.
    if (options.irrelevant && state.irrelevant) return missing;
    if (!state.choice) missing.push(options.tie ? "choose A, B or tie" : "choose A or B");
    if (options.ratings) {
      SIDES.forEach(function (side) {
        if (!state.ratings[side]) missing.push("rate " + LABEL[side]);
      });
    }
    return missing;
  }

  // ---- actions --------------------------------------------------------------------------------

  function choose(choice) {
    if (!state.task || state.busy) return;
    var options = state.task.options || {};
    if (choice === "tie" && !options.tie) return;
    state.choice = choice;
    answerChanged();
    sync();
    say(choice === "tie" ? "Tie selected." : "Set " + LABEL[choice] + " selected.");
  }

  function rate(side, value) {
    if (!state.task || state.busy || !(state.task.options || {}).ratings) return;
    state.ratings[side] = value;
    answerChanged();
    // After rating A the number keys move on to B; after B, back to A only while A is unrated.
    state.ratingSide = side === "left" || !state.ratings.left ? (side === "left" ? "right" : "left") : "right";
    sync();
    say("Set " + LABEL[side] + " rated " + value + " of 5.");
  }

  function switchRatingSide() {
    if (!state.task || !(state.task.options || {}).ratings) return;
    state.ratingSide = state.ratingSide === "left" ? "right" : "left";
    sync();
    say("Number keys now rate set " + LABEL[state.ratingSide] + ".");
  }

  function toggleIrrelevant(value) {
    if (!state.task || state.busy || !(state.task.options || {}).irrelevant) return;
    state.irrelevant = typeof value === "boolean" ? value : !state.irrelevant;
    sync();
    say(state.irrelevant ? "Marked: both sets are irrelevant." : "Irrelevant mark removed.");
  }

  function showWarning(message) {
    els.warning.textContent = message;
    els.warning.hidden = !message;
  }

  function answerChanged() {
    if (state.warned) { state.warned = false; showWarning(""); }
  }

  /** A warning when the chosen set got the lower rating (warn once, never block). */
  function contradiction() {
    var options = (state.task && state.task.options) || {};
    if (!options.ratings || (state.choice !== "left" && state.choice !== "right")) return "";
    var other = state.choice === "left" ? "right" : "left";
    var mine = state.ratings[state.choice], theirs = state.ratings[other];
    if (!mine || !theirs || mine >= theirs) return "";
    return "You chose set " + LABEL[state.choice] + " but rated set " + LABEL[other] + " higher (" +
      LABEL[state.choice] + " " + mine + ", " + LABEL[other] + " " + theirs + "). Press Enter again to submit " +
      "anyway, or change your choice or ratings.";
  }

  function canUndo() {
    return !!(state.last && !state.replacing && Date.parse(state.last.task.expires_at) > Date.now() + 5000);
  }

  /** Reopens the last answered task with its answer filled in; submitting replaces that answer. */
  function undo() {
    if (!canUndo() || state.busy) return;
    if (els.zoom.open) els.zoom.close();
    state.replacing = true;
    renderTask(state.last.task, state.last.answer);
    say("Your last task is open again. Change your answer and submit to replace it.");
  }

  function cancelUndo() {
    if (!state.replacing || state.busy) return;
    state.replacing = false;
    loadNext();
  }

  function showFeedback(feedback) {
    if (!feedback || typeof feedback.correct !== "boolean") { els.feedback.hidden = true; return; }
    els.feedback.textContent = feedback.correct
      ? "\u2713 Correct: that was a practice task with a known answer, and you got it right."
      : "\u2717 Not quite: on that practice task the other set was the better match. Check the requested change carefully.";
    els.feedback.classList.toggle("is-wrong", !feedback.correct);
    els.feedback.hidden = false;
  }

  function submit() {
    if (!state.task || state.busy) return;
    var missing = missingParts();
    if (missing.length) {
      var message = "Not yet: " + missing.join(", ") + (state.task.options.ratings ? " (keys 1\u20135)" : "") +
        (state.task.options.irrelevant ? ", or mark both sets irrelevant (I)." : ".");
      showError(message);
      return;
    }
    var warning = contradiction();
    if (warning && !state.warned) {
      state.warned = true;
      showWarning(warning);
      say(warning);
      return;
    }
    var task = state.task;
    var replacing = state.replacing;
    var answer = { choice: state.choice, ratings: { left: state.ratings.left, right: state.ratings.right },
      irrelevant: state.irrelevant };
    var payload = {
      lease: task.lease,
      choice: state.choice,
      rating_left: task.options && task.options.ratings ? state.ratings.left || null : null,
      rating_right: task.options && task.options.ratings ? state.ratings.right || null : null,
      irrelevant: !!(task.options && task.options.irrelevant && state.irrelevant),
      time_ms: Math.max(0, Math.round(performance.now() - state.shownAt)),
      idempotency_key: state.key,
    };
    setBusy(true, "Saving your answer\u2026");
    post(replacing ? config.replaceUrl : config.voteUrl, payload).then(function (result) {
      if (result.status === 200 || result.status === 201) {
        say(replacing ? "Answer replaced." : "Answer saved.");
        state.last = { task: task, answer: answer };
        state.replacing = false;
        showFeedback(result.body && result.body.feedback);
        loadNext();
      } else if (result.status === 404 || result.status === 409 || result.status === 410) {
        // The lease is gone (expired, reassigned, or already answered): move on to a fresh task.
        showError(detailOf(result, "This task is no longer available.") + " Loading a new task\u2026");
        if (replacing) { state.replacing = false; state.last = null; }
        loadNext(true);
      } else if (result.status === 403) {
        setBusy(false);
        showError(detailOf(result, "Your session has ended.") + " Please open your study link again.");
      } else {
        setBusy(false);
        showError(detailOf(result, "The answer was not accepted (HTTP " + result.status + ")."));
      }
    }, function () {
      setBusy(false);
      showError("Network problem: your answer was not saved yet. Press Enter to try again.");
    });
  }

  function setBusy(busy, message) {
    state.busy = busy;
    els.app.setAttribute("aria-busy", busy ? "true" : "false");
    if (busy && message) say(message);
    if (state.task) sync();
  }

  function loadNext(keepError) {
    setBusy(true);
    post(config.nextUrl, {}).then(function (result) {
      state.busy = false;
      els.app.setAttribute("aria-busy", "false");
      if (result.status !== 200 || !result.body) {
        if (state.task) sync();
        showError(detailOf(result, "Could not load the next task (HTTP " + result.status + ").") +
          " Press Enter to try again.");
        state.task = null;
        els.task.hidden = true;
        els.loading.hidden = false;
        return;
      }
      var body = result.body;
      renderProgress(body.progress);
      if (body.done || !body.task) {
        showEnd(body);
        return;
      }
      var previousError = keepError ? els.error.textContent : "";
      state.replacing = false;
      renderTask(body.task);
      if (previousError) showError(previousError.replace(/ Loading a new task\u2026$/, " Here is a new task."));
      preload(body.next);
      var p = body.progress;
      say(p && p.quota ? "Task " + (p.done + 1) + " of " + p.quota + "." : "New task.");
    }, function () {
      state.busy = false;
      state.task = null;
      showError("Network problem while loading the next task. Press Enter to try again.");
    });
  }

  function showEnd(body) {
    state.task = null;
    els.task.hidden = true;
    els.loading.hidden = true;
    els.end.hidden = false;
    showError("");
    var completion = body.completion || {};
    if (!body.completion) {
      // The study filled up before this person answered anything: no code, and say so plainly.
      $("ann-end-title").textContent = "No comparisons are left";
      $("ann-end-text").textContent = "Every comparison in this study already has the answers it needs. " +
        "Please return the study on your platform; thank you for your time.";
    }
    var codeBox = $("ann-end-code-box");
    var redirect = $("ann-end-redirect");
    if (completion.code) {
      $("ann-end-code").textContent = completion.code;
      codeBox.hidden = false;
    } else {
      codeBox.hidden = true;
    }
    if (completion.url) {
      var link = $("ann-end-link");
      link.href = completion.url;
      redirect.hidden = false;
      window.setTimeout(function () { window.location.assign(completion.url); }, config.redirectDelayMs);
    } else {
      redirect.hidden = true;
    }
    var heading = $("ann-end-title");
    heading.focus();
    say(body.completion ? "All done. " + (completion.code ? "Your completion code is " + completion.code + "." : "")
      : "No comparisons are left in this study.");
  }

  // ---- input ----------------------------------------------------------------------------------

  function onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    var tag = target && target.tagName;
    if (tag === "TEXTAREA" || (tag === "INPUT" && /^(text|search|email|number|password)$/.test(target.type))) return;
    var key = event.key;

    if (key === "?" || key === "h" || key === "H") {
      els.instructions.open = !els.instructions.open;
      event.preventDefault();
      return;
    }
    if (els.zoom.open) {
      // The enlarged view takes the keys: arrows move, Esc closes (the dialog's own), nothing else acts.
      if (key === "ArrowLeft" || key === "ArrowRight") { zoomStep(key === "ArrowLeft" ? -1 : 1); }
      else if (key === "z" || key === "Z") { els.zoom.close(); }
      if (key !== "Tab" && key !== "Escape") event.preventDefault();
      return;
    }
    if (key === "Escape" && els.instructions.open) {
      els.instructions.open = false;
      return;
    }
    if (!els.onboarding.hidden) {
      if (key === "Enter" && tag !== "SUMMARY" && tag !== "A" && tag !== "BUTTON") { event.preventDefault(); start(); }
      return;
    }
    if (key === "Escape" && state.replacing) { cancelUndo(); return; }
    if (key === "Enter") {
      // Enter on the instructions toggle or a link keeps its usual meaning.
      if (tag === "SUMMARY" || tag === "A" || (target.classList && target.classList.contains("ann-zoomable"))) {
        if (tag === "IMG") { event.preventDefault(); openZoom(target); }
        return;
      }
      event.preventDefault();
      if (event.repeat) return;
      if (!state.task && !state.busy && els.end.hidden) { loadNext(); return; }
      submit();
      return;
    }
    if (!state.task) return;
    var handled = true;
    switch (key) {
      case "a": case "A": case "ArrowLeft": choose("left"); break;
      case "b": case "B": case "ArrowRight": choose("right"); break;
      case "t": case "T": choose("tie"); break;
      case "i": case "I": toggleIrrelevant(); break;
      case "r": case "R": switchRatingSide(); break;
      case "u": case "U": undo(); break;
      case "z": case "Z": openZoom(state.hovered || els.refImg); break;
      case "1": case "2": case "3": case "4": case "5":
        rate(state.ratingSide, Number(key)); break;
      default: handled = false;
    }
    if (handled) event.preventDefault();
  }

  document.addEventListener("keydown", onKey);
  $("ann-end-copy").addEventListener("click", function () {
    var code = $("ann-end-code").textContent;
    if (navigator.clipboard) {
      navigator.clipboard.writeText(code).then(function () { say("Code copied."); }, function () {});
    }
  });
  $("ann-choose-left").addEventListener("click", function () { choose("left"); });
  $("ann-choose-right").addEventListener("click", function () { choose("right"); });
  els.tie.addEventListener("click", function () { choose("tie"); });
  els.submit.addEventListener("click", submit);
  els.irrelevant.addEventListener("change", function () { toggleIrrelevant(els.irrelevant.checked); });
  SIDES.forEach(function (side) {
    document.querySelectorAll('input[name="rating-' + side + '"]').forEach(function (radio) {
      radio.addEventListener("change", function () {
        state.ratingSide = side;
        rate(side, Number(radio.value));
      });
    });
    // Clicking a set's heading picks it, as the buttons do; clicking an image only enlarges it.
    document.querySelector('[data-choose="' + side + '"]').addEventListener("click", function () { choose(side); });
  });
  els.undo.addEventListener("click", undo);

  // ---- zoom -----------------------------------------------------------------------------------

  function zoomables() {
    return Array.prototype.slice.call(els.task.querySelectorAll("img.ann-zoomable"));
  }

  function zoomShow(index) {
    var all = zoomables();
    if (!all.length) return;
    state.zoomAt = (index + all.length) % all.length;
    var img = all[state.zoomAt];
    els.zoomImg.src = img.src;
    els.zoomImg.alt = img.alt;
    els.zoomCaption.textContent = img.alt + " (" + (state.zoomAt + 1) + " of " + all.length + ")";
    $("ann-zoom-ref").src = els.refImg.src;
    $("ann-zoom-text").textContent = state.task ? state.task.text : "";
  }

  function zoomStep(delta) { zoomShow(state.zoomAt + delta); }

  function openZoom(img) {
    if (!state.task || !img) return;
    zoomShow(Math.max(0, zoomables().indexOf(img)));
    if (!els.zoom.open) els.zoom.showModal();
  }

  els.task.addEventListener("click", function (event) {
    var target = event.target;
    if (target && target.tagName === "IMG" && target.classList.contains("ann-zoomable")) openZoom(target);
  });
  // A click enlarges without focusing the image, so Enter after closing still submits (Tab focus still works).
  els.task.addEventListener("mousedown", function (event) {
    var target = event.target;
    if (target && target.tagName === "IMG" && target.classList.contains("ann-zoomable")) event.preventDefault();
  });
  els.task.addEventListener("mouseover", function (event) {
    var target = event.target;
    state.hovered = target && target.tagName === "IMG" && target.classList.contains("ann-zoomable") ? target : null;
  });
  els.task.addEventListener("mouseout", function (event) {
    if (event.target === state.hovered) state.hovered = null;
  });
  $("ann-zoom-prev").addEventListener("click", function () { zoomStep(-1); });
  $("ann-zoom-next").addEventListener("click", function () { zoomStep(1); });
  $("ann-zoom-close").addEventListener("click", function () { els.zoom.close(); });
  // A click on the backdrop (outside the dialog's box) closes it too.
  els.zoom.addEventListener("click", function (event) { if (event.target === els.zoom) els.zoom.close(); });

  // ---- first screen ---------------------------------------------------------------------------

  function start() {
    var consent = $("ann-consent");
    if (consent && !consent.checked) {
      showError("Please tick the consent box to take part.");
      consent.focus();
      return;
    }
    $("ann-start").disabled = true;
    post(config.onboardedUrl, { consent: consent ? consent.checked : false }).then(function (result) {
      $("ann-start").disabled = false;
      if (result.status !== 200) {
        showError(detailOf(result, "Could not start (HTTP " + result.status + ")."));
        return;
      }
      showError("");
      els.onboarding.hidden = true;
      els.loading.hidden = false;
      loadNext();
    }, function () {
      $("ann-start").disabled = false;
      showError("Network problem: press Start again.");
    });
  }

  $("ann-start").addEventListener("click", start);

  if (config.onboarding) {
    els.app.setAttribute("aria-busy", "false");
    $("ann-onboarding-title").focus();
  } else {
    loadNext();
  }
})();
