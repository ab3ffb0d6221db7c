// Live: events as the processor stores them (the /live stream), filtered by customer and event
// name, with pause; a click shows the whole event with its warnings.

import { follow } from "../api.js";
import { h, pretty, replace, text, when } from "../dom.js";
import { code, detailPane, pill, select, th } from "./common.js";

const MAX_ROWS = 500;

function summary(attributes) {
  const names = Object.keys(attributes || {});
  const shown = names.slice(0, 3).map((name) => `${name}=${JSON.stringify(attributes[name])}`);
  return names.length > 3 ? `${shown.join(", ")} … (+${names.length - 3})` : shown.join(", ");
}

export const view = {
  id: "live",
  title: "Live",
  render(root) {
    const customer = h("input", { id: "live-customer", placeholder: "customer_id", spellcheck: "false" });
    const action = h("input", { id: "live-action", placeholder: "event name", spellcheck: "false" });
    const pause = h("button", { type: "button", id: "live-pause" }, "Pause");
    const state = h("span", { class: "stream-state", id: "live-state" }, "connecting…");
    const waiting = h("span", { class: "muted", id: "live-waiting" });
    const body = h("tbody", { id: "live-rows" });
    const detail = detailPane();
    const tableNode = h("table", { class: "grid clickable" }, h("thead", {}, h("tr", {}, ["Received", "Event", "Customer", "Attributes", "Warnings"].map(th))), body);
    const emptyRow = h("tr", { class: "placeholder" }, h("td", { colspan: 5 }, "Waiting for events… send one to /v1/event and it shows here."));
    body.append(emptyRow);
    let paused = false;
    let held = [];
    let controller = null;

    const row = (event) => {
      const warnings = event.warnings || [];
      const tr = h(
        "tr",
        { class: "event-row", tabindex: 0 },
        h("td", { class: "nowrap" }, when(event.received_at)),
        h("td", { class: "strong" }, event.action),
        h("td", {}, event.customer_id ?? ""),
        h("td", { class: "clip" }, summary(event.attributes)),
        h("td", {}, warnings.length ? pill(`${warnings.length}`, "warn") : ""),
      );
      const open = () => {
        select(tr);
        detail.show(
          h("h3", {}, event.action),
          h("dl", { class: "facts" }, h("dt", {}, "Customer"), h("dd", {}, event.customer_id ?? ""), h("dt", {}, "Request id"), h("dd", {}, event.request_id ?? ""), h("dt", {}, "Received"), h("dd", {}, when(event.received_at))),
          warnings.length ? h("div", {}, h("h4", {}, "Warnings"), h("ul", { class: "warnings" }, warnings.map((w) => h("li", {}, `${w.reason}${w.attribute ? ` — ${w.attribute}` : ""}`)))) : null,
          h("h4", {}, "Event"),
          code(pretty(event)),
        );
      };
      tr.addEventListener("click", open);
      tr.addEventListener("keydown", (e) => { if (e.key === "Enter") open(); });
      return tr;
    };
    const show = (events) => {
      if (!events.length) return;
      emptyRow.remove();
      body.prepend(...events.reverse().map(row));
      while (body.rows.length > MAX_ROWS) body.lastElementChild.remove();
    };
    const start = () => {
      if (controller) controller.abort();
      controller = new AbortController();
      held = [];
      body.replaceChildren(emptyRow);
      detail.hide();
      text(state, "connecting…");
      follow(
        { customer_id: customer.value.trim(), action: action.value.trim() },
        (event) => {
          if (paused) {
            held.push(event);
            text(waiting, `${held.length} new while paused`);
          } else {
            show([event]);
          }
        },
        (what) => {
          text(state, what === "open" ? "● live" : what === "retrying" ? "reconnecting…" : what);
          state.classList.toggle("on", what === "open");
        },
        controller.signal,
      );
    };
    pause.addEventListener("click", () => {
      paused = !paused;
      text(pause, paused ? "Resume" : "Pause");
      pause.classList.toggle("primary", paused);
      if (!paused) {
        show(held);
        held = [];
        text(waiting, "");
      }
    });
    const filters = h(
      "form",
      { class: "toolbar", on: { submit: (e) => { e.preventDefault(); start(); } } },
      h("label", {}, "Customer ", customer),
      h("label", {}, "Event ", action),
      h("button", { type: "submit" }, "Apply"),
      pause,
      state,
      waiting,
    );
    replace(root, filters, h("div", { class: "split" }, h("div", { class: "panel table-panel" }, tableNode), detail.node));
    start();
    return () => controller && controller.abort();
  },
};
