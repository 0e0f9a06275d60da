// Error spans: select a passage of a response with the mouse or the keyboard, label it with a
// category from the study's taxonomy, optionally with a note. Spans may overlap and nest.
//
// The response text is plain text, exactly as stored (white-space: pre-wrap), rendered here from
// the JSON copy of the stored text, because HTML parsing would turn a CR LF in the page into LF.
// Offsets: the DOM counts UTF-16 code units, the server counts code points (Python str indices),
// so every offset is converted on the way out (toCodePoints) and on the way in (toUnits).
//
// Keyboard: the text is focusable with a caret (contenteditable, with every edit refused):
//   h                     go to the next response's text
//   arrows, Shift+arrows  move the caret, select (Ctrl for whole words; Home/End for lines)
//   1-9                   label the selection with that category at once
//   Enter                 open the label popover: a digit picks the category, Enter saves
//   m                     missing information (about the whole response, no span)
//   Esc                   drop the selection; again, leave the text (for the other shortcuts)
(function () {
  "use strict";

  const Preflab = window.Preflab;
  const MISSING = "missing-information";
  const MISSING_COLOUR = "#6b7280";
  let spans = []; // {id, response, s, e (UTF-16, null for missing), category, note}
  let nextId = 1;
  let categories = [];
  let popover = null;
  let pending = null; // {response, s, e} or {response, missing: true}
  let panelEl = null;

  // ---- offsets -------------------------------------------------------------------------------

  function toCodePoints(text, units) {
    return Array.from(text.slice(0, units)).length;
  }

  function toUnits(text, points) {
    let units = 0;
    let count = 0;
    for (const ch of text) {
      if (count === points) break;
      units += ch.length;
      count += 1;
    }
    return units;
  }

  function isHigh(code) { return code >= 0xd800 && code <= 0xdbff; }
  function isLow(code) { return code >= 0xdc00 && code <= 0xdfff; }

  // Never split a surrogate pair, and leave out white space at either end of the selection.
  function tidy(text, s, e) {
    if (s > 0 && isLow(text.charCodeAt(s)) && isHigh(text.charCodeAt(s - 1))) s -= 1;
    if (e < text.length && isLow(text.charCodeAt(e)) && isHigh(text.charCodeAt(e - 1))) e += 1;
    while (s < e && /\s/.test(text[s])) s += 1;
    while (e > s && /\s/.test(text[e - 1])) e -= 1;
    return [s, e];
  }

  function textOf(response) {
    return Preflab.texts()[response] || "";
  }

  function element(response) {
    return panelEl.querySelector('[data-span-text="' + response + '"]');
  }

  function category(key) {
    if (key === MISSING) return { key: MISSING, label: "Missing information", colour: MISSING_COLOUR };
    return categories.find(function (c) { return c.key === key; }) || { key: key, label: key, colour: MISSING_COLOUR };
  }

  // The selection inside `el` as UTF-16 offsets into its text, or null.
  function selectionIn(el) {
    const selection = window.getSelection();
    if (!selection.rangeCount) return null;
    const range = selection.getRangeAt(0);
    if (!el.contains(range.startContainer) || !el.contains(range.endContainer)) return null;
    const before = document.createRange();
    before.selectNodeContents(el);
    before.setEnd(range.startContainer, range.startOffset);
    const s = before.toString().length;
    before.setEnd(range.endContainer, range.endOffset);
    const e = before.toString().length;
    return [s, e];
  }

  // The DOM point at UTF-16 offset `offset` of `el`'s text.
  function pointAt(el, offset) {
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    let node = walker.nextNode();
    let last = null;
    while (node) {
      if (offset <= node.length) return [node, offset];
      offset -= node.length;
      last = node;
      node = walker.nextNode();
    }
    return last ? [last, last.length] : [el, 0];
  }

  function placeCaret(el, offset) {
    const point = pointAt(el, offset);
    window.getSelection().setBaseAndExtent(point[0], point[1], point[0], point[1]);
  }

  // ---- drawing the text ----------------------------------------------------------------------

  // Each stretch of text between span edges is one element, underlined once per span covering
  // it: outer spans lowest, nested ones stacked above, so overlaps and nesting stay visible.
  function render(response) {
    const el = element(response);
    const text = textOf(response);
    const mine = spans.filter(function (span) { return span.response === response && span.s !== null; });
    const layers = pending && pending.response === response && !pending.missing ? mine.concat([pending]) : mine;
    const edges = new Set([0, text.length]);
    layers.forEach(function (span) { edges.add(span.s); edges.add(span.e); });
    const cuts = Array.from(edges).sort(function (a, b) { return a - b; });
    const fragment = document.createDocumentFragment();
    for (let i = 0; i < cuts.length - 1; i++) {
      const a = cuts[i];
      const b = cuts[i + 1];
      const piece = text.slice(a, b);
      const over = layers
        .filter(function (span) { return span.s <= a && span.e >= b; })
        .sort(function (x, y) { return x.s - y.s || y.e - x.e; });
      if (!over.length) {
        fragment.appendChild(document.createTextNode(piece));
        continue;
      }
      const seg = document.createElement("span");
      seg.className = "seg";
      seg.textContent = piece;
      const real = over.filter(function (span) { return span !== pending; });
      seg.dataset.spans = real.map(function (span) { return span.id; }).join(" ");
      if (over.includes(pending)) seg.classList.add("seg--pending");
      const images = [];
      const sizes = [];
      const positions = [];
      real.forEach(function (span, depth) {
        const colour = category(span.category).colour;
        images.push("linear-gradient(" + colour + ", " + colour + ")");
        sizes.push("100% 2px");
        positions.push("0 calc(100% - " + depth * 3 + "px)");
      });
      if (real.length) {
        const inner = category(real[real.length - 1].category).colour;
        seg.style.backgroundColor = inner + "1c";
        seg.style.backgroundImage = images.join(", ");
        seg.style.backgroundSize = sizes.join(", ");
        seg.style.backgroundPosition = positions.join(", ");
        seg.style.paddingBottom = Math.max(real.length * 3 - 1, 0) + "px";
        seg.title = real.map(function (span) { return category(span.category).label; }).join(" · ");
      }
      fragment.appendChild(seg);
    }
    el.replaceChildren(fragment);
  }

  // ---- the list under each response ----------------------------------------------------------

  function excerpt(text, max) {
    const flat = text.replace(/\s+/g, " ").trim();
    const chars = Array.from(flat);
    return chars.length > max ? chars.slice(0, max - 1).join("") + "…" : flat;
  }

  function highlight(id, on) {
    panelEl.querySelectorAll('[data-spans~="' + id + '"]').forEach(function (seg) {
      seg.classList.toggle("seg--active", on);
    });
  }

  function listItem(span) {
    const text = textOf(span.response);
    const li = document.createElement("li");
    li.className = "span-item";
    li.dataset.spanId = String(span.id);
    li.style.setProperty("--c", category(span.category).colour);
    const quote = span.s === null ? "Whole response" : "“" + excerpt(text.slice(span.s, span.e), 80) + "”";

    const head = document.createElement("div");
    head.className = "span-item__head";
    const swatch = document.createElement("span");
    swatch.className = "span-item__swatch";
    swatch.setAttribute("aria-hidden", "true");
    const q = document.createElement("span");
    q.className = "span-item__quote" + (span.s === null ? " muted" : "");
    q.textContent = quote;
    head.append(swatch, q);

    const controls = document.createElement("div");
    controls.className = "span-item__controls";
    const select = document.createElement("select");
    select.setAttribute("aria-label", "Category of " + quote);
    let options = span.category === MISSING ? [category(MISSING)] : categories;
    if (!options.some(function (c) { return c.key === span.category; })) {
      // Posted before the study's taxonomy changed: shown as it is, to be changed or deleted.
      options = [{ key: span.category, label: span.category + " (no longer a category)" }].concat(options);
    }
    options.forEach(function (c) {
      const option = document.createElement("option");
      option.value = c.key;
      option.textContent = c.label;
      option.selected = c.key === span.category;
      select.appendChild(option);
    });
    select.disabled = span.category === MISSING;
    select.addEventListener("change", function () {
      span.category = select.value;
      li.style.setProperty("--c", category(span.category).colour);
      render(span.response);
      highlight(span.id, true);
      save();
    });
    const note = document.createElement("input");
    note.type = "text";
    note.value = span.note;
    note.placeholder = span.category === MISSING ? "What is missing?" : "Note (optional)";
    note.maxLength = 2000;
    note.setAttribute("aria-label", "Note on " + quote);
    note.addEventListener("input", function () {
      span.note = note.value;
      save();
    });
    note.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.ctrlKey && !event.metaKey) event.preventDefault();
    });
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "btn btn--quiet btn--small span-item__delete";
    remove.textContent = "Delete";
    remove.setAttribute("aria-label", "Delete span " + quote);
    remove.addEventListener("click", function () { deleteSpan(span.id); });
    controls.append(select, note);
    head.appendChild(remove);

    li.append(head, controls);
    li.addEventListener("mouseenter", function () { highlight(span.id, true); });
    li.addEventListener("mouseleave", function () { highlight(span.id, false); });
    li.addEventListener("focusin", function () { highlight(span.id, true); });
    li.addEventListener("focusout", function () { highlight(span.id, false); });
    return li;
  }

  function renderList(response) {
    const list = panelEl.querySelector('[data-span-list="' + response + '"]');
    const mine = spans
      .filter(function (span) { return span.response === response; })
      .sort(function (a, b) {
        if (a.s === null || b.s === null) return (a.s === null ? 1 : 0) - (b.s === null ? 1 : 0) || a.id - b.id;
        return a.s - b.s || b.e - a.e || a.id - b.id;
      });
    list.replaceChildren.apply(list, mine.map(listItem));
    panelEl.querySelector('[data-span-count="' + response + '"]').textContent = String(mine.length);
    panelEl.querySelector('[data-span-empty="' + response + '"]').hidden = mine.length > 0;
  }

  // The hidden field the form posts: code-point offsets, as the server stores them.
  function save() {
    const input = panelEl.querySelector("[data-spans-input]");
    input.value = JSON.stringify(spans.map(function (span) {
      const text = textOf(span.response);
      return {
        response: Number(span.response),
        start: span.s === null ? null : toCodePoints(text, span.s),
        end: span.e === null ? null : toCodePoints(text, span.e),
        category: span.category,
        note: span.note,
      };
    }));
  }

  function refresh(response) {
    render(response);
    renderList(response);
    save();
  }

  function addSpan(response, s, e, key, note) {
    const span = { id: nextId++, response: response, s: s, e: e, category: key, note: note || "" };
    spans.push(span);
    refresh(response);
    const label = category(key).label;
    Preflab.announce(s === null ? label + " noted for the whole response." : "Labelled “" + excerpt(textOf(response).slice(s, e), 60) + "” as " + label + ".");
    return span;
  }

  function deleteSpan(id) {
    const span = spans.find(function (x) { return x.id === id; });
    if (!span) return;
    const list = panelEl.querySelector('[data-span-list="' + span.response + '"]');
    const items = Array.from(list.children);
    const at = items.findIndex(function (li) { return li.dataset.spanId === String(id); });
    spans = spans.filter(function (x) { return x.id !== id; });
    refresh(span.response);
    Preflab.announce("Span deleted.");
    const next = list.children[Math.min(at, list.children.length - 1)];
    if (next) next.querySelector("select:not([disabled]), input").focus();
    else element(span.response).focus();
  }

  // ---- the label popover ---------------------------------------------------------------------

  function openPopover(response, range, anchorRect) {
    pending = range ? { response: response, s: range[0], e: range[1] } : { response: response, missing: true };
    popover.hidden = false;
    popover.classList.toggle("popover--missing", !range);
    popover.querySelector("[data-popover-title]").textContent = range ? "Label the selection" : "Missing information in response " + letterOf(response);
    popover.querySelector("[data-popover-quote]").textContent = range ? excerpt(textOf(response).slice(range[0], range[1]), 140) : "";
    popover.querySelector("[data-popover-quote]").hidden = !range;
    popover.querySelector("[data-popover-cats]").hidden = !range;
    popover.querySelectorAll("[data-category]").forEach(function (button) { button.setAttribute("aria-pressed", "false"); });
    const note = popover.querySelector("[data-popover-note]");
    note.value = "";
    note.placeholder = range ? "" : "What should the response have said?";
    if (range) render(response);
    position(anchorRect);
    if (range) popover.focus();
    else note.focus();
  }

  function position(rect) {
    const box = panelEl.getBoundingClientRect();
    popover.style.left = "0px";
    popover.style.top = "0px";
    const width = popover.offsetWidth;
    const left = Math.min(Math.max(rect.left - box.left, 8), Math.max(box.width - width - 8, 8));
    popover.style.left = left + "px";
    popover.style.top = rect.bottom - box.top + 8 + "px";
    popover.scrollIntoView({ block: "nearest" });
  }

  function chosen() {
    const button = popover.querySelector('[data-category][aria-pressed="true"]');
    return button ? button.dataset.category : null;
  }

  function closePopover(restore) {
    if (!pending) return;
    const was = pending;
    pending = null;
    popover.hidden = true;
    render(was.response);
    const el = element(was.response);
    el.focus();
    if (restore && !was.missing) {
      const a = pointAt(el, was.s);
      const b = pointAt(el, was.e);
      window.getSelection().setBaseAndExtent(a[0], a[1], b[0], b[1]);
    }
  }

  function savePopover() {
    if (!pending) return false;
    const note = popover.querySelector("[data-popover-note]").value;
    if (pending.missing) {
      const response = pending.response;
      pending = null;
      popover.hidden = true;
      addSpan(response, null, null, MISSING, note);
      element(response).focus();
      return true;
    }
    const key = chosen();
    if (!key) {
      Preflab.announce("Pick a category first: press its number.");
      popover.querySelector("[data-category]").focus();
      return false;
    }
    const was = pending;
    pending = null;
    popover.hidden = true;
    addSpan(was.response, was.s, was.e, key, note);
    const el = element(was.response);
    el.focus();
    placeCaret(el, was.e);
    return true;
  }

  function choose(key) {
    popover.querySelectorAll("[data-category]").forEach(function (button) {
      button.setAttribute("aria-pressed", button.dataset.category === key ? "true" : "false");
    });
    popover.querySelector("[data-popover-note]").focus();
  }

  function initPopover() {
    // Each category's colour, set here: a style attribute in the page would break the CSP.
    popover.querySelectorAll("[data-category]").forEach(function (button) {
      button.style.setProperty("--c", category(button.dataset.category).colour);
    });
    popover.addEventListener("keydown", function (event) {
      if (event.key === "Escape") {
        event.preventDefault();
        event.stopPropagation();
        closePopover(true);
      } else if (event.key === "Enter" && !event.ctrlKey && !event.metaKey) {
        event.preventDefault();
        event.stopPropagation();
        const button = event.target.closest("[data-category]");
        if (button) choose(button.dataset.category);
        else if (event.target.closest("[data-popover-cancel]")) closePopover(true);
        else savePopover();
      } else if (/^[1-9]$/.test(event.key) && !event.target.matches("input")) {
        const button = popover.querySelectorAll("[data-category]")[Number(event.key) - 1];
        event.preventDefault();
        if (button && !pending.missing) choose(button.dataset.category);
      } else if (event.key.length === 1 && !event.target.matches("input") && !event.ctrlKey && !event.metaKey) {
        event.preventDefault(); // the workspace's one-letter shortcuts wait until the popover closes
      }
    });
    popover.addEventListener("click", function (event) {
      const button = event.target.closest("[data-category]");
      if (button) choose(button.dataset.category);
      else if (event.target.closest("[data-popover-save]")) savePopover();
      else if (event.target.closest("[data-popover-cancel]")) closePopover(true);
    });
    // Clicking elsewhere cancels, as with any popover.
    panelEl.addEventListener("pointerdown", function (event) {
      if (pending && !popover.contains(event.target)) {
        pending = null;
        popover.hidden = true;
        spanTexts().forEach(function (el) { render(el.dataset.spanText); });
      }
    });
  }

  // ---- the caret in the text -----------------------------------------------------------------

  function spanTexts() {
    return Array.from(panelEl.querySelectorAll("[data-span-text]"));
  }

  function letterOf(response) {
    const card = panelEl.querySelector('[data-response-card="' + response + '"]');
    return card ? card.dataset.letter : "";
  }

  function selectionRect(el) {
    const selection = window.getSelection();
    if (selection.rangeCount) {
      const rects = selection.getRangeAt(0).getClientRects();
      if (rects.length) return rects[rects.length - 1];
    }
    return el.getBoundingClientRect();
  }

  function labelSelection(el, key) {
    const response = el.dataset.spanText;
    const found = selectionIn(el);
    if (!found) return false;
    const range = tidy(textOf(response), found[0], found[1]);
    if (range[0] >= range[1]) {
      Preflab.announce("Select some text first: Shift and the arrow keys.");
      return false;
    }
    if (key) {
      addSpan(response, range[0], range[1], key, "");
      placeCaret(el, range[1]);
    } else openPopover(response, range, selectionRect(el));
    return true;
  }

  function missing(response, anchor) {
    openPopover(response, null, anchor.getBoundingClientRect());
  }

  const NAVIGATION = new Set(["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "Home", "End", "PageUp", "PageDown", "Tab"]);

  function initText(el) {
    const response = el.dataset.spanText;
    // A caret for the keyboard: editable, with every change refused, and re-drawn from the
    // stored text should any (an IME composition cannot be cancelled) get through.
    el.contentEditable = "true";
    el.spellcheck = false;
    el.setAttribute("inputmode", "none");
    el.setAttribute("autocorrect", "off");
    el.setAttribute("autocapitalize", "off");
    el.setAttribute("aria-describedby", "span-help");
    el.addEventListener("beforeinput", function (event) { event.preventDefault(); });
    el.addEventListener("input", function () { render(response); });
    ["paste", "cut", "drop", "dragstart"].forEach(function (type) {
      el.addEventListener(type, function (event) { event.preventDefault(); });
    });
    el.addEventListener("keydown", function (event) {
      if (event.isComposing) return;
      const key = event.key;
      if (NAVIGATION.has(key) || event.ctrlKey || event.metaKey || event.altKey) return; // native caret, copy, submit
      if (key === "Escape") {
        // First drop the selection; then leave the text, so the workspace's shortcuts work again.
        event.preventDefault();
        const selection = window.getSelection();
        if (!selection.isCollapsed) selection.collapseToEnd();
        else el.blur();
        return;
      }
      event.preventDefault(); // nothing else may type into the text
      if (key === "Enter") labelSelection(el, null);
      else if (/^[1-9]$/.test(key)) {
        const c = categories[Number(key) - 1];
        if (c) labelSelection(el, c.key);
      } else if (key === "m" || key === "M") missing(response, el);
      else if (key === "h") focusNextText(el);
    });
    el.addEventListener("mouseup", function () {
      // Mouse selections open the popover once the button is released.
      window.setTimeout(function () {
        const found = selectionIn(el);
        if (found && found[0] !== found[1] && !pending) labelSelection(el, null);
      }, 0);
    });
    render(response);
  }

  function focusNextText(from) {
    const texts = spanTexts();
    if (!texts.length) return false;
    const next = texts[(texts.indexOf(from) + 1) % texts.length];
    next.focus();
    next.scrollIntoView({ block: "nearest" });
    return true;
  }

  function restore() {
    const input = panelEl.querySelector("[data-spans-input]");
    if (!input.value) return;
    let posted;
    try {
      posted = JSON.parse(input.value);
    } catch (error) {
      return;
    }
    if (!Array.isArray(posted)) return;
    posted.forEach(function (item) {
      const response = String(item.response);
      if (!element(response)) return;
      const text = textOf(response);
      const hasRange = Number.isInteger(item.start) && Number.isInteger(item.end);
      spans.push({
        id: nextId++,
        response: response,
        s: hasRange ? toUnits(text, item.start) : null,
        e: hasRange ? toUnits(text, item.end) : null,
        category: String(item.category || ""),
        note: String(item.note || ""),
      });
    });
  }

  function init(p) {
    panelEl = p;
    spans = [];
    pending = null;
    popover = p.querySelector("[data-span-popover]");
    if (!popover) return;
    const data = p.querySelector("#span-categories");
    categories = data ? JSON.parse(data.textContent) : [];
    restore();
    spanTexts().forEach(initText);
    spanTexts().forEach(function (el) { refresh(el.dataset.spanText); });
    p.querySelectorAll("[data-missing]").forEach(function (button) {
      button.addEventListener("click", function () { missing(button.dataset.missing, button); });
    });
    initPopover();
  }

  Preflab.register({
    init: init,
    keydown: function (event) {
      if (!popover || !panelEl || !panelEl.isConnected) return false;
      if (event.key === "h" && !event.ctrlKey && !event.metaKey && !event.altKey && !Preflab.isTyping(event.target)) {
        return focusNextText(null);
      }
      return false;
    },
    beforeSubmit: function () {
      if (popover && panelEl && panelEl.isConnected) save();
    },
  });

  // For tests and the curious: the conversions, without a panel.
  Preflab.spanOffsets = { toCodePoints: toCodePoints, toUnits: toUnits };
})();
