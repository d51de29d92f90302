// fanline console: the agent workspace and the shop admin's pages, on the public API.
"use strict";

const state = { token: "", user: "", role: "", shop: "", ws: null, chat: null, frameID: 0, pending: new Map(), blobs: [] };
const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

// api calls the HTTP API; an error answer throws an Error with code and problems.
async function api(method, path, body) {
  const opts = { method, headers: {} };
  if (state.token) opts.headers.Authorization = "Bearer " + state.token;
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  const resp = await fetch(path, opts);
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    const e = new Error((data.error && data.error.message) || resp.statusText);
    e.code = data.error && data.error.code;
    e.problems = (data.error && data.error.problems) || [];
    throw e;
  }
  return data;
}

// Claims of a JWT, to know who we are.
function claims(token) {
  const part = token.split(".")[1] || "";
  return JSON.parse(atob(part.replace(/-/g, "+").replace(/_/g, "/")));
}

function signIn(token) {
  const c = claims(token);
  Object.assign(state, { token, user: c.sub, role: c.role || "buyer", shop: c.shop || "" });
  sessionStorage.setItem("fanline.token", token);
  $("who").textContent = `${state.user} (${state.role}${state.shop ? " of " + state.shop : ""})`;
  $("login").hidden = true;
  $("logout").hidden = false;
  connect();
  if (state.role === "agent") {
    $("agent").hidden = false;
    loadChats();
  } else if (state.role === "admin") {
    $("admin").hidden = false;
    loadAdmin();
  } else {
    $("login-error").textContent = "The console is for agents and admins.";
  }
}

// connect keeps a WebSocket open (pushes, cs events) and pings it.
function connect() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  // The token rides in the subprotocol list, not the URL (proxies log URLs).
  const ws = new WebSocket(`${proto}//${location.host}/v1/ws`, ["fanline", "bearer." + state.token]);
  state.ws = ws;
  const ping = setInterval(() => ws.readyState === 1 && ws.send(JSON.stringify({ type: "ping" })), 20000);
  ws.onmessage = (ev) => onFrame(JSON.parse(ev.data));
  ws.onclose = () => {
    clearInterval(ping);
    if (state.ws === ws && state.token) setTimeout(connect, 2000);
  };
}

// request sends a frame and resolves with its ack.
function request(frame) {
  const id = String(++state.frameID);
  frame.id = id;
  return new Promise((resolve, reject) => {
    state.pending.set(id, { resolve, reject });
    state.ws.send(JSON.stringify(frame));
  });
}

function onFrame(f) {
  if (f.id && state.pending.has(f.id)) {
    const p = state.pending.get(f.id);
    state.pending.delete(f.id);
    if (f.type === "error") p.reject(new Error(f.message));
    else p.resolve(f.result);
    return;
  }
  if (f.type === "message" && f.entry && state.chat && f.entry.conversation_id === state.chat) {
    showMessage(f.entry);
  } else if (f.type === "cs" && f.event === "live") {
    showLive(f.live);
  } else if (f.type === "cs") {
    if (state.role === "agent") loadChats();
  }
}

// --- agent workspace ---

async function loadChats() {
  try {
    const { conversations } = await api("GET", "/v1/agents/me/conversations");
    const ul = $("chats");
    ul.replaceChildren();
    for (const c of conversations) {
      const li = el("li", `${c.buyer_id} — ${c.skill}`);
      if (c.conversation_id === state.chat) li.className = "active";
      li.onclick = () => openChat(c);
      ul.append(li);
    }
    if (state.chat && !conversations.some((c) => c.conversation_id === state.chat)) closeView();
  } catch (e) {
    $("agent-error").textContent = e.message;
  }
}

function closeView() {
  state.chat = null;
  $("chat-title").textContent = "Select a chat";
  $("messages").replaceChildren();
  $("reply-form").hidden = true;
  $("chat-actions").hidden = true;
}

async function openChat(c) {
  state.chat = c.conversation_id;
  $("chat-title").textContent = `Chat with ${c.buyer_id}`;
  $("reply-form").hidden = false;
  $("chat-actions").hidden = false;
  $("messages").replaceChildren();
  for (const u of state.blobs.splice(0)) URL.revokeObjectURL(u);
  const hist = await api("GET", `/v1/conversations/${c.conversation_id}/messages?limit=100`);
  for (const m of hist.messages.reverse()) showMessage(m);
  loadChats();
}

function showMessage(m) {
  const who = m.agent_id ? `${m.agent_id} (shop)` : m.from;
  const li = el("li", `${who}: `, m.agent_id === state.user ? "mine" : "");
  const media = !m.recalled && m.body && m.body.object_key && ["image", "video", "file"].includes(m.type);
  if (media) li.append(mediaView(m));
  else li.append(m.recalled ? "(recalled)" : (m.body && m.body.text) || JSON.stringify(m.body));
  $("messages").append(li);
  li.scrollIntoView({ block: "nearest" });
}

// mediaView shows a media message: a JPEG or PNG image as its 256 px thumbnail (the
// original opens on click), anything else as a link that downloads it.
function mediaView(m) {
  const b = m.body;
  const label = `${b.name || m.type} (${formatBytes(b.size)})`;
  if (m.type === "image" && (b.mime_type === "image/jpeg" || b.mime_type === "image/png")) {
    const img = el("img", undefined, "thumb");
    img.alt = label;
    img.title = label;
    mediaURL(b.object_key, 256).then((u) => { img.src = u; })
      .catch((e) => img.replaceWith(el("span", `${label}: ${e.message}`, "media-error")));
    img.onclick = () => openMedia(b.object_key, b.name || "image");
    return img;
  }
  const a = el("a", label, "file");
  a.href = "#";
  a.onclick = (ev) => { ev.preventDefault(); openMedia(b.object_key, b.name || "download"); };
  return a;
}

function formatBytes(n) {
  if (!(n > 0)) return "?";
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

// mediaURL fetches a media object (thumb: its thumbnail of that side) with the
// session's token and returns a local URL of its bytes, released when the chat
// changes.
async function mediaURL(key, thumb) {
  const q = thumb ? `?thumb=${thumb}` : "";
  const resp = await fetch(`/v1/media/${encodeURIComponent(key)}${q}`, { headers: { Authorization: "Bearer " + state.token } });
  if (!resp.ok) {
    const data = await resp.json().catch(() => ({}));
    throw new Error((data.error && data.error.message) || resp.statusText);
  }
  const u = URL.createObjectURL(await resp.blob());
  state.blobs.push(u);
  return u;
}

async function openMedia(key, name) {
  try {
    const a = document.createElement("a");
    a.href = await mediaURL(key, 0);
    a.download = name;
    a.click();
  } catch (e) {
    $("agent-error").textContent = e.message;
  }
}

function clientMsgID() {
  return "console-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 10);
}

$("reply-form").onsubmit = async (ev) => {
  ev.preventDefault();
  const input = ev.target.elements.text;
  try {
    await request({ type: "send", message: { client_msg_id: clientMsgID(), conversation_id: state.chat, type: "text", body: { text: input.value } } });
    input.value = "";
  } catch (e) {
    $("agent-error").textContent = e.message;
  }
};

for (const b of document.querySelectorAll("[data-status]")) {
  b.onclick = async () => {
    try {
      await api("PUT", "/v1/agents/me/status", { status: b.dataset.status });
      $("status").textContent = b.dataset.status;
      loadChats();
    } catch (e) {
      $("agent-error").textContent = e.message;
    }
  };
}

$("close-chat").onclick = async () => {
  try {
    await api("POST", `/v1/cs/conversations/${state.chat}/close`);
    closeView();
    loadChats();
  } catch (e) {
    $("agent-error").textContent = e.message;
  }
};

$("transfer-form").onsubmit = async (ev) => {
  ev.preventDefault();
  const f = ev.target.elements;
  try {
    await api("POST", `/v1/cs/conversations/${state.chat}/transfer`, { [f.kind.value]: f.to.value });
    loadChats();
  } catch (e) {
    $("agent-error").textContent = e.message;
  }
};

// --- admin pages ---

function shopPath(rest) {
  return `/v1/admin/shops/${encodeURIComponent(state.shop)}${rest}`;
}

function showProblems(id, e) {
  const ul = $(id);
  ul.replaceChildren();
  const problems = e.problems.length ? e.problems : [{ field: "", message: e.message }];
  for (const p of problems) ul.append(el("li", p.field ? `${p.field}: ${p.message}` : p.message));
}

async function loadAdmin() {
  try {
    const rules = await api("GET", shopPath("/routing"));
    $("rules-version").textContent = "version " + rules.version;
    $("rules").value = JSON.stringify(rules, null, 2);
  } catch (e) {
    $("rules").value = JSON.stringify({ skills: [{ name: "pre_sales" }, { name: "after_sales" }], entries: { product: { skill: "pre_sales" }, order: { skill: "after_sales" } } }, null, 2);
    $("rules-version").textContent = e.code === "shop_not_found" ? "(none yet)" : e.message;
  }
  const agents = await api("GET", shopPath("/agents"));
  $("agents").value = JSON.stringify({ agents: agents.agents.map(({ agent_id, name, skills, capacity }) => ({ agent_id, name, skills, capacity })) }, null, 2);
  api("GET", shopPath("/live")).then(showLive, () => {});
  await loadAudit();
  $("admin").dataset.loaded = "1"; // the editors hold the server's documents now
}

$("save-rules").onclick = async () => {
  $("rules-problems").replaceChildren();
  try {
    const rules = await api("PUT", shopPath("/routing"), $("rules").value);
    $("rules-version").textContent = "version " + rules.version;
  } catch (e) {
    showProblems("rules-problems", e);
  }
};

$("save-agents").onclick = async () => {
  $("agents-problems").replaceChildren();
  try {
    await api("PUT", shopPath("/agents"), $("agents").value);
  } catch (e) {
    showProblems("agents-problems", e);
  }
};

$("dry-form").onsubmit = async (ev) => {
  ev.preventDefault();
  const f = ev.target.elements;
  try {
    const d = await api("POST", shopPath("/routing/dry-run"), { buyer_id: f.buyer_id.value, entry: f.entry.value, text: f.text.value });
    $("dry-result").textContent = `${d.state}${d.agent_id ? " to " + d.agent_id : ""} (${d.skill})\n${d.reason}`;
  } catch (e) {
    $("dry-result").textContent = e.message;
  }
};

async function loadAudit() {
  const { entries } = await api("GET", shopPath("/audit?limit=50"));
  const body = $("audit").tBodies[0];
  body.replaceChildren();
  for (const a of entries.reverse()) {
    const tr = el("tr");
    for (const v of [new Date(a.at).toLocaleTimeString(), a.conversation_id, a.action, a.agent_id || "", a.reason]) tr.append(el("td", v));
    body.append(tr);
  }
}
$("refresh-audit").onclick = loadAudit;

function showLive(live) {
  if (!live || state.role !== "admin") return;
  const box = $("live");
  box.replaceChildren();
  const queues = Object.entries(live.queue_depth || {}).map(([k, v]) => `${k}: ${v}`).join(", ");
  box.append(el("p", `${live.open ? "open" : "closed"}; waiting: ${queues || "none"}; longest wait ${live.longest_wait}`));
  const table = el("table");
  for (const a of live.agents || []) {
    const tr = el("tr");
    for (const v of [a.agent_id, a.status + (a.connected ? "" : " (disconnected)"), `${a.load}/${a.capacity}`]) tr.append(el("td", v));
    table.append(tr);
  }
  box.append(table);
}

// --- sign in and out ---

$("login-form").onsubmit = async (ev) => {
  ev.preventDefault();
  const f = ev.target.elements;
  try {
    const { token } = await api("POST", "/v1/dev/token", { user_id: f.user_id.value, role: f.role.value, shop_id: f.shop_id.value });
    signIn(token);
  } catch (e) {
    $("login-error").textContent = e.message;
  }
};

$("token-form").onsubmit = (ev) => {
  ev.preventDefault();
  try {
    signIn(ev.target.elements.token.value.trim());
  } catch (e) {
    $("login-error").textContent = "That is not a token: " + e.message;
  }
};

$("logout").onclick = () => {
  sessionStorage.removeItem("fanline.token");
  state.token = "";
  if (state.ws) state.ws.close();
  location.reload();
};

const saved = sessionStorage.getItem("fanline.token");
if (saved) signIn(saved);
