// Hotline web chat. Keeps nothing on the device: no cookies, no storage, and the
// conversation disappears with the page. Everything is rendered with textContent.
"use strict";
(function () {
  const EXIT_URL = "https://www.wikipedia.org/";
  const log = document.getElementById("log");
  const form = document.getElementById("composer");
  const input = document.getElementById("text");
  const status = document.getElementById("status");
  let socket = null;
  let lastEscape = 0;
  let words = {};  // this page's own labels in every language (ui.json)
  let pageLang = (navigator.language || "en").toLowerCase();

  // The page follows the conversation's language: labels, lang and direction
  // (right to left for Arabic). The browser's language is the first guess.
  function applyLanguage(lang, dir) {
    const code = (lang || "en").split("-")[0];
    pageLang = code;
    document.documentElement.lang = code;
    if (dir) document.documentElement.dir = dir;
    const table = words[code];
    if (!table) return;
    for (const el of document.querySelectorAll("[data-ui]")) el.textContent = table[el.dataset.ui];
    for (const el of document.querySelectorAll("[data-ui-label]")) el.setAttribute("aria-label", table[el.dataset.uiLabel]);
    for (const el of document.querySelectorAll("[data-ui-placeholder]")) el.placeholder = table[el.dataset.uiPlaceholder];
  }

  function say(key) {
    const table = words[pageLang] || words.en || {};
    return table[key] || "";
  }

  function quickExit() {
    if (socket) { socket.onclose = null; socket.close(); }
    log.replaceChildren();
    input.value = "";
    try { sessionStorage.clear(); localStorage.clear(); } catch (e) { /* storage disabled */ }
    location.replace(EXIT_URL);
  }

  function bubble(kind, text, lang, dir) {
    const el = document.createElement("div");
    el.className = "msg " + kind;
    el.textContent = text;
    if (lang) el.lang = lang;
    el.dir = dir || "auto";
    log.appendChild(el);
    log.scrollTop = log.scrollHeight;
    return el;
  }

  // Asking to delete (the bot's button or the typed word) also clears this page.
  const DELETE_WORDS = ["/delete", "delete"];

  function send(text, shown) {
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      status.textContent = say("offline") || "Not connected. Trying again…";
      return false;
    }
    socket.send(JSON.stringify({ type: "message", text: text }));
    if (DELETE_WORDS.includes(text.trim().toLowerCase())) {
      log.replaceChildren();
    } else {
      bubble("me", shown || text, null, "auto");
    }
    return true;
  }

  function render(frame) {
    if (frame.type === "error") {
      bubble("error", frame.message);
      return;
    }
    if (frame.type !== "message") return;
    const el = bubble(frame.from === "staff" ? "staff" : "bot", frame.text, frame.lang, frame.dir);
    if (frame.lang) applyLanguage(frame.lang, frame.dir);
    if (Array.isArray(frame.buttons) && frame.buttons.length) {
      const group = document.createElement("div");
      group.className = "buttons";
      group.setAttribute("role", "group");
      for (const b of frame.buttons) {
        const btn = document.createElement("button");
        btn.type = "button";
        btn.textContent = b.title;
        btn.addEventListener("click", function () {
          if (send(b.payload, b.title)) group.remove();
        });
        group.appendChild(btn);
      }
      el.appendChild(group);
    }
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(scheme + "//" + location.host + "/chat/ws");
    socket.onopen = function () {
      status.textContent = "";
      socket.send(JSON.stringify({ type: "hello", lang: (navigator.language || "en").toLowerCase() }));
    };
    socket.onmessage = function (event) {
      try { render(JSON.parse(event.data)); } catch (e) { /* ignore a malformed frame */ }
    };
    socket.onclose = function () {
      status.textContent = say("reconnecting") || "Connection lost. Reconnecting…";
      setTimeout(connect, 2000);
    };
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const text = input.value.trim();
    if (text && send(text)) input.value = "";
    input.focus();
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  document.getElementById("exit").addEventListener("click", quickExit);
  document.getElementById("language").addEventListener("click", function () {
    send("/language", say("language") || "Language");
  });
  document.getElementById("delete").addEventListener("click", function () {
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    socket.send(JSON.stringify({ type: "delete" }));
    log.replaceChildren();
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    const now = Date.now();
    if (now - lastEscape < 800) quickExit();
    lastEscape = now;
  });
  fetch("/chat/static/ui.json", { cache: "no-store", credentials: "omit" })
    .then(function (response) { return response.json(); })
    .then(function (table) {
      words = table;
      const guess = pageLang.split("-")[0];
      if (words[guess]) applyLanguage(guess, words[guess].dir);
    })
    .catch(function () { /* the English labels stay */ });
  connect();
})();
