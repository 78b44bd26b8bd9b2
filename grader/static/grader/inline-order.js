/* Checks and choices in the item panel: ↑ ↓ buttons move a row; the order fields are renumbered by the
   rows' places (the server renumbers the same way, so typing numbers still works without JavaScript). */
(function () {
  "use strict";
  function renumber(group) {
    let n = 0;
    group.querySelectorAll("tr.form-row:not(.empty-form)").forEach((row) => {
      const input = row.querySelector("input[name$='-order']");
      if (input) input.value = n++;
    });
  }
  function addButtons(row, group) {
    const cell = row.querySelector("td.field-order");
    if (!cell || cell.querySelector(".order-move")) return;
    for (const [label, up] of [["↑", true], ["↓", false]]) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "button order-move";
      button.textContent = label;
      button.setAttribute("aria-label", up ? "Move up" : "Move down");
      button.addEventListener("click", () => {
        const sibling = up ? row.previousElementSibling : row.nextElementSibling;
        if (!sibling || !sibling.classList.contains("form-row") || sibling.classList.contains("empty-form")) return;
        if (up) sibling.before(row); else sibling.after(row);
        renumber(group);
      });
      cell.append(button);
    }
  }
  function setUp(group) {
    group.querySelectorAll("tr.form-row:not(.empty-form)").forEach((row) => addButtons(row, group));
  }
  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("#checks-group, #choices-group").forEach(setUp);
  });
  document.addEventListener("formset:added", (event) => {
    const group = event.target.closest("#checks-group, #choices-group");
    if (!group) return;
    addButtons(event.target, group);
    renumber(group); // the new row goes last, not to order 0
  });
})();
