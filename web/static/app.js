// fanline console: the agent workspace and the shop admin's pages, on the public API.
import { $, el, call, mediaBlob, socket } from "./common.js";

const state = {
  token: "", user: "", role: "", shop: "", ws: null, blobs: [],
  chat: null, buyer: "", chats: [], chatsCall: 0, cursor: -1, unread: {}, canned: [], lastDay: "", lastSeen: "", typingSent: 0, typingTimer: 0,
};

// api calls the HTTP API with the session's token.
const api = (method, path, body) => call(state.token, method, path, body);

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
    loadCanned();
    loadColleagues(); // and the agent's own status
  } else if (state.role === "admin") {
    $("admin").hidden = false;
    loadAdmin();
  } else {
    $("login-error").textContent = "The console is for agents and admins.";
  }
}

// connect keeps a WebSocket open (pushes, cs events, typing).
function connect() {
  state.ws = socket(state.token, onFrame, () => Boolean(state.token));
}

// request sends a frame and resolves with its ack.
const request = (frame) => state.ws.send(frame);

function onFrame(f) {
  if (f.type === "message" && f.entry) {
    if (state.role === "agent") onEntry(f.entry);
  } else if (f.type === "typing") {
    if (f.conversation_id === state.chat) showTyping(f.from);
  } else if (f.type === "cs" && f.event === "live") {
    if (state.role === "agent" && f.live && state.chat) showColleagues(f.live.agents || []);
    showLive(f.live);
  } else if (f.type === "cs") {
    if (state.role !== "agent") return;
    loadChats();
    const c = f.chat;
    if (c && c.agent_id === state.user && ["assigned", "reassigned", "transferred"].includes(f.event)) {
      notify("New chat", `${c.buyer_id}${c.skill ? " (" + c.skill + ")" : ""}`, c.conversation_id);
    }
  }
}

// --- agent workspace ---

// loadChats reloads the agent's chats; of calls that overlap, only the latest one's
// answer is shown.
async function loadChats() {
  const call = ++state.chatsCall;
  try {
    const { conversations } = await api("GET", "/v1/agents/me/conversations");
    if (call !== state.chatsCall) return;
    state.chats = conversations;
    renderChats();
    if (state.chat && !conversations.some((c) => c.conversation_id === state.chat)) closeView();
  } catch (e) {
    $("agent-error").textContent = e.message;
  }
}

function renderChats() {
  const ul = $("chats");
  ul.replaceChildren();
  let total = 0;
  for (const c of state.chats) {
    const li = el("li", `${c.buyer_id} — ${c.skill}`);
    const n = state.unread[c.conversation_id] || 0;
    total += n;
    if (n) {
      const badge = el("span", String(n), "badge");
      badge.setAttribute("aria-label", `${n} unread`);
      li.append(badge);
    }
    if (c.conversation_id === state.chat) li.classList.add("active");
    if (state.chats.indexOf(c) === state.cursor) li.classList.add("cursor");
    li.onclick = () => openChat(c);
    ul.append(li);
  }
  document.title = (total ? `(${total}) ` : "") + "fanline console";
}

// onEntry applies a pushed timeline entry: a message or recall of the open chat is
// shown, a message elsewhere counts as unread.
function onEntry(e) {
  const mine = e.agent_id === state.user;
  if (e.conversation_id !== state.chat) {
    if (e.kind === "message" && !mine) {
      state.unread[e.conversation_id] = (state.unread[e.conversation_id] || 0) + 1;
      if (!e.agent_id) notify(e.from, preview(e), e.conversation_id);
      if (state.chats.some((c) => c.conversation_id === e.conversation_id)) renderChats();
      else loadChats(); // a chat this list does not show yet
    }
    return;
  }
  if (e.kind === "message") {
    showMessage(e);
    if (!e.agent_id) {
      showTyping("");
      markRead(e.msg_id);
      if (document.hidden) notify(e.from, preview(e), e.conversation_id);
    }
  } else if (e.kind === "read" && e.from === state.buyer) {
    showRead(e.msg_id);
  } else if (e.kind === "recall") {
    const li = document.querySelector(`#messages li[data-id="${e.msg_id}"]`);
    if (li) markRecalled(li);
  }
}

function preview(e) {
  return e.body && e.body.text ? e.body.text.slice(0, 120) : `(${e.type})`;
}

// notify tells the agent of a new chat or a buyer's message while the console is
// not in front: a desktop notification (when allowed) and a short tone. The
// title's unread count says it too.
function notify(title, body, conv) {
  if (!document.hidden) return;
  if ("Notification" in window && Notification.permission === "granted") {
    const n = new Notification(title, { body, tag: String(conv) });
    n.onclick = () => {
      window.focus();
      const c = state.chats.find((x) => x.conversation_id === conv);
      if (c) openChat(c);
    };
  }
  try {
    const ctx = state.audio || (state.audio = new AudioContext());
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    gain.gain.setValueAtTime(0.15, ctx.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.001, ctx.currentTime + 0.3);
    osc.frequency.value = 880;
    osc.connect(gain).connect(ctx.destination);
    osc.start();
    osc.stop(ctx.currentTime + 0.3);
  } catch {
    // No sound (no audio device, or not allowed before the first click).
  }
}

// Keyboard: j/k pick a chat, Enter opens it, r replies, Esc leaves the reply box,
// ? lists the shortcuts.
document.addEventListener("keydown", (ev) => {
  if (state.role !== "agent" || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const typing = ev.target.closest && ev.target.closest("input, textarea, select, button, a, dialog");
  if (typing) {
    if (ev.key === "Escape" && ev.target.id === "reply-text" && $("canned-list").hidden) ev.target.blur();
    return;
  }
  const n = state.chats.length;
  switch (ev.key) {
    case "j":
    case "k":
      if (!n) return;
      state.cursor = ev.key === "j" ? Math.min(state.cursor + 1, n - 1) : Math.max(state.cursor - 1, 0);
      renderChats();
      break;
    case "Enter":
      if (state.cursor >= 0 && state.cursor < n) openChat(state.chats[state.cursor]);
      break;
    case "r":
      if (state.chat) {
        ev.preventDefault();
        $("reply-text").focus();
      }
      break;
    case "?":
      $("shortcuts").showModal();
      break;
    default:
      return;
  }
  ev.preventDefault();
});

$("show-shortcuts").onclick = () => $("shortcuts").showModal();

// showTyping says who is typing in the open chat, for 5 s ("" clears it).
function showTyping(from) {
  clearTimeout(state.typingTimer);
  $("typing").textContent = from ? `${from} is typing…` : "";
  if (from) state.typingTimer = setTimeout(() => { $("typing").textContent = ""; }, 5000);
}

function closeView() {
  state.chat = null;
  $("context").hidden = true;
  showTyping("");
  $("chat-title").textContent = "Select a chat";
  $("messages").replaceChildren();
  $("reply-form").hidden = true;
  $("chat-actions").hidden = true;
}

async function openChat(c) {
  state.chat = c.conversation_id;
  state.buyer = c.buyer_id;
  state.lastDay = "";
  state.lastSeen = "";
  state.unread[c.conversation_id] = 0;
  showTyping("");
  $("chat-title").textContent = `Chat with ${c.buyer_id}`;
  showContext(c);
  loadColleagues();
  $("reply-form").hidden = false;
  $("chat-actions").hidden = false;
  $("messages").replaceChildren();
  for (const u of state.blobs.splice(0)) URL.revokeObjectURL(u);
  const hist = await api("GET", `/v1/conversations/${c.conversation_id}/messages?limit=100`);
  const msgs = hist.messages.reverse();
  for (const m of msgs) showMessage(m);
  renderChats();
  if (msgs.length) markRead(msgs[msgs.length - 1].msg_id);
  const mine = msgs.filter((m) => m.agent_id === state.user);
  if (mine.length) {
    const last = mine[mine.length - 1].msg_id;
    api("GET", `/v1/messages/${last}/receipts`).then((r) => { if (r.read_count > 0) showRead(last); }, () => {});
  }
}

// markRead moves the agent's read position in the open chat to msgID while the
// agent can see it; the buyer gets a receipt from the shop.
function markRead(msgID) {
  state.lastSeen = msgID;
  if (document.visibilityState !== "visible" || !state.chat) return;
  request({ type: "read", conversation_id: state.chat, msg_id: msgID }).catch(() => {});
}

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && state.chat && state.lastSeen) markRead(state.lastSeen);
});

// showRead marks the agent's messages up to msgID as read by the buyer.
function showRead(msgID) {
  for (const li of document.querySelectorAll("#messages li.mine")) {
    if (BigInt(li.dataset.id) <= BigInt(msgID)) li.querySelector(".state").textContent = " · Read";
  }
}

// showContext says who the buyer is, where they opened the chat from and how it
// was routed.
function showContext(c) {
  const items = [["Buyer", c.buyer_id], ["Opened from", [c.entry, c.product_id, c.order_id].filter(Boolean).join(" ")],
    ["Skill", c.skill], ["Priority", c.priority ? String(c.priority) : "normal"], ["Routing", c.reason]];
  const dl = $("context");
  dl.replaceChildren();
  for (const [k, v] of items) {
    if (!v) continue;
    const d = el("div");
    d.append(el("dt", k), el("dd", v));
    dl.append(d);
  }
  dl.hidden = false;
}

// sender names who wrote a message of a shop chat, as the agent sees it.
function sender(m) {
  if (m.agent_id === state.user) return "You";
  if (m.agent_id) return `${m.agent_id} (agent)`;
  if (m.from === state.shop) return "Auto-reply";
  return m.from;
}

function dayLabel(d) {
  const today = new Date();
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (d.toDateString() === today.toDateString()) return "Today";
  if (d.toDateString() === yesterday.toDateString()) return "Yesterday";
  return d.toLocaleDateString(undefined, { weekday: "short", year: "numeric", month: "short", day: "numeric" });
}

function showMessage(m) {
  const at = new Date(m.created_at);
  const day = at.toDateString();
  const list = $("messages");
  if (day !== state.lastDay) {
    state.lastDay = day;
    list.append(el("li", dayLabel(at), "day"));
  }
  let cls = m.agent_id === state.user ? "mine" : "";
  if (m.from === state.shop && !m.agent_id) cls = "auto";
  const li = el("li", undefined, cls);
  li.dataset.id = m.msg_id;
  const meta = el("span", `${sender(m)} · `, "meta");
  const time = el("time", at.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" }));
  time.dateTime = m.created_at;
  meta.append(time);
  if (cls === "mine") meta.append(el("span", " · Sent", "state"));
  li.append(meta);
  const media = !m.recalled && m.body && m.body.object_key && ["image", "video", "file"].includes(m.type);
  if (media) li.append(mediaView(m));
  else li.append(el("div", (m.body && m.body.text) || JSON.stringify(m.body), "text"));
  if (m.recalled) markRecalled(li);
  list.append(li);
  li.scrollIntoView({ block: "nearest" });
}

function markRecalled(li) {
  li.classList.add("recalled");
  for (const c of [...li.children].slice(1)) c.remove();
  li.append(el("div", "This message was recalled.", "text"));
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
    // An image that grows the list keeps the newest message in view, unless the
    // agent had scrolled up.
    img.onload = () => {
      const list = $("messages");
      if (list.scrollHeight - list.scrollTop - list.clientHeight <= img.offsetHeight + 48) list.lastElementChild.scrollIntoView({ block: "nearest" });
    };
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

// mediaURL fetches a media object (thumb: its thumbnail of that side); its local
// URL is released when the chat changes.
async function mediaURL(key, thumb) {
  const u = await mediaBlob(state.token, key, thumb);
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
  const input = $("reply-text");
  const text = input.value;
  if (!text.trim()) return;
  try {
    await request({ type: "send", message: { client_msg_id: clientMsgID(), conversation_id: state.chat, type: "text", body: { text } } });
    if (input.value === text) input.value = "";
    state.typingSent = 0;
  } catch (e) {
    $("agent-error").textContent = e.message;
  }
};

// --- the composer: Enter sends, Shift+Enter breaks the line, "/" offers the shop's
// canned responses, and typing tells the buyer (one typing frame per 2 s at most).

async function loadCanned() {
  try {
    state.canned = (await api("GET", shopPath("/canned"))).responses;
  } catch (e) {
    $("agent-error").textContent = "Canned responses: " + e.message;
  }
}

// cannedMatches are the canned responses for what the agent typed after "/": the
// shortcuts that start with it first, then those whose text holds it.
function cannedMatches(q) {
  q = q.toLowerCase();
  const starts = state.canned.filter((c) => c.shortcut.startsWith(q));
  const holds = state.canned.filter((c) => !c.shortcut.startsWith(q) && c.text.toLowerCase().includes(q));
  return starts.concat(holds).slice(0, 8);
}

function showCanned() {
  const input = $("reply-text");
  const ul = $("canned-list");
  const m = /^\/(\S*)$/.exec(input.value);
  const found = m ? cannedMatches(m[1]) : [];
  ul.replaceChildren();
  ul.hidden = found.length === 0;
  found.forEach((c, i) => {
    const li = el("li", undefined);
    li.setAttribute("role", "option");
    li.setAttribute("aria-selected", String(i === 0));
    li.append(el("kbd", "/" + c.shortcut), c.text);
    li.onmousedown = (ev) => { ev.preventDefault(); pickCanned(c); };
    li.canned = c;
    ul.append(li);
  });
}

function pickCanned(c) {
  const input = $("reply-text");
  input.value = c.text;
  $("canned-list").hidden = true;
  input.focus();
}

function moveCanned(step) {
  const items = [...$("canned-list").children];
  const at = items.findIndex((li) => li.getAttribute("aria-selected") === "true");
  const next = (at + step + items.length) % items.length;
  items.forEach((li, i) => li.setAttribute("aria-selected", String(i === next)));
  items[next].scrollIntoView({ block: "nearest" });
}

$("reply-text").addEventListener("input", () => {
  showCanned();
  const now = Date.now();
  if (state.chat && $("reply-text").value && !$("reply-text").value.startsWith("/") && now - state.typingSent > 2000) {
    state.typingSent = now;
    request({ type: "typing", conversation_id: state.chat }).catch(() => {});
  }
});

$("reply-text").addEventListener("keydown", (ev) => {
  const list = $("canned-list");
  if (!list.hidden) {
    if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      ev.preventDefault();
      moveCanned(ev.key === "ArrowDown" ? 1 : -1);
      return;
    }
    if ((ev.key === "Enter" && !ev.shiftKey) || ev.key === "Tab") {
      ev.preventDefault();
      pickCanned(list.querySelector("[aria-selected=true]").canned);
      return;
    }
    if (ev.key === "Escape") {
      list.hidden = true;
      return;
    }
  }
  if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    $("reply-form").requestSubmit();
  }
});

// showStatus shows the agent's status: the text and the pressed button.
function showStatus(status) {
  $("status").textContent = status;
  for (const b of document.querySelectorAll("[data-status]")) b.setAttribute("aria-pressed", String(b.dataset.status === status));
}

for (const b of document.querySelectorAll("[data-status]")) {
  b.onclick = async () => {
    // Going online is the moment to ask for notifications (it needs a click).
    if (b.dataset.status === "online" && "Notification" in window && Notification.permission === "default") {
      Notification.requestPermission();
    }
    try {
      await api("PUT", "/v1/agents/me/status", { status: b.dataset.status });
      showStatus(b.dataset.status);
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

// The transfer picker: the shop's other agents who are online with room (load
// x/y), then every skill of the shop's agents (the chat waits in that queue).
async function loadColleagues() {
  try {
    showColleagues((await api("GET", shopPath("/agents"))).agents);
  } catch (e) {
    $("agent-error").textContent = "Agents: " + e.message;
  }
}

function showColleagues(agents) {
  const me = agents.find((a) => a.agent_id === state.user);
  if (me && !$("status").textContent) showStatus(me.status); // as signed in; the buttons set it after
  const sel = $("transfer-to");
  const was = sel.value;
  const free = agents.filter((a) => a.agent_id !== state.user && a.status === "online" && a.connected && a.load < a.capacity);
  const skills = [...new Set(agents.flatMap((a) => a.skills || []))].sort();
  const group = (label, items) => {
    const g = el("optgroup");
    g.label = label;
    for (const [value, text] of items) {
      const o = el("option", text);
      o.value = value;
      g.append(o);
    }
    return g;
  };
  sel.replaceChildren(
    group(free.length ? "Agents online" : "No other agent is free", free.map((a) => [`agent_id:${a.agent_id}`, `${a.name || a.agent_id} (${a.load}/${a.capacity})`])),
    group("Skill queues", skills.map((s) => [`skill:${s}`, s])));
  if ([...sel.options].some((o) => o.value === was)) sel.value = was;
}

$("transfer-to").addEventListener("focus", loadColleagues);

$("transfer-form").onsubmit = async (ev) => {
  ev.preventDefault();
  const [kind, to] = $("transfer-to").value.split(/:(.*)/s);
  try {
    await api("POST", `/v1/cs/conversations/${state.chat}/transfer`, { [kind]: to });
    closeView();
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
  showAgents((await api("GET", shopPath("/agents"))).agents);
  api("GET", shopPath("/live")).then(showLive, () => {});
  await loadCannedEditor();
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

// The agents: a table of the shop's agents (id, name, skills, capacity, and what
// they do now, live), and the same list as a JSON document for the advanced.
function showAgents(agents) {
  $("agents").value = JSON.stringify({ agents: agents.map(({ agent_id, name, skills, capacity }) => ({ agent_id, name, skills, capacity })) }, null, 2);
  $("agents-table").tBodies[0].replaceChildren(...agents.map(agentRow));
}

function agentRow(a) {
  const tr = el("tr");
  const field = (name, value, label, type) => {
    const td = el("td");
    const input = el("input");
    input.name = name;
    input.value = value;
    input.setAttribute("aria-label", label);
    if (type) input.type = type;
    td.append(input, el("span", "", "problem"));
    return td;
  };
  tr.append(field("agent_id", a.agent_id || "", "Agent id"), field("name", a.name || "", "Name"),
    field("skills", (a.skills || []).join(", "), "Skills, separated by commas"),
    field("capacity", String(a.capacity || 1), "Capacity: chats at once", "number"));
  const now = el("td", a.status ? agentNow(a) : "", "now");
  const remove = el("button", "Remove");
  remove.type = "button";
  remove.onclick = () => tr.remove();
  const td = el("td");
  td.append(remove);
  tr.append(now, td);
  return tr;
}

function agentNow(a) {
  return `${a.status}${a.connected ? "" : " (disconnected)"}, ${a.load}/${a.capacity}`;
}

function putAgents(body, rows) {
  $("agents-problems").replaceChildren();
  $("agents-saved").textContent = "";
  for (const p of document.querySelectorAll("#agents-table .problem")) p.textContent = "";
  return api("PUT", shopPath("/agents"), body).then((out) => {
    showAgents(out.agents);
    $("agents-saved").textContent = `Saved ${out.agents.length} agents.`;
  }, (e) => {
    const rest = [];
    for (const p of e.problems) {
      const m = /^agents\[(\d+)\]\.(\w+)$/.exec(p.field);
      const input = m && rows && rows[+m[1]] && rows[+m[1]].querySelector(`[name=${m[2]}]`);
      if (input) input.nextSibling.textContent = p.message;
      else rest.push(p);
    }
    if (rest.length || !e.problems.length) showProblems("agents-problems", { problems: rest, message: e.message });
  });
}

$("add-agent").onclick = () => {
  const tr = agentRow({});
  $("agents-table").tBodies[0].append(tr);
  tr.querySelector("input").focus();
};

$("save-agent-table").onclick = () => {
  const rows = [...$("agents-table").tBodies[0].rows];
  const value = (tr, name) => tr.querySelector(`[name=${name}]`).value.trim();
  const agents = rows.map((tr) => ({
    agent_id: value(tr, "agent_id"), name: value(tr, "name") || undefined,
    skills: value(tr, "skills").split(",").map((s) => s.trim()).filter(Boolean), capacity: Number(value(tr, "capacity")),
  }));
  return putAgents({ agents }, rows);
};

$("save-agents").onclick = () => putAgents($("agents").value, null);

// The canned responses editor: a row per response; a problem the server finds shows
// next to its field.
function cannedRow(c) {
  const tr = el("tr");
  const shortcut = el("input");
  shortcut.value = c.shortcut;
  shortcut.setAttribute("aria-label", "Shortcut");
  const text = el("textarea");
  text.value = c.text;
  text.rows = 2;
  text.setAttribute("aria-label", "Text");
  const remove = el("button", "Remove");
  remove.type = "button";
  remove.onclick = () => tr.remove();
  const cells = [el("td"), el("td"), el("td")];
  cells[0].append(shortcut, el("span", "", "problem"));
  cells[1].append(text, el("span", "", "problem"));
  cells[2].append(remove);
  tr.append(...cells);
  return tr;
}

async function loadCannedEditor() {
  const { responses } = await api("GET", shopPath("/canned"));
  $("canned").tBodies[0].replaceChildren(...responses.map(cannedRow));
}

$("add-canned").onclick = () => {
  const tr = cannedRow({ shortcut: "", text: "" });
  $("canned").tBodies[0].append(tr);
  tr.querySelector("input").focus();
};

$("save-canned").onclick = async () => {
  const rows = [...$("canned").tBodies[0].rows];
  for (const p of document.querySelectorAll("#canned .problem")) p.textContent = "";
  for (const f of document.querySelectorAll("#canned [aria-invalid]")) f.removeAttribute("aria-invalid");
  $("canned-problems").replaceChildren();
  $("canned-saved").textContent = "";
  const responses = rows.map((tr) => ({ shortcut: tr.querySelector("input").value.trim(), text: tr.querySelector("textarea").value }));
  try {
    const out = await api("PUT", shopPath("/canned"), { responses });
    $("canned-saved").textContent = `Saved ${out.responses.length} responses.`;
  } catch (e) {
    const rest = [];
    for (const p of e.problems) {
      const m = /^responses\[(\d+)\]\.(shortcut|text)$/.exec(p.field);
      const cell = m && rows[+m[1]] && rows[+m[1]].cells[m[2] === "shortcut" ? 0 : 1];
      if (!cell) {
        rest.push(p);
        continue;
      }
      cell.querySelector(".problem").textContent = p.message;
      cell.firstChild.setAttribute("aria-invalid", "true");
    }
    if (rest.length || !e.problems.length) showProblems("canned-problems", { problems: rest, message: e.message });
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

// The audit log: the router keeps the latest decisions (up to 10,000 are read),
// filtered here by agent, action and time, newest first, a page at a time.
const auditPage = 20;
const audit = { entries: [], page: 0 };

async function loadAudit() {
  const { entries } = await api("GET", shopPath("/audit?limit=10000"));
  audit.entries = entries.reverse();
  const f = $("audit-filter").elements;
  for (const [name, key] of [["agent", "agent_id"], ["action", "action"]]) {
    const was = f[name].value;
    const values = [...new Set(audit.entries.map((a) => a[key]).filter(Boolean))].sort();
    f[name].replaceChildren(el("option", "all"), ...values.map((v) => el("option", v)));
    f[name].options[0].value = "";
    f[name].value = values.includes(was) ? was : "";
  }
  showAudit();
}

function showAudit() {
  const f = $("audit-filter").elements;
  const from = f.from.value ? new Date(f.from.value) : null;
  const to = f.to.value ? new Date(f.to.value) : null;
  const rows = audit.entries.filter((a) => (!f.agent.value || a.agent_id === f.agent.value) &&
    (!f.action.value || a.action === f.action.value) &&
    (!from || new Date(a.at) >= from) && (!to || new Date(a.at) <= to));
  const pages = Math.max(1, Math.ceil(rows.length / auditPage));
  audit.page = Math.min(audit.page, pages - 1);
  const body = $("audit").tBodies[0];
  body.replaceChildren();
  for (const a of rows.slice(audit.page * auditPage, (audit.page + 1) * auditPage)) {
    const tr = el("tr");
    const at = new Date(a.at);
    for (const v of [at.toLocaleString(), a.conversation_id, a.action, a.agent_id || "", a.reason]) tr.append(el("td", v));
    tr.cells[0].title = at.toISOString();
    body.append(tr);
  }
  $("audit-page").textContent = `page ${audit.page + 1} of ${pages} (${rows.length} entries)`;
  $("audit-newer").disabled = audit.page === 0;
  $("audit-older").disabled = audit.page >= pages - 1;
}

$("refresh-audit").onclick = loadAudit;
$("audit-filter").oninput = () => { audit.page = 0; showAudit(); };
$("audit-filter").onsubmit = (ev) => ev.preventDefault();
$("audit-newer").onclick = () => { audit.page--; showAudit(); };
$("audit-older").onclick = () => { audit.page++; showAudit(); };

function showLive(live) {
  if (!live || state.role !== "admin") return;
  const box = $("live");
  box.replaceChildren();
  const queues = Object.entries(live.queue_depth || {}).map(([k, v]) => `${k}: ${v}`).join(", ");
  box.append(el("p", `${live.open ? "open" : "closed"}; waiting: ${queues || "none"}; longest wait ${live.longest_wait}`));
  for (const tr of $("agents-table").tBodies[0].rows) {
    const a = (live.agents || []).find((x) => x.agent_id === tr.querySelector("[name=agent_id]").value.trim());
    if (a) tr.querySelector(".now").textContent = agentNow(a);
  }
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
