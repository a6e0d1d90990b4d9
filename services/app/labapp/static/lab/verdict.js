// The running stack's verdict (GET /lab/verdict): each behaviour ok or broken, the running
// scenario and its symptom, as the doctor saw them after the last `make reload` / `make watch`
// reload (labctl.verdict writes it). Asked again every few seconds, redrawn when a reload wrote
// a new one. Kept in window.lab.verdict for the browser tests.
const POLL_MS = 3000;
const MARKS = { ok: "ok", broken: "BROKEN", note: "note", "not probed": "-" };

const state = (window.lab = window.lab || {});
state.verdict = null;

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function draw(verdict) {
  const section = document.getElementById("verdict");
  section.dataset.written = verdict.written;
  const broken = verdict.rows.filter((r) => r.verdict === "broken");
  const summary = document.getElementById("verdict-summary");
  summary.className = `verdict ${broken.length ? "bad" : "ok"}`;
  summary.textContent = broken.length
    ? `${broken.length} broken: ${broken.map((r) => r.behaviour).join(", ")}`
    : `every behaviour probed holds (${verdict.rows.length} checks)`;
  document.getElementById("verdict-scenario").textContent = verdict.scenario || "baseline";
  document.getElementById("verdict-symptom").textContent = verdict.symptom ? `Its symptom: ${verdict.symptom}.` : "";
  document.getElementById("verdict-written").textContent = verdict.written;
  const table = document.getElementById("verdict-table");
  table.replaceChildren();
  for (const r of verdict.rows) {
    const row = table.insertRow();
    row.dataset.behaviour = r.behaviour;
    row.dataset.verdict = r.verdict;
    cell(row, r.behaviour);
    cell(row, MARKS[r.verdict] || r.verdict, `mark ${r.verdict.replace(" ", "-")}`);
    cell(row, r.verdict === "broken" ? `${r.seen} (likely cause: ${r.hint})` : r.seen);
  }
  const matches = document.getElementById("verdict-matches");
  matches.replaceChildren(
    ...verdict.matches.map((m) => {
      const li = document.createElement("li");
      li.textContent = `the catalogue's ${m.scenario}: ${m.seen}`;
      return li;
    }),
  );
}

async function ask() {
  let answer;
  try {
    const response = await fetch("lab/verdict", { cache: "no-store" });
    answer = await response.json();
    if (!response.ok) throw new Error(answer.msg || response.status);
  } catch (error) {
    const summary = document.getElementById("verdict-summary");
    summary.className = "verdict";
    summary.textContent = `no verdict: ${error.message || error}`;
    return;
  }
  if (!state.verdict || state.verdict.written !== answer.written) {
    state.verdict = answer;
    draw(answer);
  }
}

ask();
setInterval(ask, POLL_MS);
