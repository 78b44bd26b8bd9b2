/* The item page, enhanced.
 *
 * Without JavaScript the page works on its own: the answer form posts to the
 * server and the verdict is shown on the page of that attempt. With it:
 *  - a CodeMirror editor (Python highlighting, line numbers, Tab indents with
 *    spaces, Ctrl/Cmd+Enter submits, Esc then Tab leaves the editor);
 *  - answers go to the REST API and the verdict is polled into the page;
 *  - the line an error points at is highlighted in the editor;
 *  - hints are shown one at a time; attempts re-open without a reload;
 *  - the explanation appears as soon as the server says it is revealed.
 * Everything the server sends is inserted as text, except the Markdown HTML of
 * the explanation, which the server has already sanitised.
 */
(function () {
  "use strict";

  const configElement = document.getElementById("item-config");
  const form = document.getElementById("answer-form");
  if (!configElement || !form || !window.fetch) return;

  const config = JSON.parse(configElement.textContent);
  const csrfToken = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  const verdictBox = document.getElementById("verdict");
  const formError = document.getElementById("form-error");
  const submitButton = document.getElementById("submit-button");
  const historyBox = document.getElementById("history");
  const WAIT_SECONDS = 20; // each long-poll of a pending attempt
  const DRAFT_SAVE_MS = 1000; // after the last keystroke (at most this much typing is lost by leaving at once)
  const FIRST_WAIT_SECONDS = 3; // the submit's own wait, before the page shows the attempt as pending
  const RETRY_MS = 1000; // after a failed one
  const TURNED_AWAY_MAX_MS = 8000; // keep in step with grader.notify.TURNED_AWAY_RETRY_MAX_SECONDS
  const SLOW_AFTER_MS = 30000;
  const PENDING = new Set(["queued", "running"]);
  // Keep in step with STATUS_TEXT and SHORT_STATUS in quiz/templatetags/quiz_tags.py.
  const STATUS_TEXT = {
    queued: ["Waiting for a grader…", "pending"],
    running: ["Running your code…", "pending"],
    passed: ["Passed", "passed"],
    failed: ["Not yet: some checks failed", "failed"],
    error: ["Your code raised an error", "failed"],
    timeout: ["Time limit reached", "failed"],
    memory_limit: ["Memory limit reached", "failed"],
    output_limit: ["Too much output", "failed"],
    rejected: ["Not run", "failed"],
    internal_error: ["Grader problem (not your fault)", "warning"],
    graded: ["Handed in: feedback after the due date", "warning"],
  };
  const SHORT_STATUS = {
    queued: "Queued", running: "Running", passed: "Passed", failed: "Failed", error: "Error",
    timeout: "Time limit", memory_limit: "Memory limit", output_limit: "Output limit",
    rejected: "Not run", internal_error: "Grader problem",
    graded: "Handed in",
  };

  let editor = null;
  let baseline = null; // the code last loaded or submitted: anything else in the editor is unsaved work
  let draft = null;
  let errorLineHandle = null;
  let busy = false;
  let pollGeneration = 0;
  let currentAttempt = config.attempt ? config.attempt.id : null;

  /* ---------------------------------------------------------------- helpers */

  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === null || value === undefined || value === false) continue;
      node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  // `code`, **bold** and *emphasis*, as text nodes: the twin of the `inline` template filter.
  const INLINE = /`([^`\n]+)`|\*\*([^*\n]+)\*\*|\*([^*\n]+)\*/g;
  function inline(text) {
    const fragment = document.createDocumentFragment();
    let last = 0;
    text = text || "";
    for (const match of text.matchAll(INLINE)) {
      fragment.append(text.slice(last, match.index));
      if (match[1] !== undefined) fragment.append(el("code", null, match[1]));
      else if (match[2] !== undefined) fragment.append(el("strong", null, match[2]));
      else fragment.append(el("em", null, match[3]));
      last = match.index + match[0].length;
    }
    fragment.append(text.slice(last));
    return fragment;
  }

  function percent(score) {
    return score === null || score === undefined ? "–" : Math.round(score * 100) + "%";
  }

  const timeFormat = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  function localTime(iso) {
    const date = new Date(iso);
    return isNaN(date) ? iso : timeFormat.format(date);
  }

  function api(url, options) {
    options = options || {};
    const headers = { Accept: "application/json", ...options.headers };
    if (options.body) {
      headers["Content-Type"] = "application/json";
      headers["X-CSRFToken"] = csrfToken;
    }
    return fetch(url, { credentials: "same-origin", ...options, headers });
  }

  function showError(message) {
    formError.textContent = message;
    formError.hidden = false;
  }

  function hideError() {
    formError.hidden = true;
    formError.textContent = "";
  }

  function problemMessage(response, body) {
    const error = body && body.error;
    if (response.status === 400 && error) {
      const fields = error.fields ? Object.values(error.fields).flat() : [];
      const first = fields.length ? String(fields[0]) : error.message;
      return first.charAt(0).toUpperCase() + first.slice(1) + (/[.!?]$/.test(first) ? "" : ".");
    }
    if (response.status === 429) {
      const wait = parseInt(response.headers.get("Retry-After") || "", 10);
      return "You are submitting very fast. Please wait" + (wait > 0 ? " " + wait + " s" : " a moment") + " and try again.";
    }
    if (response.status === 401 || response.status === 403) {
      return "Your session has ended. Reload the page and log in again.";
    }
    return "Something went wrong on our side (HTTP " + response.status + "). Please try again.";
  }

  function setBusy(value) {
    busy = value;
    submitButton.setAttribute("aria-disabled", value ? "true" : "false");
    submitButton.textContent = value ? "Checking…" : submitButton.dataset.label;
    verdictBox.setAttribute("aria-busy", value ? "true" : "false");
  }

  /* ----------------------------------------------------------------- editor */

  function setupEditor() {
    const textarea = document.getElementById("code");
    if (!textarea || !window.CodeMirror) return;
    let leaving = false; // Esc was pressed: the next Tab moves focus out of the editor, as in any field
    const indent = (cm) => {
      if (cm.somethingSelected()) return cm.indentSelection("add");
      const unit = cm.getOption("indentUnit");
      cm.replaceSelection(" ".repeat(unit - (cm.getCursor().ch % unit)), "end");
    };
    editor = CodeMirror.fromTextArea(textarea, {
      mode: { name: "python", version: 3 },
      lineNumbers: true,
      indentUnit: 4,
      tabSize: 4,
      indentWithTabs: false,
      matchBrackets: true,
      viewportMargin: Infinity,
      screenReaderLabel: "Your Python code",
      extraKeys: {
        Tab: indent,
        "Shift-Tab": (cm) => cm.indentSelection("subtract"),
        "Ctrl-Enter": () => submit(),
        "Cmd-Enter": () => submit(),
        Esc: () => { leaving = true; },
      },
    });
    editor.on("keydown", (cm, event) => {
      if (event.key === "Tab" && leaving) {
        event.codemirrorIgnore = true; // CodeMirror leaves the key alone: the browser moves focus
        leaving = false;
      } else if (event.key !== "Escape" && event.key !== "Shift") {
        leaving = false;
      }
    });
    editor.on("blur", () => { leaving = false; });
    editor.getInputField().setAttribute("aria-describedby", "editor-help");
    editor.getInputField().id = "code-editor";
    const label = document.querySelector('label[for="code"]');
    if (label) label.htmlFor = "code-editor"; // the label now focuses the editor

    baseline = editor.getValue();
    const restore = el("button", { type: "button", class: "btn btn--quiet", id: "restore-button", hidden: true },
      "Restore the code you were editing");
    restore.addEventListener("click", () => {
      setCode(draft);
      baseline = null;
      draft = null;
      restore.hidden = true;
      editor.focus();
    });
    const reset = document.getElementById("reset-button");
    if (reset) {
      reset.after(restore);
      reset.hidden = false;
      reset.addEventListener("click", () => {
        clearErrorLine();
        editor.setValue(config.starterCode || "");
        editor.focus();
      });
    }
  }

  function getCode() {
    return editor ? editor.getValue() : document.getElementById("code").value;
  }

  function setCode(code) {
    clearErrorLine();
    baseline = code;
    if (editor) editor.setValue(code);
    else document.getElementById("code").value = code;
  }

  function clearErrorLine() {
    if (editor && errorLineHandle !== null) {
      editor.removeLineClass(errorLineHandle, "background", "cm-error-line");
      editor.removeLineClass(errorLineHandle, "gutter", "cm-error-gutter");
    }
    errorLineHandle = null;
  }

  function markErrorLine(line) {
    clearErrorLine();
    if (!editor || !line || line < 1 || line > editor.lineCount()) return;
    errorLineHandle = editor.addLineClass(line - 1, "background", "cm-error-line");
    editor.addLineClass(line - 1, "gutter", "cm-error-gutter");
    editor.scrollIntoView({ line: line - 1, ch: 0 }, 80);
  }

  function goToLine(line) {
    if (editor) {
      editor.focus();
      editor.setCursor({ line: line - 1, ch: 0 });
      editor.scrollIntoView({ line: line - 1, ch: 0 }, 80);
      return;
    }
    const textarea = document.getElementById("code");
    const lines = textarea.value.split("\n");
    const start = lines.slice(0, line - 1).reduce((n, text) => n + text.length + 1, 0);
    textarea.focus();
    textarea.setSelectionRange(start, start + (lines[line - 1] || "").length);
  }

  /* ---------------------------------------------------------------- verdict */

  function attemptNumber(id) {
    const link = historyBox.querySelector('a[data-attempt="' + id + '"]');
    if (link) return link.dataset.number;
    const newest = historyBox.querySelector("a[data-attempt]");
    return newest ? String(parseInt(newest.dataset.number, 10) + 1) : "1";
  }

  function renderVerdict(submission) {
    let [text, tone] = STATUS_TEXT[submission.status] || [submission.status, "failed"];
    // A worker died or the queue lost its message: it was sent again and will be graded once (issue 14).
    if (submission.requeued && tone === "pending") {
      text = submission.status === "running" ? "Running your code again after a worker restart…"
        : "Re-queued after a worker restart…";
    }
    const icon = tone === "passed" ? "✓" : tone === "pending" ? el("span", { class: "spinner" }) : tone === "warning" ? "!" : "✗";
    let meta = "Attempt " + attemptNumber(submission.id);
    if (submission.score !== null && submission.score !== undefined) meta += " · score " + percent(submission.score);
    const box = el("div", { class: "verdict verdict--" + tone, "data-status": submission.status, "data-attempt": submission.id },
      el("div", { class: "verdict__head" },
        el("span", { class: "verdict__icon", "aria-hidden": "true" }, icon),
        el("div", { class: "verdict__title" },
          el("strong", { class: "verdict__status" }, text),
          el("span", { class: "verdict__meta" }, meta))));

    if (config.kind === "code") {
      const params = Object.entries(submission.params || {});
      if (params.length) {
        const line = el("p", { class: "verdict__params" }, "Graded with your values: ");
        params.forEach(([name, value], i) => line.append(el("code", {}, name + " = " + value), i < params.length - 1 ? ", " : ""));
        box.append(line);
      }
      if (submission.checks && submission.checks.length) {
        const list = el("ul", { class: "checks", role: "list" });
        for (const check of submission.checks) {
          list.append(el("li", { class: "check check--" + (check.passed ? "pass" : "fail") },
            el("span", { class: "check__icon", "aria-hidden": "true" }, check.passed ? "✓" : "✗"),
            el("span", { class: "visually-hidden" }, check.passed ? "Passed:" : "Failed:"),
            el("code", { class: "check__name" }, check.name),
            check.message ? el("span", { class: "check__message" }, inline(check.message)) : null));
        }
        box.append(list);
        for (const check of submission.checks) {
          if (!check.graph_svg) continue;
          const graph = check.graph || {};
          let caption = "The autograd graph of " + check.name + (graph.reference ? ", next to the reference's" : "")
            + ": arrows run from the tensors you created to the result; backward() walks them in reverse.";
          if (graph.extra && graph.extra.length) caption += " Red: not in the reference.";
          if (graph.missing && graph.missing.length) caption += " Dashed: missing from yours.";
          box.append(el("figure", { class: "graph" },
            el("img", { src: check.graph_svg, alt: "The autograd graph of " + check.name, loading: "lazy" }),
            el("figcaption", {}, caption)));
        }
      }
      if (submission.error) {
        const title = submission.error_line
          ? el("p", { class: "verdict__error-title" }, "Problem on ",
            el("button", { type: "button", class: "linklike", "data-goto-line": submission.error_line }, "line " + submission.error_line),
            " of your code")
          : el("p", { class: "verdict__error-title" }, "What happened");
        box.append(el("div", { class: "verdict__error" }, title, el("pre", { class: "traceback" }, submission.error)));
      }
      if (submission.stdout) {
        box.append(el("div", { class: "verdict__output" },
          el("p", { class: "verdict__section-title" }, "Output"), el("pre", { class: "output" }, submission.stdout)));
      }
    } else {
      for (const check of choiceFeedback(submission)) box.append(el("p", { class: "verdict__note" }, inline(check.message)));
      if (submission.status === "passed") box.append(el("p", { class: "verdict__note" }, "Correct. Well done!"));
      else if (submission.status === "failed") box.append(el("p", { class: "verdict__note" }, "See the feedback next to your answers."));
    }
    if (submission.status === "passed" && config.nextUrl) {
      box.append(el("p", { class: "verdict__next" },
        el("a", { class: "btn btn--primary", href: config.nextUrl }, "Next exercise ", el("span", { "aria-hidden": "true" }, "→"))));
    }
    verdictBox.replaceChildren(box);
  }

  // Per-choice feedback next to each chosen answer; returns the results about no single choice.
  function choiceFeedback(submission) {
    for (const item of form.querySelectorAll(".choice")) {
      item.classList.remove("choice--right", "choice--wrong");
      item.querySelector(".choice__feedback").replaceChildren();
    }
    const general = [];
    for (const check of submission.checks || []) {
      const match = /^Choice (\d+)$/.exec(check.name);
      const id = match ? config.choiceIds[parseInt(match[1], 10) - 1] : undefined;
      const item = id !== undefined ? form.querySelector('.choice[data-choice-id="' + id + '"]') : null;
      if (!item) {
        general.push(check);
        continue;
      }
      item.classList.add(check.passed ? "choice--right" : "choice--wrong");
      item.querySelector(".choice__feedback").append(
        el("span", { class: "choice__mark", "aria-hidden": "true" }, check.passed ? "✓" : "✗"),
        el("span", { class: "visually-hidden" }, check.passed ? "Right:" : "Wrong:"),
        " ", inline(check.message));
    }
    return general;
  }

  function showAttempt(submission) {
    currentAttempt = submission.id;
    renderVerdict(submission);
    if (config.kind === "code") {
      if (!PENDING.has(submission.status)) markErrorLine(submission.error_line);
    }
    for (const link of historyBox.querySelectorAll("a[data-attempt]")) {
      if (link.dataset.attempt === String(submission.id)) link.setAttribute("aria-current", "true");
      else link.removeAttribute("aria-current");
    }
  }

  /* ------------------------------------------------------- submit and poll */

  function retryAfterMs(response) {
    // A pending answer the server gave without waiting (too many wait already, as in a deadline rush) says when
    // to ask again: Retry-After, in seconds. 0: it waited, or said nothing.
    const seconds = parseInt(response.headers.get("Retry-After") || "", 10);
    return seconds > 0 ? seconds * 1000 : 0;
  }

  function poll(url, firstDelayMs = 0) {
    // A long-poll: the server answers as soon as the verdict is stored (?wait=, at most 30 s), so the verdict
    // shows within milliseconds of grading, not at the next tick of a timer.
    const generation = ++pollGeneration;
    const started = Date.now();
    let turnedAway = firstDelayMs ? 1 : 0; // answers in a row that came back at once with Retry-After (the POST's too)
    return new Promise((resolve) => {
      const tick = async () => {
        if (generation !== pollGeneration) return resolve(null); // another attempt was opened
        let failed = false;
        let retryAfter = 0;
        const asked = Date.now();
        try {
          const response = await api(url + (url.includes("?") ? "&" : "?") + "wait=" + WAIT_SECONDS);
          retryAfter = retryAfterMs(response);
          if (response.ok) {
            const submission = await response.json();
            if (generation !== pollGeneration) return resolve(null);
            if (!PENDING.has(submission.status)) return resolve(submission);
            if (submission.status !== verdictBox.firstChild?.dataset?.status) showAttempt(submission);
          } else if (response.status === 404 || response.status === 401 || response.status === 403) {
            showError(problemMessage(response, null));
            return resolve(null);
          } else {
            failed = true;
          }
        } catch (error) {
          failed = true; // a dropped connection: keep trying, the verdict is stored on the server
        }
        const slow = Date.now() - started > SLOW_AFTER_MS;
        if (slow && !verdictBox.querySelector(".verdict__slow")) {
          verdictBox.firstChild?.append(el("p", { class: "verdict__note verdict__slow" },
            "Grading is taking longer than usual. The verdict will appear here as soon as it is ready."));
        }
        // A long-poll that waited its time asks again at once; one that failed, or came back early and pending,
        // waits a moment first. With Retry-After (turned away: the server had too many waiting already, as in a
        // deadline rush; or a 503 while its database is away) it waits what the server says, twice as long at
        // each such answer in a row: the page adds no load when there is least to spare.
        const early = Date.now() - asked < WAIT_SECONDS * 500;
        turnedAway = retryAfter ? turnedAway + 1 : 0;
        const delay = retryAfter ? Math.min(retryAfter * 2 ** (turnedAway - 1), TURNED_AWAY_MAX_MS)
          : failed || early ? RETRY_MS : 0;
        setTimeout(tick, delay);
      };
      setTimeout(tick, firstDelayMs);
    });
  }

  async function precheck() {
    // Syntax and what the grader refuses, checked without grading: it costs no attempt.
    hideError();
    const note = document.getElementById("precheck-result");
    try {
      const response = await api(config.precheckApi, { method: "POST", body: JSON.stringify({ code: getCode() }) });
      const data = await response.json().catch(() => null);
      if (!response.ok || !data) {
        showError(problemMessage(response, data));
        return;
      }
      if (data.ok) {
        note.textContent = data.message;
        note.hidden = false;
      } else {
        note.hidden = true;
        showError(data.message);
        if (data.line) goToLine(data.line);
      }
    } catch (error) {
      showError("Could not reach the server. Check your connection and try again.");
    }
  }

  // The answer last sent without a clear reply (the connection dropped, or a 5xx) and its Idempotency-Key:
  // sending the same answer again reuses the key, so the server returns the attempt it may have stored already
  // instead of charging a second one.
  let unanswered = null;

  async function submit() {
    const note = document.getElementById("precheck-result");
    if (note) note.hidden = true;
    if (busy) return;
    // Submit to verdict on screen, as the browser sees it (read by the browser tests; costs nothing).
    performance.clearMarks("answer-submitted");
    performance.mark("answer-submitted");
    hideError();
    let body;
    if (config.kind === "code") {
      body = { item: config.slug, code: getCode() };
      baseline = body.code;
    } else {
      const chosen = Array.from(form.querySelectorAll("input[name=choices]:checked"), (input) => parseInt(input.value, 10));
      if (!chosen.length) {
        showError("Choose an answer first.");
        return;
      }
      body = { item: config.slug, choices: chosen };
    }
    if (config.course) body.course = config.course;
    setBusy(true);
    clearErrorLine();
    pollGeneration++; // stop polling an attempt that was being watched
    const payload = JSON.stringify(body);
    if (!unanswered || unanswered.payload !== payload) {
      const key = crypto.randomUUID ? crypto.randomUUID()
        : Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
      unanswered = { payload, key };
    }
    try {
      // ?wait=: most verdicts come back on the POST itself (one round trip); a slower one is long-polled.
      const response = await api(config.submissionsApi + "?wait=" + FIRST_WAIT_SECONDS,
        { method: "POST", body: payload, headers: { "Idempotency-Key": unanswered.key } });
      if (response.status < 500) unanswered = null; // a clear answer: the next submit is a new attempt
      const data = await response.json().catch(() => null);
      if (response.status === 202) {
        showAttempt({ id: data.id, status: data.status, score: null, checks: [], choices: [] });
        remember(data.id);
        const verdict = await poll(data.url, retryAfterMs(response)); // turned away: not at once
        if (verdict) await finish(verdict);
      } else if (response.status === 201) {
        remember(data.id);
        await finish(data);
      } else {
        showError(problemMessage(response, data));
      }
    } catch (error) {
      showError("Could not reach the server. Check your connection and try again.");
    } finally {
      setBusy(false);
    }
  }

  function attemptLink(id) {
    return config.pageUrl + (config.pageUrl.includes("?") ? "&" : "?") + "attempt=" + id;
  }

  function remember(id) {
    history.replaceState({ attempt: id }, "", attemptLink(id));
  }

  async function finish(submission) {
    showAttempt(submission);
    if (performance.getEntriesByName("answer-submitted").length) {
      performance.measure("verdict-shown", "answer-submitted");
      performance.clearMarks("answer-submitted");
    }
    const rect = verdictBox.getBoundingClientRect();
    if (rect.top < 0 || rect.top > window.innerHeight - 80) verdictBox.scrollIntoView({ block: "nearest", behavior: "smooth" });
    await Promise.all([refreshHistory(), refreshItem()]);
  }

  /* ----------------------------------------------- history, progress, reveal */

  async function refreshHistory() {
    try {
      const query = new URLSearchParams({ item: config.slug, learner: config.learner, course: config.course || "" });
      const response = await api(config.submissionsApi + "?" + query);
      if (!response.ok) return;
      const page = await response.json();
      if (!page.results.length) return;
      const list = el("ol", { class: "history__list", role: "list" });
      page.results.forEach((submission, index) => {
        const [, tone] = STATUS_TEXT[submission.status] || [submission.status, "failed"];
        list.append(el("li", null,
          el("a", {
            class: "history__link", href: attemptLink(submission.id) + "#verdict", "data-attempt": submission.id,
            "data-number": page.count - index, "aria-current": submission.id === currentAttempt ? "true" : null,
          },
          el("span", { class: "history__number" }, "#" + (page.count - index)),
          el("span", { class: "badge badge--" + tone }, SHORT_STATUS[submission.status] || submission.status),
          el("span", { class: "history__score" }, percent(submission.score)),
          el("time", { class: "history__time", datetime: submission.created_at }, localTime(submission.created_at)))));
      });
      historyBox.replaceChildren(list);
    } catch (error) {
      // The list is a convenience; the page still works without a refresh.
    }
  }

  async function refreshItem() {
    let item;
    try {
      const response = await api(config.itemApi);
      if (!response.ok) return;
      item = await response.json();
    } catch (error) {
      return;
    }
    const progress = item.progress;
    const state = progress.passed ? "passed" : progress.attempts ? "attempted" : "not started";
    const stateBadge = document.getElementById("progress-state");
    stateBadge.className = "state state--" + state.replace(" ", "-");
    stateBadge.textContent = state.charAt(0).toUpperCase() + state.slice(1);
    document.getElementById("progress-attempts").textContent = progress.attempts;
    if (item.policy.feedback !== "hidden") document.getElementById("progress-best").textContent = percent(progress.best_score);
    showPolicy(item.policy);
    if (progress.revealed && !config.revealed) {
      config.revealed = true;
      showReveal(item);
    }
  }

  function showPolicy(policy) {
    // The course's rules as they now apply (the same object the server enforces: grader.standing).
    const left = document.getElementById("policy-attempts-left");
    if (left && policy.attempts_left !== null) left.textContent = policy.attempts_left + " of " + policy.max_attempts;
    const penalty = document.getElementById("policy-next-penalty");
    if (penalty) penalty.textContent = "loses " + policy.next_penalty + "% of its score";
    let refusal = document.getElementById("policy-refusal");
    if (policy.refusal) {
      if (!refusal) {
        refusal = el("p", { class: "alert alert--error", id: "policy-refusal" });
        document.getElementById("policy").after(refusal);
      }
      refusal.textContent = policy.refusal.charAt(0).toUpperCase() + policy.refusal.slice(1) + ".";
    } else if (refusal) {
      refusal.remove();
    }
  }

  function showReveal(item) {
    const section = document.getElementById("reveal");
    section.classList.remove("reveal--locked");
    const children = [el("h2", { id: "reveal-title", class: "panel__title" }, "Explanation")];
    if (item.explanation_html) {
      const prose = el("div", { class: "prose", id: "explanation" });
      prose.innerHTML = item.explanation_html; // Markdown rendered and sanitised (nh3) by the server
      children.push(prose);
    }
    let solution = null;
    if (item.solution) {
      solution = el("div", { class: "solution", id: "solution" });
      children.push(el("h3", { class: "reveal__subtitle" }, "Reference solution"), solution);
    }
    section.replaceChildren(...children);
    if (solution) {
      if (window.CodeMirror) {
        CodeMirror(solution, {
          value: item.solution.replace(/\n$/, ""), mode: { name: "python", version: 3 }, readOnly: "nocursor",
          lineWrapping: true, viewportMargin: Infinity, screenReaderLabel: "Reference solution",
        });
      } else {
        solution.append(el("pre", null, el("code", null, item.solution)));
      }
    }
    section.classList.add("reveal--new");
    const verdict = verdictBox.firstChild;
    if (verdict) {
      verdict.insertBefore(el("p", { class: "verdict__note" },
        "The explanation" + (item.solution ? " and a reference solution are" : " is") + " now unlocked: ",
        el("a", { href: "#reveal" }, "read it"), "."), verdict.querySelector(".verdict__next"));
    }
  }

  async function openAttempt(id, push) {
    pollGeneration++;
    hideError();
    let submission;
    try {
      const response = await api(config.submissionsApi + id + "/");
      if (!response.ok) {
        showError(response.status === 404 ? "That attempt cannot be found." : problemMessage(response, null));
        return;
      }
      submission = await response.json();
    } catch (error) {
      showError("Could not reach the server. Check your connection and try again.");
      return;
    }
    if (config.kind === "code") {
      const current = getCode();
      if (editor && current !== baseline && current !== submission.code) {
        draft = current; // kept, so opening an old attempt never loses unsubmitted work
        document.getElementById("restore-button").hidden = false;
      }
      setCode(submission.code);
    } else {
      const chosen = new Set(submission.choices);
      for (const input of form.querySelectorAll("input[name=choices]")) input.checked = chosen.has(parseInt(input.value, 10));
    }
    showAttempt(submission);
    if (push) history.pushState({ attempt: id }, "", attemptLink(id));
    if (PENDING.has(submission.status)) {
      const verdict = await poll(submission.url);
      if (verdict) await finish(verdict);
    }
  }

  /* ----------------------------------------------------------------- drafts */

  function saveState(state, keepalive) {
    // The learner's unsent code and opened hints live on the server (items/SLUG/state/), so they follow the
    // learner to another browser. Best effort: the page works on without it.
    return api(config.stateApi, { method: "PUT", body: JSON.stringify(state), keepalive: !!keepalive })
      .catch(() => null);
  }

  function setupDrafts() {
    if (config.kind !== "code" || !editor) return;
    let saved = config.draft || "";
    let timer = null;
    const save = (keepalive) => {
      clearTimeout(timer);
      const code = getCode();
      if (code === saved) return;
      saved = code;
      saveState({ draft: code }, keepalive);
    };
    editor.on("change", () => {
      clearTimeout(timer);
      timer = setTimeout(save, DRAFT_SAVE_MS);
    });
    // Sent code is kept as an attempt: it needs no draft (and a save pending from typing it is dropped).
    form.addEventListener("submit", () => { clearTimeout(timer); saved = getCode(); });
    if (saved && saved !== getCode()) {
      draft = saved; // the restore button brings it back
      const restore = document.getElementById("restore-button");
      restore.textContent = "Restore your unsent draft";
      restore.hidden = false;
    }
  }

  /* ------------------------------------------------------------------ hints */

  function setupHints() {
    const section = document.getElementById("hints");
    const button = document.getElementById("hint-button");
    if (!section || !button) return;
    const hints = Array.from(section.querySelectorAll(".hint"));
    const total = hints.length;
    const storageKey = "autograd-quiz:hints:" + config.slug;
    hints.forEach((hint, index) => {
      const body = hint.querySelector(".hint__body");
      const box = el("div", { class: "hint__js prose", tabindex: "-1" },
        el("span", { class: "hint__label" }, "Hint " + (index + 1) + " of " + total));
      box.append(...body.childNodes);
      hint.replaceChildren(box);
      hint.hidden = true;
    });
    let shown = Math.min(total, config.hintsOpened || 0); // kept on the server, per learner
    try { localStorage.removeItem(storageKey); } catch (error) { /* the per-browser count of earlier versions */ }
    const update = () => {
      hints.forEach((hint, index) => { hint.hidden = index >= shown; });
      button.hidden = shown >= total;
      button.textContent = "Show a hint (" + (shown + 1) + " of " + total + ")";
    };
    button.addEventListener("click", () => {
      shown = Math.min(total, shown + 1);
      saveState({ hints_opened: shown }, true);
      update();
      hints[shown - 1].querySelector(".hint__js").focus();
    });
    update();
  }

  /* ------------------------------------------------------------------- wire */

  submitButton.dataset.label = submitButton.textContent.trim();
  setupEditor();
  setupDrafts();
  setupHints();

  for (const time of document.querySelectorAll("time[datetime]")) time.textContent = localTime(time.getAttribute("datetime"));

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (event.submitter && event.submitter.id === "precheck-button") precheck();
    else submit();
  });
  form.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && !event.defaultPrevented) {
      event.preventDefault();
      submit();
    }
  });
  verdictBox.addEventListener("click", (event) => {
    const target = event.target.closest("[data-goto-line]");
    if (target) goToLine(parseInt(target.dataset.gotoLine, 10));
  });
  historyBox.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-attempt]");
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    openAttempt(parseInt(link.dataset.attempt, 10), true);
  });
  window.addEventListener("popstate", () => {
    const id = parseInt(new URLSearchParams(location.search).get("attempt") || "", 10);
    if (id) openAttempt(id, false);
    else location.reload();
  });

  if (config.attempt) {
    showAttempt(config.attempt);
    if (PENDING.has(config.attempt.status)) {
      setBusy(true);
      poll(config.attempt.url).then((verdict) => (verdict ? finish(verdict) : null)).finally(() => setBusy(false));
    }
  }
})();
