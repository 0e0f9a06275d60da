// Ranking K responses, best first, with ties: by keyboard or by drag and drop (HTML5, no library).
//
// The ranking is a list of groups of response ids; a group of two or more is a tie. It is kept
// in the hidden `ranking` field as JSON, which the server passes on to the service as is.
//
//   r            focus the ranking          j k / ↓ ↑          next / previous response
//   Shift+J K / Alt+↓ ↑   move down / up    1-8                put at that rank
//   =            tie with the rank above    -                  untie (its own rank, just below)
//   x            cannot rank (with a reason)
(function () {
  "use strict";

  const Preflab = window.Preflab;
  let groups = []; // [[id, ...], ...] best first
  let board = null;
  let byId = {}; // id -> its element on the board, which render() moves between groups
  let shown = ""; // the groups as first shown: sent unchanged, they are only the display order
  let unchangedOk = false; // the annotator was told, and sends the shown order anyway

  // The board's items in rank order, as they are on screen.
  function items() {
    return Array.from(board.querySelectorAll("[data-rank-item]"));
  }

  function itemFor(id) {
    return byId[id];
  }

  function letterOf(id) {
    return itemFor(id).dataset.letter;
  }

  function groupIndexOf(id) {
    return groups.findIndex(function (group) { return group.includes(id); });
  }

  function describe(id) {
    const g = groupIndexOf(id);
    const others = groups[g].filter(function (other) { return other !== id; }).map(letterOf);
    return "Response " + letterOf(id) + ": rank " + (g + 1) + " of " + groups.length +
      (others.length ? ", tied with " + others.join(", ") : "");
  }

  function removeFromGroups(id) {
    const g = groupIndexOf(id);
    groups[g] = groups[g].filter(function (other) { return other !== id; });
    const emptied = groups[g].length === 0;
    if (emptied) groups.splice(g, 1);
    return { index: g, emptied: emptied };
  }

  // ---- operations ----------------------------------------------------------------------------

  function moveUp(id) {
    const g = groupIndexOf(id);
    if (groups[g].length > 1) {
      // Leaving a tie: it takes its own rank just above the group it left.
      removeFromGroups(id);
      groups.splice(g, 0, [id]);
    } else if (g > 0) {
      groups.splice(g, 1);
      groups.splice(g - 1, 0, [id]);
    } else return false;
    return true;
  }

  function moveDown(id) {
    const g = groupIndexOf(id);
    if (groups[g].length > 1) {
      removeFromGroups(id);
      groups.splice(g + 1, 0, [id]);
    } else if (g < groups.length - 1) {
      groups.splice(g, 1);
      groups.splice(g + 1, 0, [id]);
    } else return false;
    return true;
  }

  function putAt(id, rank) {
    removeFromGroups(id);
    groups.splice(Math.min(Math.max(rank - 1, 0), groups.length), 0, [id]);
    return true;
  }

  function tieAbove(id) {
    const g = groupIndexOf(id);
    if (g === 0) return false;
    const above = groups[g - 1];
    removeFromGroups(id);
    above.push(id);
    return true;
  }

  function untie(id) {
    const g = groupIndexOf(id);
    if (groups[g].length < 2) return false;
    removeFromGroups(id);
    groups.splice(g + 1, 0, [id]);
    return true;
  }

  // Drop `id` before, after, or into (a tie with) the group that holds `targetId`.
  function dropAt(id, targetId, where) {
    if (id === targetId) return false;
    const target = groups[groupIndexOf(targetId)];
    removeFromGroups(id);
    const t = groups.indexOf(target);
    if (where === "join") target.push(id);
    else groups.splice(where === "before" ? t : t + 1, 0, [id]);
    return true;
  }

  function dropAtEnd(id) {
    removeFromGroups(id);
    groups.push([id]);
    return true;
  }

  // ---- showing it ----------------------------------------------------------------------------

  function render(focusId) {
    const list = board.querySelector("[data-rank-list]");
    const fragment = document.createDocumentFragment();
    groups.forEach(function (group, g) {
      const li = document.createElement("li");
      li.className = "rank-group" + (group.length > 1 ? " rank-group--tie" : "");
      li.dataset.group = String(g);
      const num = document.createElement("span");
      num.className = "rank-group__num";
      num.textContent = String(g + 1);
      const box = document.createElement("div");
      box.className = "rank-group__items";
      if (group.length > 1) {
        const tie = document.createElement("span");
        tie.className = "rank-group__tie";
        tie.textContent = "tie";
        box.appendChild(tie);
      }
      group.forEach(function (id) {
        const item = byId[id];
        item.setAttribute("aria-label", describe(id));
        box.appendChild(item);
      });
      li.append(num, box);
      fragment.appendChild(li);
    });
    list.replaceChildren(fragment);
    Preflab.panel().querySelectorAll("[data-rank-badge]").forEach(function (badge) {
      const id = badge.dataset.rankBadge;
      const g = groupIndexOf(id);
      badge.textContent = "Rank " + (g + 1) + (groups[g].length > 1 ? " · tie" : "");
      badge.classList.toggle("rank-badge--top", g === 0);
    });
    board.querySelector("[data-ranking-input]").value = JSON.stringify(groups.map(function (group) {
      return group.map(Number);
    }));
    if (focusId) itemFor(focusId).focus();
  }

  function changed(id) {
    render(id);
    Preflab.announce(describe(id));
  }

  // ---- keys ----------------------------------------------------------------------------------

  function keydown(event) {
    if (!board) return false;
    const target = event.target;
    if (event.key === "r" && !event.ctrlKey && !event.metaKey && !event.altKey && !Preflab.isTyping(target) &&
        !(target instanceof Element && target.closest("[data-rank-item]"))) {
      items()[0].focus();
      board.scrollIntoView({ block: "nearest" });
      return true;
    }
    const item = target instanceof Element && target.closest("[data-rank-item]");
    if (!item || !board.contains(item) || event.ctrlKey || event.metaKey) return false;
    const id = item.dataset.rankItem;
    const flat = items();
    const at = flat.indexOf(item);
    const key = event.key;
    if (event.altKey && (key === "ArrowUp" || key === "ArrowDown")) {
      if ((key === "ArrowUp" ? moveUp : moveDown)(id)) changed(id);
      return true;
    }
    if (event.altKey) return false;
    if (key === "K" || key === "J") {
      if ((key === "K" ? moveUp : moveDown)(id)) changed(id);
      return true;
    }
    if (key === "j" || key === "ArrowDown") {
      if (flat[at + 1]) flat[at + 1].focus();
      return true;
    }
    if (key === "k" || key === "ArrowUp") {
      if (flat[at - 1]) flat[at - 1].focus();
      return true;
    }
    if (key === "Home" || key === "End") {
      flat[key === "Home" ? 0 : flat.length - 1].focus();
      return true;
    }
    if (/^[1-9]$/.test(key) && Number(key) <= flat.length) {
      putAt(id, Number(key));
      changed(id);
      return true;
    }
    if (key === "=" || key === "+") {
      if (tieAbove(id)) changed(id);
      else Preflab.announce("Response " + letterOf(id) + " is already first; nothing above to tie with.");
      return true;
    }
    if (key === "-" || key === "Backspace") {
      if (untie(id)) changed(id);
      return true;
    }
    return false;
  }

  // ---- drag and drop -------------------------------------------------------------------------

  let dragged = null;

  function clearMarks() {
    board.querySelectorAll(".drop-before, .drop-after, .drop-join").forEach(function (el) {
      el.classList.remove("drop-before", "drop-after", "drop-join");
    });
  }

  // Top quarter of a group: insert above it; bottom quarter: below; middle: tie with it.
  function zone(group, event) {
    const rect = group.getBoundingClientRect();
    const y = (event.clientY - rect.top) / Math.max(rect.height, 1);
    return y < 0.25 ? "before" : y > 0.75 ? "after" : "join";
  }

  function initDrag() {
    const list = board.querySelector("[data-rank-list]");
    list.addEventListener("dragstart", function (event) {
      const item = event.target.closest("[data-rank-item]");
      if (!item) return;
      dragged = item.dataset.rankItem;
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", "Response " + item.dataset.letter);
      item.classList.add("is-dragging");
    });
    list.addEventListener("dragend", function (event) {
      const item = event.target.closest("[data-rank-item]");
      if (item) item.classList.remove("is-dragging");
      dragged = null;
      clearMarks();
    });
    list.addEventListener("dragover", function (event) {
      if (!dragged) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "move";
      clearMarks();
      const group = event.target.closest(".rank-group");
      if (group) group.classList.add("drop-" + zone(group, event));
      else list.lastElementChild.classList.add("drop-after");
    });
    list.addEventListener("dragleave", function (event) {
      if (!list.contains(event.relatedTarget)) clearMarks();
    });
    list.addEventListener("drop", function (event) {
      if (!dragged) return;
      event.preventDefault();
      const id = dragged;
      const group = event.target.closest(".rank-group");
      clearMarks();
      let moved = false;
      if (group) {
        const where = zone(group, event);
        const other = Array.from(group.querySelectorAll("[data-rank-item]")).find(function (item) {
          return item.dataset.rankItem !== id;
        });
        // Onto its own group: nothing to tie with; a tie it is in stays as it is.
        if (other && !(where === "join" && groupIndexOf(other.dataset.rankItem) === groupIndexOf(id))) {
          moved = dropAt(id, other.dataset.rankItem, where);
        }
      } else moved = dropAtEnd(id);
      if (moved) changed(id);
    });
  }

  // ---- cannot rank ---------------------------------------------------------------------------

  function initCannot(p) {
    const details = p.querySelector("details[data-cannot-rank]");
    if (!details) return;
    const mode = board.querySelector("[data-rank-mode]");
    const label = p.querySelector("[data-submit-label]");
    const sync = function () {
      mode.value = details.open ? "cannot" : "rank";
      board.classList.toggle("is-off", details.open);
      if (label) label.textContent = details.open ? "Submit: cannot rank" : "Submit ranking";
    };
    details.addEventListener("toggle", sync);
    sync();
  }

  function init(p) {
    board = p.querySelector("[data-rank-board]");
    if (!board) return;
    const input = board.querySelector("[data-ranking-input]");
    byId = {};
    items().forEach(function (item) { byId[item.dataset.rankItem] = item; });
    const ids = items().map(function (item) { return item.dataset.rankItem; });
    groups = ids.map(function (id) { return [id]; });
    // The order shown, one response a rank: sent as it is, it says nothing the annotator chose.
    shown = JSON.stringify(groups);
    if (input.value) {
      // A ranking posted before an error: shown again as the annotator left it.
      try {
        const posted = JSON.parse(input.value).map(function (group) { return group.map(String); });
        const flat = [].concat.apply([], posted);
        if (flat.length === ids.length && ids.every(function (id) { return flat.includes(id); })) groups = posted;
      } catch (error) { /* keep the display order */ }
    }
    render(null);
    unchangedOk = false;
    initDrag();
    initCannot(p);
  }

  // Sending the order as shown is allowed, but only on purpose: asked once, the next send goes.
  function problem() {
    if (!board || !board.isConnected || unchangedOk || JSON.stringify(groups) !== shown) return null;
    unchangedOk = true;
    return {
      message: "Nothing has been moved, so this ranking is just the order shown. Send again to keep it as it is, or rank first (r, then 1 to 9).",
      focus: board,
    };
  }

  Preflab.register({
    init: init,
    keydown: keydown,
    problem: problem,
    beforeSubmit: function () {
      if (board && board.isConnected) render(null);
    },
  });
})();
