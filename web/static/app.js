// Progressive enhancement for the chat: ask /ask without reloading and keep the conversation for this tab.
// Without this file the form posts to / and the server draws the same markup (web/templates/_turn.html).
// Everything from the user or the articles goes into the page as text nodes, never as HTML.
"use strict";

(() => {
  const STORE = "newsqa.conversation";
  const FOLLOWED = "newsqa.followed"; // the conversation's link a reader followed to a source page
  const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December"];

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    node.append(...children);
    return node;
  }

  // The next four mirror confidence_words and LOW_CONFIDENCE_NOTE in qa/confidence.py, and date_words and
  // excerpt in qa/chat_view.py.
  const LOW_CONFIDENCE_NOTE = "Answers this unsure are right only about half the time: check it against the quoted sentence.";

  function confidenceWords(confidence) {
    if (confidence >= 0.85) return ["High confidence", "high"];
    if (confidence >= 0.3) return ["Fairly sure", "medium"];
    return ["Low confidence", "low"];
  }

  function dateWords(normalized) {
    if (!normalized || !normalized.value) return null;
    const value = String(normalized.value);
    if (normalized.type === "date") {
      const [year, month, day] = value.split("-");
      const name = MONTHS[Number(month) - 1];
      if (day && name) return [`${Number(day)} ${name} ${year}`, value];
      if (month && name) return [`${name} ${year}`, value];
      if (month) return [value, null];
      return [normalized.qualifier ? `${normalized.qualifier} ${value}` : value, value];
    }
    if (normalized.type === "date_range") { // a qualified range is parts of one decade (qa/timeline_view.py)
      const year = Number(value.slice(0, 4));
      const parts = normalized.qualifier && Number.isInteger(year) && /^\d{4}\//.test(value);
      return [parts ? `${normalized.qualifier} ${Math.floor(year / 10) * 10}s` : value.replace("/", "–"), null];
    }
    if (normalized.type === "decade") return [`${normalized.qualifier || "the"} ${value}`, null];
    return null; // a number: the answer already says it
  }

  // Lengths and offsets count code points, as Python's do: Array.from splits a text into them, where
  // String.length and String.slice count UTF-16 units (an emoji is two).
  function excerpt(text, limit = 240) {
    const chars = Array.from(text.split(/\s+/).filter(Boolean).join(" "));
    if (chars.length <= limit) return chars.join("");
    const cut = chars.lastIndexOf(" ", limit - 1);
    return chars.slice(0, cut > limit / 2 ? cut : limit).join("").replace(/[,;:]+$/, "") + "…";
  }

  function sentenceParts(data) {
    const first = data.citations[0];
    if (!data.sentence || !first || first.answer_start == null) return null;
    const chars = Array.from(data.sentence);
    const a = first.answer_start - data.sentence_start;
    const b = first.answer_end - data.sentence_start;
    if (!(a >= 0 && a < b && b <= chars.length)) return null;
    return [chars.slice(0, a).join(""), chars.slice(a, b).join(""), chars.slice(b).join("")];
  }

  // Mirrors around_answer in qa/chat_view.py: the cited passage cut to the answer and some words either side.
  function aroundAnswer(citation, context = 110) {
    const text = Array.from(citation.passage);
    const a = citation.answer_start - citation.start;
    const b = citation.answer_end - citation.start;
    if (citation.answer_start == null || !(a >= 0 && a < b && b <= text.length)) {
      return [excerpt(citation.passage), "", ""];
    }
    let before = text.slice(0, a);
    let after = text.slice(b);
    if (before.length > context) {
      const cut = before.indexOf(" ", before.length - context);
      before = ["…", ...before.slice(cut >= 0 ? cut + 1 : before.length - context)];
    }
    if (after.length > context) {
      const cut = after.lastIndexOf(" ", context - 1);
      after = [...after.slice(0, cut > 0 ? cut : context), "…"];
    }
    return [before, text.slice(a, b), after].map((part) => part.join("").replace(/\s+/g, " "));
  }

  // Mirrors group_by_article in qa/chat_view.py: articles in the order of their best passage.
  function groupByArticle(citations) {
    const groups = new Map();
    for (const citation of citations) {
      if (!groups.has(citation.doc_id)) groups.set(citation.doc_id, { title: citation.title, citations: [] });
      groups.get(citation.doc_id).citations.push(citation);
    }
    return [...groups.values()];
  }

  function question(data, n) {
    const nodes = [el("h2", { class: "question", id: `turn-${n}-q` },
      el("span", { class: "sr-only" }, "You asked: "), data.question)];
    if (data.context_used && data.context_used.length) {
      nodes.push(el("p", { class: "context-used" }, `Read with earlier words: ${data.context_used.join(", ")}`));
    }
    return nodes;
  }

  function answerReply(data, n) {
    const reply = el("div", { class: "reply" },
      el("p", { class: "answer", lang: "id" }, el("span", { class: "sr-only" }, "Answer: "), data.answer));
    const facts = el("p", { class: "facts" });
    const when = dateWords(data.normalized);
    if (when) {
      const fact = el("span", { class: "fact" }, "Date: ",
        when[1] ? el("time", { datetime: when[1] }, when[0]) : when[0]);
      if (data.timeline_url) fact.append(" ", el("a", { class: "on-timeline", href: data.timeline_url }, "on the timeline"));
      facts.append(fact);
    }
    const [words, level] = confidenceWords(data.confidence);
    facts.append(el("span", { class: `confidence ${level}` }, words));
    reply.append(facts);
    if (level === "low") reply.append(el("p", { class: "note caution" }, LOW_CONFIDENCE_NOTE));
    const parts = sentenceParts(data);
    if (parts) {
      reply.append(el("blockquote", { class: "sentence", lang: "id" },
        el("p", {}, parts[0], el("mark", {}, parts[1]), parts[2])));
    }
    const chips = groupByArticle(data.citations).map((group, i) => {
      const count = group.citations.length;
      const passages = group.citations.map((citation) => {
        const [before, answer, after] = aroundAnswer(citation);
        return el("li", {}, el("a", { href: citation.url, lang: "id" }, before, el("mark", {}, answer), after));
      });
      return el("li", {}, el("details", { class: "source-group" },
        el("summary", { class: "chip" },
          el("span", { class: "chip-n" }, el("span", { class: "sr-only" }, "Source "), String(i + 1)), " ",
          el("span", { class: "chip-title", lang: "id", title: group.title }, group.title), " ",
          el("span", { class: "chip-count" }, `${count} ${count === 1 ? "passage" : "passages"}`)),
        el("ol", { class: "group-passages" }, ...passages)));
    });
    reply.append(el("div", { class: "sources" },
      el("h3", { class: "sources-title", id: `turn-${n}-sources` }, "Sources"),
      el("ul", { class: "chips", "aria-labelledby": `turn-${n}-sources` }, ...chips)));
    return reply;
  }

  // Citations without one that overlaps an earlier one of its article (as qa/chat_view.py's apart()).
  function apart(citations) {
    const kept = [];
    for (const c of citations) {
      if (!kept.some((k) => k.doc_id === c.doc_id && k.start < c.end && c.start < k.end)) kept.push(c);
    }
    return kept;
  }

  function abstentionReply(data) {
    const reply = el("div", { class: "reply abstained" },
      el("p", { class: "answer" }, el("span", { class: "sr-only" }, "Answer: "), "The sources don’t say."),
      el("p", { class: "note" }, "No passage answers this clearly enough to quote.",
        data.citations.length ? " These come closest:" : ""));
    const related = apart(data.citations);
    if (related.length) {
      const items = related.map((citation, i) => el("li", {},
        el("a", { href: citation.url },
          el("span", { class: "sr-only" }, "Passage "), el("span", { class: "chip-n" }, String(i + 1)), " ",
          el("span", { class: "related-name", lang: "id" }, citation.title)),
        el("p", { lang: "id" }, excerpt(citation.passage))));
      reply.append(el("h3", { class: "related-title" }, "Related"), el("ol", { class: "related" }, ...items));
    }
    return reply;
  }

  // What a screen reader hears once the reply is drawn: the answer, how sure, and the notes a sighted user sees.
  function announcement(data) {
    const earlier = data.context_used && data.context_used.length
      ? ` Read with earlier words: ${data.context_used.join(", ")}.` : "";
    if (data.abstained) return `The sources don’t say.${earlier}`;
    const [words, level] = confidenceWords(data.confidence);
    return `Answer: ${data.answer}. ${words}.${level === "low" ? ` ${LOW_CONFIDENCE_NOTE}` : ""}${earlier}`;
  }

  function drawTurn(data, n) {
    return el("article", { class: "turn", id: `turn-${n}`, "aria-labelledby": `turn-${n}-q` },
      ...question(data, n), data.abstained ? abstentionReply(data) : answerReply(data, n));
  }

  // The earlier turns a follow-up question may lean on, as /ask takes them (the server keeps no conversation).
  function history(turns) {
    // The server says how many earlier turns it accepts (qa/web.py, history_turns).
    const given = document.getElementById("ask").dataset.historyTurns;
    const limit = given === undefined ? 5 : Number(given); // 5: the service's default, for a page without it
    return (limit > 0 ? turns.slice(-limit) : []).map((t) => ({ question: t.question, answer: t.abstained ? null : t.answer }));
  }

  function loadConversation() {
    try {
      return JSON.parse(sessionStorage.getItem(STORE)) || [];
    } catch {
      return [];
    }
  }

  function saveConversation(turns) {
    try {
      sessionStorage.setItem(STORE, JSON.stringify(turns.slice(-20)));
    } catch {
      // storage full or refused: the conversation still lives on the page
    }
  }

  // Where the reader left the conversation for a source page, for a browser that draws the page anew on Back
  // (one that keeps it in its back/forward cache restores all of this by itself): the link, by its address and
  // its turn counted from the last (only the latest turns are kept), and how far the page was scrolled.
  function rememberFollowedLink(link, fromEnd) {
    try {
      sessionStorage.setItem(FOLLOWED, JSON.stringify({ href: link.getAttribute("href"), fromEnd, y: window.scrollY }));
    } catch {
      // storage full or refused: Back lands on the last turn
    }
  }

  function takeFollowedLink() {
    try {
      const followed = JSON.parse(sessionStorage.getItem(FOLLOWED));
      sessionStorage.removeItem(FOLLOWED);
      return followed && typeof followed.href === "string" && Number.isInteger(followed.fromEnd) ? followed : null;
    } catch {
      return null;
    }
  }

  function forgetFollowedLink() {
    try {
      sessionStorage.removeItem(FOLLOWED);
    } catch {
      // nothing was kept
    }
  }

  function chat(form) {
    form.noValidate = true; // the script says "Please type a question first." itself, and a second click on Ask
    // while the first question is on its way must not raise the browser's "Please fill out this field."
    const input = form.querySelector("#question");
    const button = form.querySelector("#ask-button");
    const error = form.querySelector("#ask-error");
    const status = form.querySelector("#ask-status");
    const note = form.querySelector("#ask-note");
    const reset = document.getElementById("reset");
    const log = document.getElementById("conversation");
    const smooth = window.matchMedia("(prefers-reduced-motion: reduce)").matches ? "auto" : "smooth";
    let turns = loadConversation();
    let busy = false;

    // Coming back from a source page: draw this tab's conversation again, at the link that was followed.
    if (!log.querySelector(".turn") && turns.length) {
      turns.forEach((data, i) => log.append(drawTurn(data, i + 1)));
      reset.hidden = false;
      const followed = takeFollowedLink();
      const drawn = log.querySelectorAll(".turn");
      const turn = followed && drawn[drawn.length - 1 - followed.fromEnd];
      const link = turn && [...turn.querySelectorAll("a")].find((a) => a.getAttribute("href") === followed.href);
      if (link) {
        const group = link.closest("details");
        if (group) group.open = true;
        window.scrollTo(0, followed.y);
        link.focus({ preventScroll: true });
      } else {
        log.lastElementChild.scrollIntoView({ block: "start" });
      }
    }
    reset.addEventListener("click", () => {
      sessionStorage.removeItem(STORE);
      forgetFollowedLink();
    });
    log.addEventListener("click", (event) => {
      const link = event.target.closest("a");
      const turn = link && link.closest(".turn");
      if (!turn || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) {
        return; // a source opened in another tab or window leaves this page where it is
      }
      const drawn = [...log.querySelectorAll(".turn")];
      rememberFollowedLink(link, drawn.length - 1 - drawn.indexOf(turn));
    });
    // Back from the cache: the page is as it was, and what was kept for a page drawn anew must not outlive it.
    window.addEventListener("pageshow", (event) => {
      if (event.persisted) forgetFollowedLink();
    });

    const showError = (message) => {
      error.textContent = message;
      if (message) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    };

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      ask(input.value.trim());
    });
    for (const example of document.querySelectorAll(".example-form")) {
      example.addEventListener("submit", (event) => {
        event.preventDefault();
        ask(example.querySelector("button").value);
      });
    }

    async function ask(text) {
      input.focus();
      if (busy) { // a second click on Ask is nothing; a new question waits in the box, and the reader is told
        if (text) {
          if (!input.value.trim()) input.value = text; // an example clicked while waiting; never over typed words
          note.textContent = "Still looking for the last answer: ask this one once it has come."; // not an error
        }
        return;
      }
      if (!text) {
        showError("Please type a question first.");
        return;
      }
      if (!/[\p{L}\p{N}]/u.test(text)) { // as the page without JavaScript says (qa/answer.py, NO_WORDS)
        showError("A question needs words: this one has no letter or digit.");
        return;
      }
      showError("");
      busy = true;
      button.setAttribute("aria-disabled", "true");
      input.value = "";

      const n = log.querySelectorAll(".turn").length + 1;
      document.getElementById(`turn-${n}`)?.remove(); // a refused form's landing spot (chat.html) would share the id
      const pending = el("div", { class: "reply pending", "aria-busy": "true" },
        el("p", { class: "working" }, el("span", { class: "spinner", "aria-hidden": "true" }),
          "Looking through the articles…"));
      const turn = el("article", { class: "turn", id: `turn-${n}`, "aria-labelledby": `turn-${n}-q` },
        ...question({ question: text }, n), pending);
      log.append(turn);
      turn.scrollIntoView({ block: "start", behavior: smooth });
      status.textContent = "Looking through the articles…";

      try {
        const response = await fetch("/ask", {
          method: "POST",
          headers: { "Content-Type": "application/json", Accept: "application/json" },
          body: JSON.stringify({ question: text, history: history(turns) }),
        });
        const data = await response.json().catch(() => ({}));
        if (!response.ok) throw new Error(data.detail || `the server answered ${response.status}`);
        pending.replaceWith(data.abstained ? abstentionReply(data) : answerReply(data, n));
        turn.querySelector(".question").after(...question(data, n).slice(1));
        turns.push(data);
        saveConversation(turns);
        reset.hidden = false;
        status.textContent = announcement(data);
      } catch (err) {
        turn.remove();
        if (!input.value) input.value = text;
        const message = err instanceof TypeError
          ? "the server could not be reached: check the connection, or that the service is still running, then ask again"
          : err.message;
        showError(`${message.charAt(0).toUpperCase()}${message.slice(1)}.`);
        status.textContent = "";
      } finally {
        busy = false;
        button.removeAttribute("aria-disabled");
        note.textContent = "";
      }
    }
  }

  // On a source page, "Back to the chat" goes back in history when it came from the chat, keeping its scroll place.
  // A source opened in a tab of its own has the chat as referrer but nothing to go back to: the link is followed.
  function backLink(link) {
    if (!document.referrer || window.history.length < 2) return;
    const from = new URL(document.referrer);
    if (from.origin !== location.origin || from.pathname !== "/") return;
    link.addEventListener("click", (event) => {
      event.preventDefault();
      window.history.back(); // window.: `history` in this file is the function that lists earlier turns
    });
  }

  const form = document.getElementById("ask");
  if (form) chat(form);
  const back = document.querySelector(".back-to-chat");
  if (back) backLink(back);
})();
