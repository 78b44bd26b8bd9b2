/* Text lists in the panel (hints): "Add another" appends an empty box named like the others. */
(function () {
  "use strict";
  function setUp(list) {
    const button = list.querySelector(".text-list__add");
    button.hidden = false;
    button.addEventListener("click", () => {
      const entries = list.querySelectorAll(".text-list__entry");
      const last = entries[entries.length - 1];
      const copy = last.cloneNode(true);
      const index = entries.length;
      const area = copy.querySelector("textarea");
      area.name = list.dataset.name + "_" + index;
      area.id = "id_" + area.name;
      area.value = "";
      const label = copy.querySelector("label");
      label.htmlFor = area.id;
      label.textContent = list.dataset.label.charAt(0).toUpperCase() + list.dataset.label.slice(1) + " " + (index + 1);
      last.after(copy);
      area.focus();
    });
  }
  document.addEventListener("DOMContentLoaded", () => document.querySelectorAll(".text-list").forEach(setUp));
})();
