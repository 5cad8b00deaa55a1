// llm-gateway UI: the few things pages do in the browser (no inline scripts: the CSP forbids them).
"use strict";

function csrfToken() {
  const headers = document.body.getAttribute("hx-headers");
  return headers ? JSON.parse(headers)["x-csrf-token"] : "";
}

// Copy buttons: <button data-copy="#element-id">.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  if (!source) return;
  try {
    await navigator.clipboard.writeText(source.textContent.trim());
    button.textContent = "Copied";
  } catch (error) {
    const range = document.createRange();
    range.selectNodeContents(source);
    window.getSelection().removeAllRanges();
    window.getSelection().addRange(range);
    button.textContent = "Selected: press Ctrl+C";
  }
});

// Confirm dangerous forms: <form data-confirm="Revoke this key?">.
document.addEventListener("submit", (event) => {
  const message = event.target.dataset && event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});

// The playground: stream a chat through POST /ui/playground/chat and show it as it arrives.
async function runPlayground(form) {
  const out = document.getElementById("reply");
  const facts = document.getElementById("reply-facts");
  const status = document.getElementById("reply-status");
  const button = form.querySelector("button[type=submit]");
  const data = new FormData(form);
  const messages = [];
  if (data.get("system")) messages.push({ role: "system", content: data.get("system") });
  messages.push({ role: "user", content: data.get("prompt") });
  const body = { model: data.get("model"), messages, stream: true, stream_options: { include_usage: true } };
  if (data.get("temperature")) body.temperature = Number(data.get("temperature"));
  if (data.get("max_tokens")) body.max_tokens = Number(data.get("max_tokens"));
  out.textContent = "";
  facts.replaceChildren();
  status.textContent = "Sending…";
  button.disabled = true;
  const started = performance.now();
  let firstToken = null;
  let usage = null;
  try {
    const response = await fetch("/ui/playground/chat", {
      method: "POST",
      headers: { "content-type": "application/json", "x-csrf-token": csrfToken() },
      body: JSON.stringify(body),
    });
    const requestId = response.headers.get("x-request-id");
    if (!response.ok) {
      const text = await response.text();
      let message = text;
      try { message = JSON.parse(text).error.message; } catch (error) { /* not JSON */ }
      status.textContent = `Error ${response.status}: ${message}`;
      return;
    }
    status.textContent = "Streaming…";
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        for (const line of event.split("\n")) {
          if (!line.startsWith("data:")) continue;
          const payload = line.slice(5).trim();
          if (payload === "[DONE]") continue;
          const chunk = JSON.parse(payload);
          if (chunk.error) { status.textContent = `Error: ${chunk.error.message}`; continue; }
          if (chunk.usage) usage = chunk.usage;
          for (const choice of chunk.choices || []) {
            const text = choice.delta && choice.delta.content;
            if (text) {
              if (firstToken === null) firstToken = performance.now() - started;
              out.textContent += text;
            }
          }
        }
      }
    }
    const total = performance.now() - started;
    status.textContent = "Done";
    const rows = [["Latency", `${total.toFixed(0)} ms`]];
    if (firstToken !== null) rows.push(["Time to first token", `${firstToken.toFixed(0)} ms`]);
    if (usage) rows.push(["Tokens", `${usage.prompt_tokens} in, ${usage.completion_tokens} out`]);
    if (requestId) rows.push(["Request", requestId]);
    for (const [name, text] of rows) {
      const dt = document.createElement("dt");
      dt.textContent = name;
      const dd = document.createElement("dd");
      dd.textContent = text;
      facts.append(dt, dd);
    }
    if (requestId) loadCost(requestId, facts);
  } catch (error) {
    status.textContent = `Failed: ${error}`;
  } finally {
    button.disabled = false;
  }
}

// The cost is known once the spend row is written (a moment after the reply): ask for it.
async function loadCost(requestId, facts) {
  for (let attempt = 0; attempt < 10; attempt += 1) {
    await new Promise((resolve) => setTimeout(resolve, 400));
    const response = await fetch(`/ui/playground/cost/${encodeURIComponent(requestId)}`);
    if (response.status !== 200) continue;
    const found = await response.json();
    const dt = document.createElement("dt");
    dt.textContent = "Cost";
    const dd = document.createElement("dd");
    dd.textContent = found.cost;
    dd.dataset.testid = "cost";
    facts.append(dt, dd);
    return;
  }
}

document.addEventListener("submit", (event) => {
  if (event.target.id !== "playground") return;
  event.preventDefault();
  runPlayground(event.target);
});
