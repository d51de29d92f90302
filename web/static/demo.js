// The buyer demo page (/demo/shop/{shop_id}): the chat widget a shop embeds on its
// product pages, on the public API as a buyer. It opens a chat from a product or an
// order, shows the queue position and wait, the shop's replies and typing, and
// sends text and photos.
import { $, el, call, mediaBlob, socket } from "./common.js";

const shop = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop());
const state = { token: "", user: "", chat: "", ws: null, seen: new Set(), typingSent: 0, typingTimer: 0 };
const api = (method, path, body) => call(state.token, method, path, body);

$("shop-name").textContent = shop;
$("start").elements.user_id.value = "buyer-" + Math.random().toString(36).slice(2, 8);

const clientMsgID = () => "demo-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 10);

$("start").onsubmit = async (ev) => {
  ev.preventDefault();
  const f = ev.target.elements;
  $("start-error").textContent = "";
  try {
    const { token } = await call("", "POST", "/v1/dev/token", { user_id: f.user_id.value, role: "buyer" });
    Object.assign(state, { token, user: f.user_id.value });
    state.ws = socket(token, onFrame, () => true);
    const req = { entry: f.entry.value };
    const ref = f.ref.value.trim();
    if (ref && f.entry.value === "product") req.product_id = ref;
    if (ref && f.entry.value === "order") req.order_id = ref;
    if (f.text.value.trim()) req.text = f.text.value.trim();
    const chat = await api("POST", `/v1/shops/${encodeURIComponent(shop)}/chats`, req);
    state.chat = chat.conversation_id;
    showState(chat);
    $("start").hidden = true;
    $("chat").hidden = false;
    const hist = await api("GET", `/v1/conversations/${state.chat}/messages?limit=50`);
    for (const m of hist.messages.reverse()) show(m);
    $("text").focus();
  } catch (e) {
    $("start-error").textContent = e.code === "dev_mode_off"
      ? "This demo needs the server's dev mode (it issues the buyer's token)." : e.message;
  }
};

// showState says where the chat stands: in line (position and wait), with the
// shop, or closed.
function showState(c) {
  let text = "You are chatting with the shop.";
  if (c.state === "queued") {
    const wait = c.estimated_wait_seconds ? `, about ${Math.max(1, Math.round(c.estimated_wait_seconds / 60))} min` : "";
    text = c.queue_position ? `You are number ${c.queue_position} in line${wait}.` : "Waiting for the shop to answer.";
  } else if (c.state === "closed") {
    text = "The shop closed this chat. Start it again below to write more.";
  }
  $("queue").textContent = text;
  $("start").hidden = c.state !== "closed";
}

function onFrame(f) {
  if (f.type === "message" && f.entry && f.entry.conversation_id === state.chat && f.entry.kind === "message") {
    show(f.entry);
    if (f.entry.from !== state.user) showTyping(false);
  } else if (f.type === "typing" && f.conversation_id === state.chat) {
    showTyping(true);
  } else if (f.type === "cs" && f.chat && f.chat.conversation_id === state.chat) {
    showState(f.chat);
  }
}

function showTyping(on) {
  clearTimeout(state.typingTimer);
  $("typing").textContent = on ? "The shop is typing…" : "";
  if (on) state.typingTimer = setTimeout(() => { $("typing").textContent = ""; }, 5000);
}

// show adds a message once (a push and the history may both bring it).
function show(m) {
  if (state.seen.has(m.msg_id)) return;
  state.seen.add(m.msg_id);
  const mine = m.from === state.user;
  const li = el("li", undefined, mine ? "mine" : "");
  const at = new Date(m.created_at).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  li.append(el("span", `${mine ? "You" : "Shop"} · ${at}`, "meta"));
  if (m.recalled) {
    li.append(el("div", "This message was recalled.", "text"));
  } else if (m.type === "image" && m.body && m.body.object_key) {
    const img = el("img");
    img.alt = m.body.name || "photo";
    img.onload = () => {
      const list = $("messages");
      if (list.scrollHeight - list.scrollTop - list.clientHeight <= img.offsetHeight + 48) list.lastElementChild.scrollIntoView({ block: "nearest" });
    };
    mediaBlob(state.token, m.body.object_key, 256).then((u) => { img.src = u; }, (e) => img.replaceWith(el("span", e.message, "error")));
    li.append(img);
  } else {
    li.append(el("div", (m.body && m.body.text) || `(${m.type})`, "text"));
  }
  $("messages").append(li);
  li.scrollIntoView({ block: "nearest" });
}

// sendPhoto uploads a photo into the chat, then sends it.
async function sendPhoto(file) {
  const up = await api("POST", "/v1/uploads", { conversation_id: state.chat, mime_type: file.type, size: file.size, name: file.name });
  if (!up.uploaded) {
    if (!up.upload_url) throw new Error("this photo is too large for the demo");
    const resp = await fetch(up.upload_url, { method: up.method || "PUT", headers: up.headers, body: file });
    if (!resp.ok && resp.status !== 412) throw new Error(`the upload failed (${resp.status})`);
  }
  const body = { object_key: up.object_key, mime_type: file.type, size: file.size, name: file.name };
  try {
    const bmp = await createImageBitmap(file);
    Object.assign(body, { width: bmp.width, height: bmp.height });
    bmp.close();
  } catch {
    // Sent without its size: the agent's console shows it all the same.
  }
  await state.ws.send({ type: "send", message: { client_msg_id: clientMsgID(), conversation_id: state.chat, type: "image", body } });
}

$("send").onsubmit = async (ev) => {
  ev.preventDefault();
  $("chat-error").textContent = "";
  const text = $("text").value.trim();
  const file = $("photo").files[0];
  try {
    if (file) {
      await sendPhoto(file);
      $("photo").value = "";
    }
    if (text) {
      await state.ws.send({ type: "send", message: { client_msg_id: clientMsgID(), conversation_id: state.chat, type: "text", body: { text } } });
      $("text").value = "";
      state.typingSent = 0;
    }
  } catch (e) {
    $("chat-error").textContent = e.message;
  }
};

$("text").addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    $("send").requestSubmit();
  }
});

$("text").addEventListener("input", () => {
  const now = Date.now();
  if ($("text").value && now - state.typingSent > 2000) {
    state.typingSent = now;
    state.ws.send({ type: "typing", conversation_id: state.chat }).catch(() => {});
  }
});
