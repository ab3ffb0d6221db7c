// Users: a profile by customer_id (attributes, identifiers, aliases, devices) and the user's
// events, newest first, paged.

import { h, pretty, replace, when } from "../dom.js";
import { code, fetchOr, statusLine, th } from "./common.js";

const PAGE = 20;

function pairs(object, empty) {
  const entries = Object.entries(object || {});
  if (!entries.length) return h("p", { class: "muted" }, empty);
  return h("table", { class: "grid compact" }, h("tbody", {}, entries.map(([name, value]) => h("tr", {}, h("th", { scope: "row", class: "mono" }, name), h("td", {}, typeof value === "string" ? value : JSON.stringify(value))))));
}

export const view = {
  id: "users",
  title: "Users",
  render(root, ctx) {
    const status = statusLine();
    const input = h("input", { id: "users-id", placeholder: "customer_id", spellcheck: "false", required: true });
    const profile = h("div", { id: "users-profile" });
    let current = null;

    const eventsPanel = (customerId) => {
      const body = h("tbody", { id: "users-events" });
      const more = h("button", { type: "button", hidden: true }, "Older events");
      let cursor = null;
      const load = async () => {
        const page = await fetchOr(status, ctx, "events", { customer_id: customerId, limit: PAGE, cursor });
        if (!page) return;
        body.append(
          ...page.events.map((event) => {
            const detail = h("tr", { class: "event-detail", hidden: true }, h("td", { colspan: 4 }, code(pretty(event))));
            const tr = h("tr", { class: "event-row", tabindex: 0 }, h("td", { class: "nowrap" }, when(event.received_at)), h("td", { class: "strong" }, event.action), h("td", { class: "clip" }, JSON.stringify(event.attributes)), h("td", { class: "mono" }, event.request_id));
            tr.addEventListener("click", () => { detail.hidden = !detail.hidden; });
            return [tr, detail];
          }).flat(),
        );
        if (!body.rows.length) body.append(h("tr", {}, h("td", { colspan: 4 }, "No events.")));
        cursor = page.next_cursor;
        more.hidden = !cursor;
      };
      more.addEventListener("click", load);
      load();
      return h("div", { class: "panel" }, h("h3", {}, "Events"), h("table", { class: "grid clickable" }, h("thead", {}, h("tr", {}, ["Received", "Event", "Attributes", "Request id"].map(th))), body), more);
    };

    const lookup = async (customerId) => {
      current = customerId;
      replace(profile);
      const user = await fetchOr(status, ctx, `users/${encodeURIComponent(customerId)}`, {});
      if (!user || current !== customerId) return;
      const devices = user.devices || [];
      replace(
        profile,
        h(
          "div",
          { class: "panel" },
          h("h3", {}, user.customer_id),
          h("dl", { class: "facts" }, h("dt", {}, "MoEngage id"), h("dd", { class: "mono" }, user.moengage_id ?? ""), h("dt", {}, "First seen"), h("dd", {}, when(user.first_seen)), h("dt", {}, "Last seen"), h("dd", {}, when(user.last_seen)), h("dt", {}, "Events"), h("dd", {}, String(user.event_count ?? 0))),
          h("div", { class: "columns" }, h("div", {}, h("h4", {}, "Attributes"), pairs(user.attributes, "No attributes.")), h("div", {}, h("h4", {}, "Identifiers"), pairs(user.identifiers, "No identifiers."), h("h4", {}, "Aliases"), user.aliases && user.aliases.length ? h("ul", {}, user.aliases.map((a) => h("li", { class: "mono" }, a))) : h("p", { class: "muted" }, "No aliases."))),
          h("h4", {}, "Devices"),
          devices.length ? h("table", { class: "grid compact" }, h("thead", {}, h("tr", {}, ["Device", "Platform", "App version", "Last IP", "Last seen"].map(th))), h("tbody", {}, devices.map((d) => h("tr", {}, h("td", { class: "mono" }, d.device_id), h("td", {}, d.platform ?? ""), h("td", {}, d.app_version ?? ""), h("td", {}, d.last_ip ?? ""), h("td", { class: "nowrap" }, when(d.last_seen)))))) : h("p", { class: "muted" }, "No devices."),
        ),
        eventsPanel(user.customer_id),
      );
    };
    const form = h("form", { class: "toolbar", on: { submit: (e) => { e.preventDefault(); if (input.value.trim()) lookup(input.value.trim()); } } }, h("label", {}, "Customer ", input), h("button", { type: "submit", class: "primary" }, "Look up"), status);
    replace(root, form, profile);
    input.focus();
    return () => { current = null; };
  },
};
