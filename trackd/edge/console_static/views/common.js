// What several views share: polling a read API path, an error line, a detail pane.

import { ApiError, get } from "../api.js";
import { h, replace } from "../dom.js";

/** Calls `load` now and every `seconds`; stops on the returned cleanup. */
export function every(seconds, load) {
  let timer = null;
  let stopped = false;
  const tick = async () => {
    await load();
    if (!stopped) timer = setTimeout(tick, seconds * 1000);
  };
  tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/** get(), with a failure shown in `status` (and a 401 signing out). */
export async function fetchOr(status, ctx, path, params) {
  try {
    const body = await get(path, params);
    status.textContent = "";
    status.classList.remove("error");
    return body;
  } catch (failure) {
    if (failure instanceof ApiError && failure.status === 401) ctx.onUnauthorised(failure.message);
    status.textContent = failure instanceof ApiError ? `${failure.message} (HTTP ${failure.status})` : String(failure);
    status.classList.add("error");
    return null;
  }
}

export function statusLine() {
  return h("p", { class: "status", role: "status" });
}

export function code(value, attrs = {}) {
  return h("pre", { class: "code", ...attrs }, value);
}

export function pill(text, kind) {
  return h("span", { class: `pill ${kind || ""}` }, text);
}

export function statusPill(status) {
  const kind = status >= 500 ? "bad" : status >= 400 ? "warn" : "ok";
  return pill(String(status), kind);
}

export function detailPane() {
  const pane = h("aside", { class: "detail", hidden: true });
  return {
    node: pane,
    show(...children) {
      pane.hidden = false;
      replace(pane, h("button", { type: "button", class: "link close", on: { click: () => { pane.hidden = true; } } }, "Close"), children);
    },
    hide() {
      pane.hidden = true;
    },
  };
}

/** Marks `row` as the selected one of its table. */
export function select(row) {
  for (const other of row.parentNode.querySelectorAll("tr.selected")) other.classList.remove("selected");
  row.classList.add("selected");
}

const NUMERIC = new Set(["Count", "Used", "Limit", "Events", "Action index"]);

/** A column header; a numeric column's header is right-aligned like its cells. */
export function th(name) {
  return h("th", { scope: "col", class: NUMERIC.has(name) ? "num" : false }, name);
}
