// The annotation workspace: keyboard shortcuts, active time, and the parts of an answer that need
// no module of their own (pairwise choice, ratings, critique with its revision diff). Ranking and
// spans live in ranking.js and spans.js, which register with `Preflab` below. No framework: one
// keydown listener on the document, so everything keeps working after htmx swaps in a new panel.
//
//   1 2 3 4  pairwise: A better, B better, tie, both bad (they submit when the query asks nothing else)
//   q w e    strength: slightly, clearly, much better
//   1-5      ratings: rate the focused row, then focus moves to the next row
//   c        write the critique             Ctrl+Enter  submit the answer (or the skip form)
//   Esc      leave a text field              s           open the skip form (Esc closes it)
//   g        show or hide the guidelines
//   u, Backspace  go back to your last answer to change it, then to the one before
//   Esc      while changing an answer: back to the current query
(function () {
  "use strict";

  const CHOICE_KEYS = { "1": "a", "2": "b", "3": "tie", "4": "both_bad" };
  const STRENGTH_KEYS = { q: "1", w: "2", e: "3" };
  const IDLE_MS = 30000; // no input for this long and the time stops counting as active
  const MAX_TICK_MS = 2000; // a longer gap between ticks means the machine slept

  const modules = [];
  const Preflab = (window.Preflab = window.Preflab || {});

  Preflab.register = function (module) {
    modules.push(module);
    const current = panel();
    if (current && current.dataset.ready && module.init) module.init(current);
  };

  function panel() {
    return document.getElementById("workspace-panel");
  }
  Preflab.panel = panel;

  Preflab.asks = function (kind) {
    const p = panel();
    return !!p && (p.dataset.asks || "").split(" ").includes(kind);
  };

  // The exact response texts, by response id, for the parts that count characters.
  Preflab.texts = function () {
    const p = panel();
    if (!p) return {};
    if (!p._texts) {
      const node = p.querySelector("#workspace-texts");
      p._texts = node ? JSON.parse(node.textContent) : {};
    }
    return p._texts;
  };

  Preflab.isTyping = function (target) {
    if (!(target instanceof Element)) return false;
    if (target.isContentEditable) return true;
    if (target.tagName === "TEXTAREA" || target.tagName === "SELECT") return true;
    if (target.tagName === "INPUT") {
      // Radios and checkboxes take no text, so shortcuts stay live while they have focus.
      return !["radio", "checkbox", "button", "submit", "reset", "hidden"].includes(target.type);
    }
    return false;
  };

  Preflab.announce = function (message) {
    const p = panel();
    let region = p && p.querySelector("[data-announce]");
    if (!p) return;
    if (!region) {
      region = document.createElement("p");
      region.className = "sr-only";
      region.setAttribute("aria-live", "polite");
      region.dataset.announce = "";
      p.appendChild(region);
    }
    region.textContent = message;
  };

  // A problem found before sending: shown where the server's errors show, and spoken.
  Preflab.flash = function (message) {
    const p = panel();
    const area = p && p.querySelector("[data-flash]");
    if (!area) return;
    area.replaceChildren();
    const alert = document.createElement("p");
    alert.className = "alert alert--error";
    alert.setAttribute("role", "alert");
    alert.textContent = message;
    area.appendChild(alert);
  };

  function answerForm() {
    const p = panel();
    return p && p.querySelector("form[data-answer-form]");
  }

  function busy(form) {
    // htmx marks the form while its request is in flight; a second key press must not queue another.
    return form.classList.contains("htmx-request");
  }

  // ---- active time -------------------------------------------------------------------------

  let activeMs = 0;
  let lastInput = Date.now();
  let lastTick = Date.now();

  function tick() {
    const now = Date.now();
    const gap = now - lastTick;
    lastTick = now;
    if (document.visibilityState === "visible" && now - lastInput < IDLE_MS && gap < MAX_TICK_MS) activeMs += gap;
    const field = panel() && panel().querySelector("[data-active-ms]");
    if (field) field.value = String(Math.round(activeMs));
  }

  ["keydown", "pointerdown", "pointermove", "wheel", "input", "focusin"].forEach(function (type) {
    document.addEventListener(type, function () { lastInput = Date.now(); }, { capture: true, passive: true });
  });
  document.addEventListener("visibilitychange", tick);
  window.setInterval(tick, 1000);

  // ---- pairwise ------------------------------------------------------------------------------

  function submitChoice(value) {
    const form = answerForm();
    if (!form || !form.hasAttribute("data-choice-form") || busy(form)) return false;
    const button = form.querySelector('button[name="choice"][value="' + value + '"]');
    if (!button || button.disabled) return false;
    // click(), not requestSubmit(): htmx learns which button submitted from its click event.
    button.focus();
    button.click();
    return true;
  }

  function pickChoice(value) {
    const radio = panel() && panel().querySelector('input[type="radio"][name="choice"][value="' + value + '"]');
    if (!radio) return false;
    radio.checked = true;
    radio.dispatchEvent(new Event("change", { bubbles: true }));
    Preflab.announce(radio.closest("label").textContent.trim().replace(/^\d\s*/, "") + " chosen");
    return true;
  }

  function setStrength(value) {
    const radio = panel() && panel().querySelector('input[name="strength"][value="' + value + '"]');
    if (!radio) return false;
    radio.checked = true;
    return true;
  }

  // ---- ratings -------------------------------------------------------------------------------

  function ratingRows() {
    return Array.from(panel().querySelectorAll("[data-rating-row]"));
  }

  function focusRow(row) {
    const radio = row.querySelector("input:checked") || row.querySelector("input");
    radio.focus();
    row.scrollIntoView({ block: "nearest" });
  }

  function rate(row, value) {
    const radio = row.querySelector('input[value="' + value + '"]');
    if (!radio) return false;
    radio.checked = true;
    const rows = ratingRows();
    const next = rows[rows.indexOf(row) + 1];
    const label = row.querySelector(".rating__label").textContent.trim();
    Preflab.announce(label + ": " + value);
    if (next) focusRow(next);
    else {
      const submit = panel().querySelector("[data-submit]");
      if (submit) submit.focus();
    }
    return true;
  }

  function rateKey(event) {
    if (!/^[1-5]$/.test(event.key) || event.altKey || event.ctrlKey || event.metaKey) return false;
    const target = event.target;
    let row = target instanceof Element && target.closest("[data-rating-row]");
    if (!row) {
      // Digits belong to the pairwise choice when the query asks for one; otherwise they rate
      // the first row still empty.
      if (!Preflab.asks("ratings") || Preflab.asks("pairwise")) return false;
      row = ratingRows().find(function (r) { return !r.querySelector("input:checked"); });
      if (!row) return false;
    }
    return rate(row, event.key);
  }

  // ---- critique and revision -----------------------------------------------------------------

  function normalise(text) {
    return text.replace(/\r\n?/g, "\n");
  }

  // Words, runs of spaces and single punctuation marks: the units the diff compares.
  function tokens(text) {
    return text.match(/\s+|[\p{L}\p{N}\p{M}_'’]+|[^\s\p{L}\p{N}\p{M}_]/gu) || [];
  }

  // A word-level diff: common ends trimmed, then a longest-common-subsequence table over the
  // middle; past a size where that gets slow the middle is shown as one replacement.
  function diff(before, after) {
    const a = tokens(before);
    const b = tokens(after);
    let start = 0;
    while (start < a.length && start < b.length && a[start] === b[start]) start++;
    let endA = a.length;
    let endB = b.length;
    while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) { endA--; endB--; }
    const ops = [];
    if (start > 0) ops.push(["=", a.slice(0, start).join("")]);
    const midA = a.slice(start, endA);
    const midB = b.slice(start, endB);
    const n = midA.length;
    const m = midB.length;
    if (n * m > 4000000) {
      if (n) ops.push(["-", midA.join("")]);
      if (m) ops.push(["+", midB.join("")]);
    } else if (n || m) {
      const width = m + 1;
      const table = new Uint32Array((n + 1) * width);
      for (let i = n - 1; i >= 0; i--) {
        for (let j = m - 1; j >= 0; j--) {
          table[i * width + j] = midA[i] === midB[j]
            ? table[(i + 1) * width + j + 1] + 1
            : Math.max(table[(i + 1) * width + j], table[i * width + j + 1]);
        }
      }
      let i = 0;
      let j = 0;
      const push = function (op, text) {
        const last = ops[ops.length - 1];
        if (last && last[0] === op) last[1] += text;
        else ops.push([op, text]);
      };
      while (i < n || j < m) {
        // Deletions before insertions, so a replaced word reads old then new.
        if (i < n && j < m && midA[i] === midB[j]) { push("=", midA[i]); i++; j++; }
        else if (i < n && (j === m || table[(i + 1) * width + j] >= table[i * width + j + 1])) { push("-", midA[i]); i++; }
        else { push("+", midB[j]); j++; }
      }
    }
    if (endA < a.length) ops.push(["=", a.slice(endA).join("")]);
    return ops;
  }
  Preflab.diff = diff;

  function countWords(text) {
    return (text.match(/[\p{L}\p{N}]+/gu) || []).length;
  }

  function showDiff(textarea) {
    // A timer set while typing may fire after the panel was replaced (a quick submit): nothing to show.
    if (!textarea.isConnected) return;
    const id = textarea.dataset.revision;
    const original = normalise(Preflab.texts()[id] || "");
    const revised = normalise(textarea.value);
    const box = panel().querySelector('[data-diff="' + id + '"]');
    if (!box) return;
    const summary = box.closest(".revision__diff").querySelector("[data-diff-summary]");
    box.replaceChildren();
    if (revised.trim() === original.trim()) {
      const none = document.createElement("span");
      none.className = "muted";
      none.textContent = "No changes yet: the revision is the response as written, and is not sent.";
      box.appendChild(none);
      summary.textContent = "";
      textarea.classList.remove("is-changed");
      return;
    }
    let added = 0;
    let removed = 0;
    diff(original, revised).forEach(function (op) {
      if (op[0] === "=") { box.appendChild(document.createTextNode(op[1])); return; }
      const mark = document.createElement(op[0] === "+" ? "ins" : "del");
      mark.textContent = op[1];
      box.appendChild(mark);
      if (op[0] === "+") added += countWords(op[1]);
      else removed += countWords(op[1]);
    });
    summary.textContent = "· +" + added + " / −" + removed + " words";
    textarea.classList.add("is-changed");
  }

  function selectCritique(responseId) {
    const p = panel();
    p.querySelectorAll("[data-critique-pane]").forEach(function (pane) {
      pane.hidden = pane.dataset.critiquePane !== String(responseId);
    });
  }

  function initCritique(p) {
    const section = p.querySelector("[data-critique]");
    if (!section) return;
    let pickedByHand = false;
    p.querySelectorAll("[data-revision]").forEach(function (textarea) {
      let timer = null;
      // Tall enough for the response, within reason; it scrolls beyond that.
      const lines = textarea.value.split("\n").reduce(function (sum, line) {
        return sum + Math.max(1, Math.ceil(line.length / 70));
      }, 0);
      textarea.rows = Math.min(Math.max(lines + 1, 4), 18);
      showDiff(textarea);
      textarea.addEventListener("input", function () {
        window.clearTimeout(timer);
        timer = window.setTimeout(function () { showDiff(textarea); }, 120);
      });
    });
    p.querySelectorAll("[data-revision-reset]").forEach(function (button) {
      button.addEventListener("click", function () {
        const textarea = p.querySelector('[data-revision="' + button.dataset.revisionReset + '"]');
        textarea.value = Preflab.texts()[button.dataset.revisionReset] || "";
        showDiff(textarea);
        textarea.focus();
      });
    });
    section.addEventListener("change", function (event) {
      if (event.target.name === "critique_response") {
        pickedByHand = true;
        selectCritique(event.target.value);
      }
    });
    // With a pairwise choice, the critique is about the response chosen against, until the
    // annotator picks one themselves.
    const targets = Array.from(p.querySelectorAll('input[name="critique_response"][type="radio"]'));
    const form = p.querySelector("form[data-answer-form]");
    if (form && targets.length === 2) {
      form.addEventListener("change", function (event) {
        if (event.target.name !== "choice" || pickedByHand) return;
        const loser = { a: targets[1], b: targets[0] }[event.target.value];
        if (!loser) return;
        loser.checked = true;
        selectCritique(loser.value);
      });
    }
  }

  function focusCritique() {
    const pane = panel() && panel().querySelector("[data-critique-pane]:not([hidden])");
    if (!pane) return false;
    const textarea = pane.querySelector("[data-critique-text]");
    textarea.focus();
    textarea.scrollIntoView({ block: "center" });
    return true;
  }

  // ---- submitting ----------------------------------------------------------------------------

  // What is missing, found before sending; the server checks everything again.
  function problem(form) {
    const p = panel();
    const cannot = p.querySelector("details[data-cannot-rank]");
    if (cannot && cannot.open) {
      const reason = cannot.querySelector("textarea");
      if (!reason.value.trim()) return { message: "Say why these responses cannot be ranked.", focus: reason };
      return null; // nothing else is needed when the annotator cannot rank
    }
    const choices = form.querySelectorAll('input[type="radio"][name="choice"]');
    if (choices.length && !form.querySelector('input[name="choice"]:checked')) {
      return { message: "Choose which response is better (keys 1 to 4).", focus: choices[0] };
    }
    const pane = p.querySelector("[data-critique-pane]:not([hidden])");
    if (pane && !pane.querySelector("[data-critique-text]").value.trim()) {
      return { message: "Write the critique: what is wrong with the response, and why.", focus: pane.querySelector("[data-critique-text]") };
    }
    const revision = pane && pane.querySelector("[data-revision]");
    if (revision && !revision.value.trim()) {
      return { message: "The revision is empty: edit the response, or reset it to the original to send no revision.", focus: revision };
    }
    const unrated = ratingRows().find(function (row) { return !row.querySelector("input:checked"); });
    if (unrated) {
      const label = unrated.querySelector(".rating__label").textContent.trim();
      const card = unrated.closest("[data-letter]");
      return { message: "Rate " + label.replace(/ for response \w$/, "") + (card ? " for response " + card.dataset.letter : "") + " (keys 1 to 5).", focus: unrated.querySelector("input") };
    }
    for (const module of modules) {
      const found = module.problem && module.problem(p);
      if (found) return found;
    }
    return null;
  }

  // Capture phase, so it runs before htmx's own submit listener on the form and can stop it.
  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-answer-form")) return;
    tick();
    for (const module of modules) if (module.beforeSubmit) module.beforeSubmit(panel());
    if (form.hasAttribute("data-choice-form")) return;
    const found = problem(form);
    if (found) {
      event.preventDefault();
      event.stopPropagation();
      Preflab.flash(found.message);
      if (found.focus) {
        found.focus.focus();
        found.focus.scrollIntoView({ block: "center" });
      }
    }
  }, true);

  function submitAnswer() {
    const form = answerForm();
    if (!form || busy(form)) return false;
    const button = form.querySelector("[data-submit]");
    if (button) form.requestSubmit(button);
    else return false;
    return true;
  }

  // ---- escape hatches: skip, cannot rank -----------------------------------------------------

  function openDetails(selector) {
    const details = panel() && panel().querySelector(selector);
    if (!details) return false;
    details.open = true;
    const reason = details.querySelector("textarea");
    if (reason) reason.focus();
    return true;
  }

  function closeDetails(details) {
    details.open = false;
    details.querySelector("summary").focus();
  }

  // A link of the panel's (change last answer, earlier answer, back to the current query), followed through htmx.
  function follow(selector) {
    const link = panel() && panel().querySelector(selector);
    if (!link) return false;
    link.click();
    return true;
  }

  function toggleGuidelines() {
    const guidelines = document.getElementById("guidelines");
    if (!guidelines) return false;
    guidelines.open = !guidelines.open;
    if (guidelines.open) guidelines.scrollIntoView({ block: "nearest" });
    return true;
  }

  // ---- keys ----------------------------------------------------------------------------------

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.isComposing || !panel()) return;
    const target = event.target;

    // Ctrl/Cmd+Enter sends: the skip reason from its own textarea, the answer from anywhere else.
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      const form = target instanceof Element && target.closest("form");
      if (form && !form.hasAttribute("data-answer-form") && target instanceof HTMLTextAreaElement) {
        event.preventDefault();
        form.requestSubmit();
      } else if (submitAnswer()) event.preventDefault();
      return;
    }

    if (event.key === "Escape") {
      const details = target instanceof Element && target.closest("details[data-skip], details[data-cannot-rank]");
      if (details && details.open) {
        event.preventDefault();
        closeDetails(details);
      } else if (Preflab.isTyping(target) && panel().contains(target)) {
        // Out of a text field, so the one-key shortcuts work again; what was typed stays.
        event.preventDefault();
        target.blur();
      } else if (!Preflab.isTyping(target) && follow("[data-current]")) {
        event.preventDefault();
      }
      return;
    }

    // Enter on a radio would submit the answer form with its first button (A, in a pairwise-only
    // query); the annotator meant to confirm the radio, so it does nothing.
    if (event.key === "Enter" && target instanceof HTMLInputElement && target.type === "radio") {
      event.preventDefault();
      return;
    }

    for (const module of modules) {
      if (module.keydown && module.keydown(event)) {
        event.preventDefault();
        return;
      }
    }

    if (Preflab.isTyping(target)) return;
    if (rateKey(event)) {
      event.preventDefault();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;

    const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    let handled = false;
    if (key in CHOICE_KEYS) handled = submitChoice(CHOICE_KEYS[key]) || pickChoice(CHOICE_KEYS[key]);
    else if (key in STRENGTH_KEYS) handled = setStrength(STRENGTH_KEYS[key]);
    else if (key === "s") handled = openDetails("details[data-skip]");
    else if (key === "x") handled = openDetails("details[data-cannot-rank]");
    else if (key === "c") handled = focusCritique();
    else if (key === "g") handled = toggleGuidelines();
    else if (key === "u" || key === "Backspace") handled = follow("[data-back]");
    if (handled) event.preventDefault();
  });

  // ---- each new panel ------------------------------------------------------------------------

  function init() {
    const p = panel();
    if (!p || p.dataset.ready) return;
    p.dataset.ready = "1";
    activeMs = Number(p.dataset.activeMs || 0);
    lastInput = Date.now();
    lastTick = Date.now();
    initCritique(p);
    modules.forEach(function (module) { if (module.init) module.init(p); });
    speak(p);
  }

  // A live region swapped in with its message already inside is often not read out; emptied and
  // filled again a moment later, it is.
  function speak(p) {
    const area = p.querySelector("[data-flash]");
    if (!area || !area.firstElementChild) return;
    const said = Array.from(area.childNodes);
    area.replaceChildren();
    window.setTimeout(function () { if (!area.firstElementChild) area.replaceChildren.apply(area, said); }, 50);
  }

  // ---- a request that failed ------------------------------------------------------------------
  // htmx swaps nothing for an error status or a lost connection; say so, or the answer seems taken.

  function serverMessage(xhr) {
    // Preflab's error partial (errors.html#error-message) says what went wrong; other pages are not read.
    if (!xhr.responseText) return "";
    const alert = new DOMParser().parseFromString(xhr.responseText, "text/html").querySelector("[role=alert]");
    return alert ? alert.textContent.trim() : "";
  }

  document.addEventListener("htmx:responseError", function (event) {
    if (!panel() || !panel().contains(event.detail.elt)) return;
    const status = event.detail.xhr.status;
    const said = serverMessage(event.detail.xhr);
    if (said) Preflab.flash(said + " (Nothing was saved.)");
    else if (status === 403) Preflab.flash("The server refused this (403): the page's security token may be out of date. Reload the page and answer again; nothing was saved.");
    else Preflab.flash("The server failed (HTTP " + status + "), so nothing was saved. Try again, or reload the page.");
  });
  document.addEventListener("htmx:sendError", function (event) {
    if (!panel() || !panel().contains(event.detail.elt)) return;
    Preflab.flash("The server could not be reached, so nothing was saved. Check the connection and try again.");
  });

  // A new panel is set up once its swap has settled: htmx binds the new form only then, and a key
  // that clicked an unbound button would submit the form natively instead of through htmx.
  document.addEventListener("DOMContentLoaded", init);
  document.addEventListener("htmx:afterSettle", init);
})();
