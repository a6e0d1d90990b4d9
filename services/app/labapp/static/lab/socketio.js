"use strict";
// The lab page's Socket.IO chat (labapp/realtime.py), with the official client (vendor/). By
// default the client starts on long-polling and upgrades to a websocket; ?sio=polling keeps it on
// polling. What it finds out is kept in window.lab.sio for people and the browser tests alike:
// the transport in use (and each change), the session's worker (the `info` ack), the messages.
(() => {
  const pollingOnly = new URLSearchParams(location.search).get("sio") === "polling";
  const state = (lab.sio = { transports: [], events: [], received: [], info: null, forcedPolling: pollingOnly });
  // The client's path relative to the page, like every URL here: under /sub/ it is /sub/socket.io/.
  const path = new URL("socket.io/", document.baseURI).pathname;
  state.path = path;
  const socket = io({ path, transports: pollingOnly ? ["polling"] : ["polling", "websocket"] });
  const show = (id, text) => ($(id).textContent = text);

  const line = (text, who) => chatLine(text, who, "sio-log");

  function event(name, text) {
    state.events.push({ state: name, text, t: performance.now() });
    $("sio-state").dataset.state = name;
    show("sio-state", text);
  }

  function transport(name) {
    state.transports.push(name);
    show("sio-transport", name);
  }

  socket.io.on("open", () => {
    transport(socket.io.engine.transport.name);
    socket.io.engine.on("upgrade", (upgraded) => transport(upgraded.name));
  });
  socket.on("connect", () => {
    event("open", "connected");
    socket.emit("info", null, (info) => {
      state.info = info;
      show("sio-you", `Session ${socket.id}, on worker ${info.served_by.pid} of host ${info.served_by.host} (${info.scheme}://${info.host}).`);
    });
  });
  socket.on("connect_error", (error) => event("error", `cannot connect: ${error.message}`));
  socket.on("disconnect", (reason) => event("closed", `disconnected (${reason}); reconnecting`));
  socket.on("broker", (news) => line(`(broker ${news.state}${news.msg ? `: ${news.msg}` : ""})`, "note"));
  socket.on("chat", (message) => {
    state.received.push(message);
    line(`${message.from.slice(0, 6)}: ${message.msg}`, "them");
  });

  $("sio-form").addEventListener("submit", (submitted) => {
    submitted.preventDefault();
    const text = $("sio-input").value;
    if (!text) return;
    socket.emit("chat", { msg: text }, (ack) => line(ack.ok ? `me: ${text}` : `(not sent: ${ack.error})`, "me"));
    $("sio-input").value = "";
  });
})();
