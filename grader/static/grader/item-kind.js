/* The item form: show the code fields and checks for a code item, the choice
   fields and choices for a choice item. Without JavaScript all of them show. */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var kind = document.getElementById("id_kind");
    if (!kind) {
      return;
    }
    function update() {
      ["code", "choice"].forEach(function (name) {
        document.querySelectorAll(".kind-" + name).forEach(function (element) {
          element.style.display = kind.value !== "" && kind.value !== name ? "none" : "";
        });
      });
    }
    kind.addEventListener("change", update);
    update();
  });
})();
