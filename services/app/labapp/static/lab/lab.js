"use strict";
// The lab page. Everything it finds out is also kept in window.lab, which the browser tests
// (tests/browser) read, so people and tests look at the same facts.
const MIB = 1024 * 1024;
const HASH_SLICE_BYTES = 4 * MIB;

const lab = (window.lab = {
  request: null,
  chat: { url: "", events: [], received: [] },
  upload: null,
  stream: null,
  // crypto.subtle.digest() needs the whole file in memory: above this, hash in slices (sha256.js).
  webcryptoMaxBytes: 256 * MIB,
});

const $ = (id) => document.getElementById(id);

function addRow(table, key, value) {
  const row = table.insertRow();
  const th = document.createElement("th");
  th.textContent = key;
  row.append(th);
  row.insertCell().textContent = value;
}

function setVerdict(element, ok, text) {
  element.className = `verdict ${ok ? "ok" : "bad"}`;
  element.textContent = text;
}

// --- what the app sees -------------------------------------------------------------------
async function showRequest() {
  const page = `${location.protocol}//${location.host}`;
  $("page-origin").textContent = page;
  $("redirect-expect").textContent = page;
  try {
    const response = await fetch("debug/request", { cache: "no-store" });
    lab.request = await response.json();
  } catch (error) {
    setVerdict($("request-verdict"), false, `GET /debug/request failed: ${error}`);
    return;
  }
  const seen = lab.request;
  for (const key of ["method", "scheme", "host", "url_root", "url", "remote_addr", "request_id"]) {
    addRow($("request-table"), key, seen[key]);
  }
  const by = seen.served_by;
  if (by) addRow($("request-table"), "served_by", `worker ${by.pid} of host ${by.host}`);
  for (const [name, value] of Object.entries(seen.headers || {})) addRow($("request-headers"), name, value);
  const same = `${seen.scheme}://${seen.host}` === page;
  setVerdict(
    $("request-verdict"),
    same,
    same
      ? `The app sees ${page}, as this page does.`
      : `The app sees ${seen.scheme}://${seen.host}, this page is ${page}: ` +
          "check proxy_set_header Host / X-Forwarded-Proto in nginx and ProxyFix in the app.",
  );
}

// --- chat on /ws/chat ---------------------------------------------------------------------
// After any close the page did not ask for (a restarting worker's 1001, the broker's 1013, a
// dropped connection) it reconnects by itself, after an exponential backoff with jitter so that
// the clients of a worker that went away do not all come back at the same instant; the state
// line says when. The hello (?whoami=1) names this client and the worker that holds it.
const RECONNECT_FIRST_MS = 500;
const RECONNECT_MAX_MS = 15000;
// A socket that stayed open this long resets the backoff; one closed sooner (a broker still
// down, a route that drops every socket at once) lets it grow.
const STABLE_AFTER_MS = 5000;

let chat = null;
const reconnect = { attempt: 0, timer: null };

function reconnectDelayMs(attempt) {
  const ceiling = Math.min(RECONNECT_MAX_MS, RECONNECT_FIRST_MS * 2 ** attempt);
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

function chatLine(text, who, log = "chat-log") {
  const item = document.createElement("li");
  item.className = who;
  item.textContent = text;
  $(log).append(item);
  item.scrollIntoView({ block: "nearest" });
}

function connectChat(byHand = true) {
  clearTimeout(reconnect.timer);
  if (byHand) {
    reconnect.attempt = 0;
    lab.chat = { url: "", events: [], received: [], you: null, reconnects: 0 };
  } else {
    lab.chat.reconnects += 1;
  }
  if (chat) {
    const replaced = chat;
    chat = null; // its own close event is then ignored: no reconnect for a socket closed here
    replaced.close();
  }
  // Relative to the page, like every URL here: under /sub/ the socket is /sub/ws/chat.
  const url = new URL("ws/chat?whoami=1", document.baseURI);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(url);
  chat = socket;
  lab.chat.url = url.href;
  $("chat-url").textContent = url.href;
  let openedAt = null;
  const mark = (state, text, extra = {}) => {
    if (socket !== chat) return; // a replaced socket's late events
    lab.chat.events.push({ state, text, t: performance.now(), ...extra });
    $("chat-state").dataset.state = state;
    $("chat-state").textContent = text;
  };
  mark("connecting", byHand ? "connecting…" : `reconnecting (attempt ${reconnect.attempt})…`);
  socket.onopen = () => {
    openedAt = performance.now();
    mark("open", "open");
    if (!byHand) chatLine(`(reconnected after ${lab.chat.reconnects} attempt(s))`, "note");
  };
  socket.onerror = () => mark("error", "error");
  socket.onclose = (event) => {
    if (socket !== chat) return;
    const lived = openedAt === null ? "never opened" : `open for ${Math.round(performance.now() - openedAt)} ms`;
    const why = `code ${event.code}${event.reason ? `, ${event.reason}` : ""} (${lived})`;
    // Open then closed within moments is the "connects then drops" report (ws-no-flag scenario).
    mark("closed", `closed, ${why}`, { code: event.code, reason: event.reason, opened: openedAt !== null });
    if (openedAt !== null && performance.now() - openedAt >= STABLE_AFTER_MS) reconnect.attempt = 0;
    const delay = reconnectDelayMs(reconnect.attempt);
    reconnect.attempt += 1;
    const next = `reconnecting in ${(delay / 1000).toFixed(1)} s…`;
    mark("waiting", `closed, ${why}: ${next}`, { delay_ms: delay });
    chatLine(`(closed, ${why}; ${next})`, "note");
    reconnect.timer = setTimeout(() => connectChat(false), delay);
  };
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if ("you" in message) {
      lab.chat.you = message;
      const where = message.served_by;
      $("chat-you").textContent = `You are #${message.you}, on worker ${where.pid} of host ${where.host}.`;
      return;
    }
    lab.chat.received.push(message);
    chatLine(`#${message.from}: ${message.msg}`, "them");
  };
}

function sendChat(event) {
  event.preventDefault();
  const text = $("chat-input").value;
  if (!text) return;
  if (!chat || chat.readyState !== WebSocket.OPEN) {
    chatLine(`(not sent, the socket is ${$("chat-state").textContent})`, "me");
    return;
  }
  chat.send(text);
  chatLine(`me: ${text}`, "me");
  $("chat-input").value = "";
}

// --- upload with a progress bar and both hashes -------------------------------------------
const toHex = (buffer) => Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");

async function browserSha256(file) {
  if (file.size <= lab.webcryptoMaxBytes) {
    return { how: "WebCrypto", hex: toHex(await crypto.subtle.digest("SHA-256", await file.arrayBuffer())) };
  }
  const digest = new Sha256();
  for (let offset = 0; offset < file.size; offset += HASH_SLICE_BYTES) {
    digest.update(new Uint8Array(await file.slice(offset, offset + HASH_SLICE_BYTES).arrayBuffer()));
  }
  return { how: `sha256.js, ${HASH_SLICE_BYTES / MIB} MiB slices`, hex: digest.hex() };
}

function showProgress(loaded, total) {
  $("upload-progress").value = total ? loaded / total : 0;
  $("upload-percent").textContent = `${(loaded / MIB).toFixed(1)} of ${(total / MIB).toFixed(1)} MiB`;
}

function postFile(file) {
  // XMLHttpRequest, not fetch: only it reports upload progress.
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "upload");
    xhr.upload.onprogress = (event) => showProgress(event.loaded, event.total);
    xhr.onload = () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = { msg: `not JSON: ${xhr.responseText.slice(0, 200)}` };
      }
      resolve({ status: xhr.status, body });
    };
    xhr.onerror = () => resolve({ status: 0, body: { msg: "the connection failed (reset? see `make logs`)" } });
    const form = new FormData();
    form.append("file", file);
    xhr.send(form);
  });
}

async function upload(event) {
  event.preventDefault();
  const file = $("upload-file").files[0];
  if (!file) return;
  lab.upload = { state: "uploading", name: file.name, size: file.size };
  for (const id of ["sha-server", "sha-browser", "upload-verdict"]) $(id).textContent = "…";
  showProgress(0, file.size);
  const [answer, hashed] = await Promise.all([postFile(file), browserSha256(file)]);
  const server = answer.body || {};
  $("sha-server").textContent = server.sha256 || `HTTP ${answer.status}: ${server.msg}`;
  $("sha-browser").textContent = `${hashed.hex} (${hashed.how})`;
  const match = answer.status === 201 && server.sha256 === hashed.hex && server.size === file.size;
  lab.upload = { state: "done", status: answer.status, server, browser: hashed.hex, match };
  setVerdict(
    $("upload-verdict"),
    match,
    match
      ? `${server.name}: ${file.size} bytes arrived intact (the hashes match).`
      : answer.status === 201
        ? `MISMATCH: the server stored ${server.size} bytes with another sha256 than the ${file.size} sent.`
        : `Upload failed, HTTP ${answer.status}: ${server.msg}`,
  );
}

// --- a stream: when each event arrives ---------------------------------------------------
const STREAM_EVENTS = 5;
const STREAM_INTERVAL_S = 0.5;
// A stream cut short (the browser's network changed, the stack restarted) is timed again from
// its start, this many times: an EventSource's own reconnect would resume it mid-way.
const STREAM_ATTEMPTS = 3;

function startStream(attempt = 1) {
  const started = performance.now();
  const stream = (lab.stream = { events: [], done: false, asWritten: null, attempt });
  $("stream-interval").textContent = STREAM_INTERVAL_S;
  $("stream-log").replaceChildren();
  $("stream-verdict").textContent = "";
  const source = new EventSource(`stream/events?count=${STREAM_EVENTS}&interval=${STREAM_INTERVAL_S}`);
  source.addEventListener("tick", (message) => {
    const data = JSON.parse(message.data);
    const arrivedS = (performance.now() - started) / 1000;
    stream.events.push({ id: message.lastEventId, n: data.n, sentS: data.elapsed_s, arrivedS });
    const item = document.createElement("li");
    item.textContent = `event ${message.lastEventId}: written at ${data.elapsed_s.toFixed(2)} s, arrived at ${arrivedS.toFixed(2)} s`;
    $("stream-log").append(item);
    if (data.n === data.of) {
      source.close(); // the stream is over: EventSource would otherwise reconnect and start again
      finishStream(stream);
    }
  });
  source.onerror = () => {
    source.close();
    if (attempt < STREAM_ATTEMPTS) {
      startStream(attempt + 1);
      return;
    }
    stream.done = true;
    setVerdict($("stream-verdict"), false, `the stream failed after ${stream.events.length} events`);
  };
}

function finishStream(stream) {
  const first = stream.events[0].arrivedS;
  const spread = stream.events[stream.events.length - 1].arrivedS - first;
  // Written over (count - 1) intervals: arriving as written spreads them over about as long.
  stream.asWritten = spread >= (STREAM_EVENTS - 1) * STREAM_INTERVAL_S * 0.8;
  stream.done = true;
  setVerdict(
    $("stream-verdict"),
    stream.asWritten,
    stream.asWritten
      ? `Each event arrived as it was written (over ${spread.toFixed(2)} s).`
      : `All events arrived together, ${first.toFixed(2)} s in: the proxy buffers this stream (proxy_buffering off on its location, or X-Accel-Buffering: no).`,
  );
}

$("stream-start").addEventListener("click", () => startStream());
$("chat-connect").addEventListener("click", () => connectChat());
$("chat-form").addEventListener("submit", sendChat);
$("upload-form").addEventListener("submit", upload);
showRequest();
connectChat();
startStream();
