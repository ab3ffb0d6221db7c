// Requests: the request log, newest first, filtered by status; a rejected request shows the
// error body MoEngage's contract answered next to the body that caused it.

import { h, pretty, replace, when } from "../dom.js";
import { code, detailPane, fetchOr, select, statusLine, statusPill, th } from "./common.js";

const STATUSES = [["", "All"], ["2xx", "2xx"], ["4xx", "4xx"], ["5xx", "5xx"], ["400", "400"], ["401", "401"], ["403", "403"], ["413", "413"], ["429", "429"]];

function errorBody(entry) {
  const error = { message: entry.error.message, type: entry.error.type };
  if (entry.error.attribute !== undefined && entry.error.attribute !== null) error.attribute = entry.error.attribute;
  error.request_id = entry.request_id;
  return { status: "fail", error };
}

export const view = {
  id: "requests",
  title: "Requests",
  render(root, ctx) {
    const status = statusLine();
    const filter = h("select", { id: "requests-status" }, STATUSES.map(([value, label]) => h("option", { value }, label)));
    const refresh = h("button", { type: "button" }, "Refresh");
    const more = h("button", { type: "button", id: "requests-more", hidden: true }, "Older requests");
    const body = h("tbody", { id: "requests-rows" });
    const detail = detailPane();
    let cursor = null;

    const open = (entry, tr) => {
      select(tr);
      const parts = [
        h("h3", {}, `${entry.method} ${entry.path}`),
        h(
          "dl",
          { class: "facts" },
          h("dt", {}, "Status"), h("dd", {}, statusPill(entry.status)),
          h("dt", {}, "Endpoint"), h("dd", {}, entry.endpoint),
          h("dt", {}, "Received"), h("dd", {}, when(entry.at)),
          h("dt", {}, "Request id"), h("dd", {}, entry.request_id),
          h("dt", {}, "Client"), h("dd", {}, `${entry.client_ip ?? ""}  ${entry.user_agent ?? ""}`),
          h("dt", {}, "Events"), h("dd", {}, String(entry.event_count)),
        ),
      ];
      if (entry.error) {
        parts.push(
          h(
            "div",
            { class: "side-by-side" },
            h("div", {}, h("h4", {}, "Answered (MoEngage's error body)"), code(pretty(errorBody(entry)), { id: "request-error-body" })),
            h(
              "div",
              {},
              h("h4", {}, entry.body_truncated ? "Request body (first 16 KB)" : "Request body"),
              entry.body === null ? h("p", { class: "muted" }, "Not kept: the request failed authentication.") : code(pretty(entry.body), { id: "request-body" }),
            ),
          ),
        );
      }
      if (entry.warnings && entry.warnings.length) {
        parts.push(h("h4", {}, "Warnings"), code(pretty(entry.warnings)));
      }
      if (entry.headers) {
        parts.push(
          h("h4", {}, "Headers"),
          h("table", { class: "grid compact" }, h("tbody", {}, Object.entries(entry.headers).map(([name, value]) => h("tr", {}, h("th", { scope: "row" }, name), h("td", {}, value))))),
        );
      }
      detail.show(parts);
    };
    const row = (entry) => {
      const tr = h(
        "tr",
        { class: "request-row", tabindex: 0 },
        h("td", { class: "nowrap" }, when(entry.at)),
        h("td", {}, statusPill(entry.status)),
        h("td", { class: "nowrap" }, entry.endpoint),
        h("td", { class: "mono" }, entry.request_id),
        h("td", {}, entry.customer_id ?? ""),
        h("td", { class: "num" }, String(entry.event_count)),
        h("td", { class: "message" }, entry.error ? entry.error.message : entry.warnings && entry.warnings.length ? `${entry.warnings.length} warning(s)` : ""),
      );
      tr.addEventListener("click", () => open(entry, tr));
      tr.addEventListener("keydown", (e) => { if (e.key === "Enter") open(entry, tr); });
      return tr;
    };
    const load = async (older) => {
      const params = { limit: 100, status: filter.value };
      if (older && cursor) params.before = cursor;
      const page = await fetchOr(status, ctx, "requests", params);
      if (!page) return;
      if (!older) {
        body.replaceChildren();
        detail.hide();
      }
      body.append(...page.requests.map(row));
      if (!body.rows.length) body.append(h("tr", { class: "placeholder" }, h("td", { colspan: 7 }, "No requests recorded yet.")));
      cursor = page.next_cursor;
      more.hidden = !cursor;
    };
    filter.addEventListener("change", () => load(false));
    refresh.addEventListener("click", () => load(false));
    more.addEventListener("click", () => load(true));
    const headers = ["Received", "Status", "Endpoint", "Request id", "Customer", "Events", "Error or warnings"];
    replace(
      root,
      h("div", { class: "toolbar" }, h("label", {}, "Status ", filter), refresh, status),
      h("div", { class: "split" }, h("div", { class: "panel table-panel" }, h("table", { class: "grid clickable" }, h("thead", {}, h("tr", {}, headers.map(th))), body), more), detail.node),
    );
    load(false);
    return () => {};
  },
};
