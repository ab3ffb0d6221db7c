// Schema: the event names and attributes seen, with the types seen for each (and how often),
// counts, first and last seen; an attribute seen with more than one type is flagged.

import { h, replace, when } from "../dom.js";
import { every, fetchOr, pill, statusLine, th } from "./common.js";

export const view = {
  id: "schema",
  title: "Schema",
  render(root, ctx) {
    const status = statusLine();
    const content = h("div", { class: "panel" });
    replace(root, status, content);
    return every(10, async () => {
      const schema = await fetchOr(status, ctx, "schema", {});
      if (!schema) return;
      const rows = [];
      for (const event of schema.events) {
        const attributes = Object.entries(event.attributes || {});
        const mixed = attributes.filter(([, types]) => Object.keys(types).length > 1).length;
        rows.push(
          h(
            "tr",
            { class: "event-name" },
            h("td", { class: "strong" }, event.action),
            h("td", {}, `${attributes.length} attribute(s)`, mixed ? " " : "", mixed ? pill(`${mixed} mixed`, "bad") : ""),
            h("td", { class: "num" }, Number(event.count).toLocaleString()),
            h("td", { class: "nowrap" }, when(event.first_seen)),
            h("td", { class: "nowrap" }, when(event.last_seen)),
          ),
        );
        for (const [name, types] of attributes) {
          const entries = Object.entries(types);
          rows.push(
            h(
              "tr",
              { class: entries.length > 1 ? "attribute mixed" : "attribute" },
              h("td", { class: "indent mono" }, name),
              h("td", {}, entries.map(([type, n]) => pill(`${type} × ${n}`, entries.length > 1 ? "bad" : "")), entries.length > 1 ? h("span", { class: "flag" }, " mixed types") : ""),
              h("td", { class: "num" }, entries.reduce((total, [, n]) => total + n, 0).toLocaleString()),
              h("td", {}, ""),
              h("td", {}, ""),
            ),
          );
        }
      }
      if (!rows.length) {
        replace(content, h("p", { class: "empty" }, "No events stored yet."));
        return;
      }
      replace(content, h("table", { class: "grid", id: "schema-table" }, h("thead", {}, h("tr", {}, ["Event / attribute", "Types seen", "Count", "First seen", "Last seen"].map(th))), h("tbody", {}, rows)));
    });
  },
};
