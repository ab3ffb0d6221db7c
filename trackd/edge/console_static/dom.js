// The console's only way to make DOM nodes. Text is set as text (a Text node, textContent),
// attributes with setAttribute, listeners with addEventListener: nothing here, nor anywhere in
// the console, parses a string as HTML (no inner/outer HTML assignment, no insertAdjacent HTML),
// so a value a client sent can never become markup. Attribute names starting with "on" are refused (listeners go in `on`),
// and a URL attribute may only be a same-page fragment or a relative path of the console.

const SVG_NS = "http://www.w3.org/2000/svg";
const URL_ATTRIBUTES = new Set(["href", "src", "action", "formaction", "xlink:href"]);

function safeUrl(value) {
  return /^(#|\.?\/?[A-Za-z0-9_-]+(\.[a-z]+)?$)/.test(value);
}

function setAttributes(node, attrs) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "on") {
      for (const [type, fn] of Object.entries(value)) node.addEventListener(type, fn);
      continue;
    }
    if (/^on/i.test(name)) throw new Error(`dom: refusing the handler attribute ${name}`);
    if (URL_ATTRIBUTES.has(name.toLowerCase()) && !safeUrl(String(value))) {
      throw new Error(`dom: refusing the URL ${name}`);
    }
    node.setAttribute(name, value === true ? "" : String(value));
  }
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** h("td", {class: "num"}, "text", otherNode): an HTML element. */
export function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  setAttributes(node, attrs);
  append(node, children);
  return node;
}

/** s("line", {x1: 0, ...}): an SVG element (for the chart). */
export function s(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setAttributes(node, attrs);
  append(node, children);
  return node;
}

/** Replaces every child of `node` with `children`. */
export function replace(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

/** Sets the text of `node` (its only content). */
export function text(node, value) {
  node.textContent = value === undefined || value === null ? "" : String(value);
  return node;
}

/** A table: headers as strings, rows as arrays of cells (strings or nodes). */
export function table(headers, rows, attrs = {}) {
  return h(
    "table",
    { class: "grid", ...attrs },
    h("thead", {}, h("tr", {}, headers.map((name) => h("th", { scope: "col" }, name)))),
    h("tbody", {}, rows),
  );
}

/** A local time of an ISO 8601 string: "14:03:22" today, with the date otherwise. */
export function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  const today = new Date().toDateString() === date.toDateString();
  const time = date.toLocaleTimeString([], { hour12: false });
  return today ? time : `${date.toLocaleDateString()} ${time}`;
}

/** Pretty JSON, or the text as it is when it is not JSON. */
export function pretty(value) {
  if (typeof value === "string") {
    try {
      return JSON.stringify(JSON.parse(value), null, 2);
    } catch {
      return value;
    }
  }
  return JSON.stringify(value, null, 2);
}

export function empty(message) {
  return h("p", { class: "empty" }, message);
}
