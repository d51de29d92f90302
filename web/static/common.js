// What the console and the buyer demo page share: elements, API calls and media.

export const $ = (id) => document.getElementById(id);

export function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

// call calls the HTTP API with token; an error answer throws an Error with code
// and problems.
export async function call(token, method, path, body) {
  const opts = { method, headers: {} };
  if (token) opts.headers.Authorization = "Bearer " + token;
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

// mediaBlob fetches a media object (thumb: its thumbnail of that side) with token
// and returns a local URL of its bytes; the caller revokes it.
export async function mediaBlob(token, key, thumb) {
  const q = thumb ? `?thumb=${thumb}` : "";
  const resp = await fetch(`/v1/media/${encodeURIComponent(key)}${q}`, { headers: { Authorization: "Bearer " + token } });
  if (!resp.ok) {
    const data = await resp.json().catch(() => ({}));
    throw new Error((data.error && data.error.message) || resp.statusText);
  }
  return URL.createObjectURL(await resp.blob());
}

// socket opens the API's WebSocket with token (in the subprotocol list, not the
// URL: proxies log URLs), pings it every 20 s and reconnects after a drop while
// alive() holds. send(frame) sends a frame and resolves with its ack's result.
export function socket(token, onFrame, alive) {
  const pending = new Map();
  let ws = null;
  let id = 0;
  const open = () => {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    ws = new WebSocket(`${proto}//${location.host}/v1/ws`, ["fanline", "bearer." + token]);
    const ping = setInterval(() => ws.readyState === 1 && ws.send(JSON.stringify({ type: "ping" })), 20000);
    ws.onmessage = (ev) => {
      const f = JSON.parse(ev.data);
      if (f.id && pending.has(f.id)) {
        const p = pending.get(f.id);
        pending.delete(f.id);
        if (f.type === "error") p.reject(new Error(f.message));
        else p.resolve(f.result);
        return;
      }
      onFrame(f);
    };
    ws.onclose = () => {
      clearInterval(ping);
      for (const p of pending.values()) p.reject(new Error("connection lost"));
      pending.clear();
      if (alive()) setTimeout(open, 2000);
    };
  };
  open();
  return {
    send(frame) {
      frame.id = String(++id);
      return new Promise((resolve, reject) => {
        if (ws.readyState !== 1) {
          reject(new Error("not connected"));
          return;
        }
        pending.set(frame.id, { resolve, reject });
        ws.send(JSON.stringify(frame));
      });
    },
    close() { ws.close(); },
  };
}
