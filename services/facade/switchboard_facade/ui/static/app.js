// Switchboard dashboard: copy buttons, confirmations, the new-key dialog and the Connect Cursor page.
// No inline scripts (the pages' Content-Security-Policy forbids them); everything is wired here. Pages work
// without it, except copying and the key test.
"use strict";

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
  } catch (err) {
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    document.body.appendChild(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
}

document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  await copyText(button.getAttribute("data-copy"));
  const label = button.textContent;
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = label; }, 1500);
});

// Destructive actions ask first.
document.addEventListener("submit", (event) => {
  const message = event.target.getAttribute("data-confirm");
  if (message && !window.confirm(message)) event.preventDefault();
});

// Connect Cursor: the base URL follows the public address typed in.
function followPublicOrigin() {
  const input = document.getElementById("public-origin");
  const shown = document.getElementById("base-url");
  const button = document.getElementById("copy-base");
  if (!input || !shown || !button) return;
  const update = () => {
    const typed = input.value.trim().replace(/\/+$/, "");
    const url = /^https?:\/\/[^\s/]+/.test(typed) ? typed + "/cursor" : shown.dataset.local;
    shown.textContent = url;
    button.setAttribute("data-copy", url);
    const note = document.getElementById("base-url-note");
    if (note) note.hidden = url !== shown.dataset.local;
  };
  input.addEventListener("input", update);
  update();
}

// Connect Cursor: one real streamed request through /cursor with the key typed in; the answer as it arrives.
function keyTest() {
  const form = document.getElementById("test-key");
  if (!form) return;
  const status = document.getElementById("test-status");
  const answer = document.getElementById("test-answer");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    const key = form.elements.key.value.trim();
    const model = form.elements.model.value;
    answer.textContent = "";
    status.className = "";
    status.textContent = "Sending…";
    button.disabled = true;
    const started = performance.now();
    let firstToken = 0;
    try {
      const response = await fetch(form.dataset.endpoint, {
        method: "POST",
        credentials: "omit",
        cache: "no-store",
        headers: { "Authorization": "Bearer " + key, "Content-Type": "application/json" },
        body: JSON.stringify({
          model: model, stream: true,
          messages: [{ role: "user", content: "Reply with one short sentence confirming that you can hear me." }],
        }),
      });
      const requestId = response.headers.get("x-request-id") || "";
      if (!response.ok) {
        let message = response.statusText;
        try { message = (await response.json()).error.message; } catch (err) { /* not JSON */ }
        status.className = "bad";
        status.textContent = "Refused (" + response.status + "): " + message;
        return;
      }
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        const events = buffer.split("\n\n");
        buffer = events.pop();
        for (const block of events) {
          for (const line of block.split("\n")) {
            if (!line.startsWith("data:")) continue;
            const data = line.slice(5).trim();
            if (data === "[DONE]") continue;
            let chunk;
            try { chunk = JSON.parse(data); } catch (err) { continue; }
            if (chunk.error) throw new Error(chunk.error.message || "the stream failed");
            const text = chunk.choices && chunk.choices[0] && chunk.choices[0].delta && chunk.choices[0].delta.content;
            if (text) {
              if (!firstToken) firstToken = performance.now() - started;
              answer.textContent += text;
            }
          }
        }
      }
      const served = response.headers.get("x-switchboard-deployment") || "the gateway";
      status.className = "good";
      status.textContent = "It works: " + served + " answered, first token after " + Math.round(firstToken) +
        " ms, done after " + Math.round(performance.now() - started) + " ms (request " + requestId + ").";
    } catch (err) {
      status.className = "bad";
      status.textContent = "The request failed: " + err.message;
    } finally {
      button.disabled = false;
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const dialog = document.querySelector("dialog[data-open]");
  if (dialog && typeof dialog.showModal === "function") dialog.showModal();
  followPublicOrigin();
  keyTest();
});

// The bell: how many alerts arrived in the last day, and the latest ones when opened.
async function loadBell() {
  const bell = document.querySelector("[data-bell]");
  if (!bell) return;
  let data;
  try {
    const answer = await fetch("/ui/alerts/recent", {credentials: "same-origin", headers: {accept: "application/json"}});
    if (!answer.ok) return;
    data = await answer.json();
  } catch (err) {
    return;
  }
  const count = bell.querySelector("[data-bell-count]");
  if (data.new > 0) {
    count.textContent = data.new > 99 ? "99+" : String(data.new);
    count.hidden = false;
    bell.querySelector("summary").setAttribute("aria-label", `Recent alerts: ${data.new} in the last day`);
  }
  const list = bell.querySelector("[data-bell-list]");
  list.replaceChildren();
  if (!data.alerts.length) {
    const empty = document.createElement("li");
    empty.className = "muted";
    empty.textContent = data.unavailable ? "Alerts are unavailable right now." : "No alerts.";
    list.appendChild(empty);
    return;
  }
  for (const alert of data.alerts) {
    const item = document.createElement("li");
    const when = document.createElement("time");
    when.dateTime = alert.created_at;
    when.textContent = new Date(alert.created_at).toLocaleString();
    item.appendChild(when);
    item.appendChild(document.createTextNode(alert.message));
    list.appendChild(item);
  }
}
document.addEventListener("DOMContentLoaded", loadBell);
