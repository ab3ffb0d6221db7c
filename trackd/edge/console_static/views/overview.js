// Overview: accepted events and rejected requests per minute over the last hour (a chart),
// queue lag, event freshness, and each rate limit's use against its limit.

import { lineChart } from "../chart.js";
import { h, replace } from "../dom.js";
import { every, fetchOr, statusLine, th } from "./common.js";

const SERIES = [
  { key: "accepted_events", name: "Accepted events", className: "accepted" },
  { key: "rejected_requests", name: "Rejected requests", className: "rejected" },
];

function card(label, value, note, id) {
  return h("div", { class: "card", id }, h("div", { class: "card-label" }, label), h("div", { class: "card-value" }, value), h("div", { class: "card-note" }, note || ""));
}

function seconds(value) {
  if (value === null || value === undefined) return "no events yet";
  if (value < 1) return `${Math.round(value * 1000)} ms`;
  if (value < 120) return `${value.toFixed(1)} s`;
  return `${Math.round(value / 60)} min`;
}

export const view = {
  id: "overview",
  title: "Overview",
  render(root, ctx) {
    const status = statusLine();
    const cards = h("div", { class: "cards" });
    const chart = h("div", { class: "chart-box" });
    const limits = h("div", { class: "panel" });
    replace(root, status, cards, h("div", { class: "panel" }, h("h3", {}, "Last hour, per minute"), chart), limits);
    return every(5, async () => {
      const activity = await fetchOr(status, ctx, "activity", { minutes: 60 });
      if (!activity) return;
      const sum = (key) => activity.minutes.reduce((total, m) => total + (Number(m[key]) || 0), 0);
      replace(
        cards,
        card("Accepted events", sum("accepted_events").toLocaleString(), "last hour", "card-accepted"),
        card("Rejected requests", sum("rejected_requests").toLocaleString(), "last hour", "card-rejected"),
        card("Queue lag", `${Number(activity.queue_lag_events).toLocaleString()} events`, "accepted, not yet processed", "card-lag"),
        card("Event freshness", seconds(activity.freshness_seconds), "since the newest processed event", "card-freshness"),
      );
      replace(chart, lineChart(activity.minutes, SERIES, { title: "Accepted events and rejected requests per minute" }));
      const rows = Object.entries(activity.rate_limit || {}).map(([bucket, use]) => {
        const share = use.limit ? use.used / use.limit : 0;
        return h(
          "tr",
          {},
          h("td", { class: "mono" }, bucket),
          h("td", { class: "num" }, Number(use.used).toLocaleString()),
          h("td", { class: "num" }, Number(use.limit).toLocaleString()),
          h("td", { class: "meter-cell" }, h("meter", { min: 0, max: 1, low: 0.7, high: 0.9, optimum: 0, value: share.toFixed(4) }), ` ${share > 0 && share < 0.001 ? "< 0.1" : (share * 100).toFixed(1)} %`),
        );
      });
      replace(
        limits,
        h("h3", {}, "Rate limits, this minute"),
        h("table", { class: "grid" }, h("thead", {}, h("tr", {}, ["Bucket", "Used", "Limit", "Use"].map(th))), h("tbody", {}, rows)),
      );
    });
  },
};
