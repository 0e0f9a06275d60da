// Keyboard shortcuts for the annotation workspace. No framework: one keydown listener on the
// document, so it keeps working after htmx swaps in the next query's panel.
//   1 2 3 4  submit: A better, B better, tie, both bad
//   q w e    strength: slightly, clearly, much better
//   s        open the skip form (Esc closes it)
//   g        show or hide the guidelines
(function () {
  "use strict";

  const CHOICE_KEYS = { "1": "a", "2": "b", "3": "tie", "4": "both_bad" };
  const STRENGTH_KEYS = { q: "1", w: "2", e: "3" };

  function isTyping(target) {
    if (!(target instanceof Element)) return false;
    if (target.isContentEditable) return true;
    if (target.tagName === "TEXTAREA" || target.tagName === "SELECT") return true;
    if (target.tagName === "INPUT") {
      // Radios and checkboxes take no text, so shortcuts stay live while they have focus.
      return !["radio", "checkbox", "button", "submit", "reset"].includes(target.type);
    }
    return false;
  }

  function panel() {
    return document.getElementById("workspace-panel");
  }

  function busy(form) {
    // htmx marks the form while its request is in flight; a second key press must not queue another.
    return form.classList.contains("htmx-request");
  }

  function submitChoice(value) {
    const form = panel() && panel().querySelector("form[data-choice-form]");
    if (!form || busy(form)) return false;
    const button = form.querySelector('button[name="choice"][value="' + value + '"]');
    if (!button || button.disabled) return false;
    // click(), not requestSubmit(): htmx learns which button submitted from its click event.
    button.focus();
    button.click();
    return true;
  }

  function setStrength(value) {
    const radio = panel() && panel().querySelector('input[name="strength"][value="' + value + '"]');
    if (!radio) return false;
    radio.checked = true;
    return true;
  }

  function openSkip() {
    const details = panel() && panel().querySelector("details[data-skip]");
    if (!details) return false;
    details.open = true;
    const reason = details.querySelector("textarea");
    if (reason) reason.focus();
    return true;
  }

  function closeSkip(details) {
    details.open = false;
    details.querySelector("summary").focus();
  }

  function toggleGuidelines() {
    const guidelines = document.getElementById("guidelines");
    if (!guidelines) return false;
    guidelines.open = !guidelines.open;
    if (guidelines.open) guidelines.scrollIntoView({ block: "nearest" });
    return true;
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
    const target = event.target;

    if (event.key === "Escape") {
      const details = target instanceof Element && target.closest("details[data-skip]");
      if (details && details.open) {
        event.preventDefault();
        closeSkip(details);
      }
      return;
    }

    // An Enter on a strength radio would submit the form with its first button (A); the
    // annotator meant to confirm the strength, not to pick A, so it does nothing.
    if (event.key === "Enter" && target instanceof HTMLInputElement && target.name === "strength") {
      event.preventDefault();
      return;
    }

    if (isTyping(target)) return;

    const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    let handled = false;
    if (key in CHOICE_KEYS) handled = submitChoice(CHOICE_KEYS[key]);
    else if (key in STRENGTH_KEYS) handled = setStrength(STRENGTH_KEYS[key]);
    else if (key === "s") handled = openSkip();
    else if (key === "g") handled = toggleGuidelines();
    if (handled) event.preventDefault();
  });

  // A textarea's Ctrl/Cmd+Enter submits the skip reason, as in most chat and review tools.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) return;
    const target = event.target;
    if (target instanceof HTMLTextAreaElement && target.form) {
      event.preventDefault();
      target.form.requestSubmit();
    }
  });
})();
