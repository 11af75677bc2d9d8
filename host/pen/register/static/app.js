// The register page: every sentence from /lang, every rule on the server.
"use strict";
let L = {}, scanned = null, change = null, waiting = null;
const $ = (id) => document.getElementById(id);
const say = (el, text, cls) => { el.textContent = text; el.className = cls || ""; };

async function post(url, body) {
  const r = await fetch(url, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
  return [r.ok, await r.json()];
}

function showAnswer(a) {
  say($("answer"), L.verdict[a.verdict] + ": " + a.words, a.verdict);
}

async function checkText(text) {
  $("payuse").hidden = true; $("paybook").hidden = true;
  const [ok, d] = await post("/scan", {text: text});
  if (!ok) { say($("answer"), d.words, "invalid"); return; }
  scanned = text;
  if (d.answer) showAnswer(d.answer);
  if (d.kind === "use" && d.answer.verdict !== "invalid") { $("payuse").hidden = false; $("payuse").querySelector("button").focus(); }
  if (d.kind === "token" && d.answer.verdict !== "invalid") {
    $("answer").textContent += " " + L.tokenseen; $("cvalue").value = d.value;
    $("paybook").hidden = false; $("book").focus();
  }
  if (d.kind === "sealed") { $("book").value = text; say($("answer"), L.tokenseen, ""); }
}

async function pay(body) {
  const [ok, d] = await post("/pay", body);
  if (!ok) { say($("answer"), d.words + (d.detail ? " (" + d.detail + ")" : ""), "invalid"); return false; }
  say($("answer"), L.verdict[d.answer.verdict] + ": " + d.answer.words + " — " + L.state.pending, "pending");
  $("payuse").hidden = true; $("paybook").hidden = true; $("password").value = "";
  waiting = d.id;
  day();
  return true;
}

function decodeImage(img) {
  const c = $("canvas"); c.width = img.width || img.videoWidth; c.height = img.height || img.videoHeight;
  const g = c.getContext("2d"); g.drawImage(img, 0, 0, c.width, c.height);
  const q = jsQR(g.getImageData(0, 0, c.width, c.height).data, c.width, c.height);
  return q ? q.data : null;
}

let stream = null;
async function camera() {
  if (stream) { stream.getTracks().forEach((t) => t.stop()); stream = null; $("video").hidden = true; $("cam").textContent = L.scan; return; }
  try { stream = await navigator.mediaDevices.getUserMedia({video: {facingMode: "environment"}}); }
  catch (e) { say($("answer"), L.nocamera, "invalid"); return; }
  const v = $("video"); v.srcObject = stream; v.hidden = false; await v.play(); $("cam").textContent = L.stop;
  const tick = () => {
    if (!stream) return;
    const text = v.videoWidth ? decodeImage(v) : null;
    if (text) { $("qrtext").value = text; camera(); checkText(text); } else requestAnimationFrame(tick);
  };
  tick();
}

function row(cells, tag) {
  const tr = document.createElement("tr");
  cells.forEach((c) => { const td = document.createElement(tag); td.textContent = c; tr.appendChild(td); });
  return tr;
}

async function day() {
  const d = await (await fetch("/day")).json();
  const head = $("payments").tHead, body = $("payments").tBodies[0];
  head.replaceChildren(row([L.col.time, L.col.state, L.col.value, L.col.product, L.col.token], "th"));
  body.replaceChildren(...d.payments.map((p) => {
    const hhmm = new Date(p.time * 1000).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit", hour12: false});
    const tr = row([hhmm, L.short[p.state], p.value === null ? "?" : p.value, p.product, p.token], "td");
    tr.children[1].title = L.state[p.state];
    tr.dataset.state = p.state; tr.dataset.id = p.id; return tr;
  }));
  const mine = d.payments.find((p) => p.id === waiting);
  if (mine && mine.state !== "pending") {  // the receipt came (or a conflict): say so where the shopkeeper looks
    say($("answer"), L.state[mine.state], mine.state === "accounted" ? "valid" : "invalid"); waiting = null;
  }
  $("totals").replaceChildren(...Object.entries(d.totals).map(([k, v]) => {
    const li = document.createElement("li"); li.textContent = k + ": " + v; return li; }));
  const heard = d.link.heard ? new Date(d.link.heard * 1000).toLocaleTimeString() : L.never;
  const dl = $("link"); dl.replaceChildren();
  [[L.paired, d.link.paired ? L.yes : L.no], [L.heard, heard], [L.queue, d.queue], [L.outstanding, d.outstanding],
   [L.linkerror, d.link.error || L.none]]
    .forEach(([k, v]) => { const dt = document.createElement("dt"), dd = document.createElement("dd");
      dt.textContent = k; dd.textContent = v; dd.id = "link-" + dl.children.length / 2; dl.append(dt, dd); });
}

async function start() {
  L = await (await fetch("/lang")).json();
  document.querySelectorAll("[data-t]").forEach((el) => { const t = L[el.dataset.t]; if (typeof t === "string") el.textContent = t; });
  $("cam").onclick = camera;
  $("typed").onsubmit = async (e) => {
    e.preventDefault();
    const f = $("qrfile").files[0];
    if (f) {
      const img = new Image(); img.src = URL.createObjectURL(f); await img.decode();
      const text = decodeImage(img); $("qrfile").value = "";
      if (!text) { say($("answer"), L.noqr, "invalid"); return; }
      $("qrtext").value = text;
    }
    checkText($("qrtext").value);
  };
  $("payuse").onsubmit = (e) => { e.preventDefault(); pay({text: scanned}); };
  $("paybook").onsubmit = (e) => { e.preventDefault();
    pay({text: scanned, book: $("book").value, password: $("password").value, product: $("product").value,
    exchange: $("toexchange").checked}); };
  $("change").onsubmit = async (e) => { e.preventDefault();
    const [ok, d] = await post("/change", {value: $("cvalue").value, price: $("cprice").value});
    if (!ok) { say($("changeout"), d.words, "invalid"); $("give").hidden = true; return; }
    change = d;
    say($("changeout"), L.owe + ": " + d.owe + " = " + (d.tokens.map((t) => t.value).join(" + ") || "0"), "valid");
    $("give").hidden = !d.tokens.length; };
  $("give").onclick = async () => {
    const [ok, d] = await post("/change", {value: $("cvalue").value, price: $("cprice").value, give: true, book: $("book").value});
    say($("changeout"), ok ? L.owe + ": " + d.owe + " — " + L.given : d.words, ok ? "valid" : "invalid"); $("give").hidden = true; };
  $("refresh").onclick = day;
  day(); setInterval(day, 1000);
}
start();
