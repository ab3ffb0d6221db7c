// Issues: what the processor dropped or rewrote, grouped by reason, with counts and examples.

import { h, replace, when } from "../dom.js";
import { every, fetchOr, pill, statusLine, th } from "./common.js";

const EXAMPLES = 5;

export const view = {
  id: "issues",
  title: "Issues",
  render(root, ctx) {
    const status = statusLine();
    const content = h("div", { id: "issues-groups" });
    replace(root, status, content);
    return every(10, async () => {
      const found = await fetchOr(status, ctx, "issues", {});
      if (!found) return;
      const groups = new Map();
      for (const issue of found.issues) {
        if (!groups.has(issue.reason)) groups.set(issue.reason, []);
        groups.get(issue.reason).push(issue);
      }
      if (!groups.size) {
        replace(content, h("div", { class: "panel" }, h("p", { class: "empty" }, "No drops or rewrites: every attribute was kept as sent.")));
        return;
      }
      const sorted = [...groups.entries()].sort((a, b) => b[1].length - a[1].length);
      replace(
        content,
        h(
          "div",
          { class: "panel" },
          h("table", { class: "grid", id: "issues-summary" }, h("thead", {}, h("tr", {}, ["Reason", "Count", "Attributes"].map(th))), h("tbody", {}, sorted.map(([reason, items]) => h("tr", {}, h("td", {}, pill(reason, "warn")), h("td", { class: "num" }, String(items.length)), h("td", { class: "clip" }, [...new Set(items.map((i) => i.attribute ?? ""))].slice(0, 8).join(", ")))))),
        ),
        sorted.map(([reason, items]) =>
          h(
            "div",
            { class: "panel" },
            h("h3", {}, reason, h("span", { class: "count" }, ` ${items.length}`)),
            h("table", { class: "grid compact" }, h("thead", {}, h("tr", {}, ["When", "Attribute", "Action index", "Request id"].map(th))), h("tbody", {}, items.slice(0, EXAMPLES).map((i) => h("tr", {}, h("td", { class: "nowrap" }, when(i.at)), h("td", { class: "mono" }, i.attribute ?? ""), h("td", { class: "num" }, i.index ?? ""), h("td", { class: "mono" }, i.request_id ?? ""))))),
            items.length > EXAMPLES ? h("p", { class: "muted" }, `and ${items.length - EXAMPLES} more`) : null,
          ),
        ),
      );
    });
  },
};
