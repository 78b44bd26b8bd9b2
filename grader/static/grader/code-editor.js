/* Turns every textarea.code-editor into a CodeMirror 5 Python editor.
   Without CodeMirror (or JavaScript) the textarea stays as it is. */
(function () {
  "use strict";
  var editors = [];

  function attach(textarea) {
    if (typeof window.CodeMirror === "undefined" || textarea.dataset.editorAttached) {
      return;
    }
    textarea.dataset.editorAttached = "1";
    var editor = window.CodeMirror.fromTextArea(textarea, {
      mode: textarea.dataset.mode || "python",
      lineNumbers: true,
      indentUnit: 4,
      tabSize: 4,
      indentWithTabs: false,
      viewportMargin: Infinity,
      extraKeys: {
        Tab: function (cm) {
          cm.execCommand(cm.somethingSelected() ? "indentMore" : "insertSoftTab");
        },
        "Shift-Tab": "indentLess"
      }
    });
    editor.getWrapperElement().classList.add("code-editor-cm");
    editor.on("change", function () { editor.save(); });
    editors.push(editor);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("textarea.code-editor").forEach(attach);
    // An editor created inside a collapsed fieldset measures itself when it is opened.
    document.addEventListener("toggle", function () {
      editors.forEach(function (editor) { editor.refresh(); });
    }, true);
  });
})();
