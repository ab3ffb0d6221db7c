// The read API, as the signed-in tab sees it. The credentials stay in sessionStorage (this tab
// only, gone when it closes; never a cookie, never in a URL) and go in an Authorization header:
// Basic workspace:key, or Bearer admin-token.

const KEY = "trackd.console.session";

export class ApiError extends Error {
  constructor(status, message, type) {
    super(message);
    this.status = status;
    this.type = type;
  }
}

export function session() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(KEY) || "null");
    return saved && saved.workspace && saved.secret ? saved : null;
  } catch {
    return null;
  }
}

export function saveSession(value) {
  sessionStorage.setItem(KEY, JSON.stringify(value));
}

export function clearSession() {
  sessionStorage.removeItem(KEY);
}

function authorization(current) {
  if (current.kind === "admin") return `Bearer ${current.secret}`;
  const bytes = new TextEncoder().encode(`${current.workspace}:${current.secret}`);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return `Basic ${btoa(binary)}`;
}

function url(current, path, params) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") query.set(name, String(value));
  }
  const base = `/api/workspaces/${encodeURIComponent(current.workspace)}/${path}`;
  const text = query.toString();
  return text ? `${base}?${text}` : base;
}

async function failure(response) {
  let message = `HTTP ${response.status}`;
  let type = "";
  try {
    const body = await response.json();
    if (body && body.error) {
      message = body.error.message || message;
      type = body.error.type || "";
    }
  } catch {
    // not JSON: keep the status
  }
  return new ApiError(response.status, message, type);
}

/** GET a read API path as JSON; an ApiError for anything but a 200. */
export async function get(path, params, current = session()) {
  const response = await fetch(url(current, path, params), {
    headers: { Authorization: authorization(current), Accept: "application/json" },
    credentials: "omit",
    cache: "no-store",
  });
  if (!response.ok) throw await failure(response);
  return response.json();
}

/** Parses Server-Sent Events text: returns the complete messages and the unparsed rest. */
export function parseEvents(buffer) {
  const messages = [];
  const blocks = buffer.split(/\r\n\r\n|\n\n|\r\r/);
  const rest = blocks.pop();
  for (const block of blocks) {
    const message = { id: null, event: "message", data: [] };
    for (const line of block.split(/\r\n|\n|\r/)) {
      if (line === "" || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "data") message.data.push(value);
      else if (field === "id") message.id = value;
      else if (field === "event") message.event = value;
    }
    if (message.data.length) messages.push({ ...message, data: message.data.join("\n") });
  }
  return { messages, rest };
}

/**
 * Follows the live stream (fetch and a stream reader: EventSource cannot send an
 * Authorization header), reconnecting with Last-Event-ID after a break until `signal` aborts.
 * `onEvent(data, id)` for each event; `onState("open" | "retrying" | error message)`.
 */
export async function follow(params, onEvent, onState, signal, current = session()) {
  let lastId = null;
  while (!signal.aborted) {
    try {
      const headers = { Authorization: authorization(current), Accept: "text/event-stream" };
      if (lastId !== null) headers["Last-Event-ID"] = lastId;
      const response = await fetch(url(current, "live", params), {
        headers,
        signal,
        credentials: "omit",
        cache: "no-store",
      });
      if (!response.ok) {
        const error = await failure(response);
        onState(error.message);
        if (response.status < 500) return;
      } else {
        onState("open");
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          const parsed = parseEvents(buffer + value);
          buffer = parsed.rest;
          for (const message of parsed.messages) {
            if (message.id !== null) lastId = message.id;
            if (message.event !== "event") continue;
            try {
              onEvent(JSON.parse(message.data), message.id);
            } catch (error) {
              console.warn("trackd console: an unreadable live message", error);
            }
          }
        }
      }
    } catch (error) {
      if (signal.aborted) return;
      console.warn("trackd console: the live stream broke", error);
    }
    if (signal.aborted) return;
    onState("retrying");
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}
