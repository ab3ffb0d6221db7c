// A hand-made SVG line chart: per-minute series over a time axis, with a y axis of round
// ticks, grid lines, a legend, and a <title> on each point (the browser's own tooltip).

import { s } from "./dom.js";

const WIDTH = 860;
const HEIGHT = 260;
const MARGIN = { top: 36, right: 20, bottom: 34, left: 52 };

function niceMax(value) {
  if (value <= 5) return 5;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (step * power >= value) return step * power;
  }
  return 10 * power;
}

function label(date) {
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
}

/**
 * points: [{at: ISO, ...values}], series: [{key, name, className}]. The SVG scales to its box
 * (viewBox), so the chart fills whatever width the page gives it.
 */
export function lineChart(points, series, { title = "" } = {}) {
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const peak = Math.max(0, ...points.flatMap((p) => series.map((one) => Number(p[one.key]) || 0)));
  const top = niceMax(peak);
  const x = (i) => MARGIN.left + (points.length <= 1 ? 0 : (i * plotWidth) / (points.length - 1));
  const y = (v) => MARGIN.top + plotHeight - (v / top) * plotHeight;

  const grid = [];
  for (let tick = 0; tick <= 5; tick += 1) {
    const value = (top * tick) / 5;
    const at = y(value);
    grid.push(
      s("line", { class: "grid-line", x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: at, y2: at }),
      s(
        "text",
        { class: "tick", x: MARGIN.left - 8, y: at + 4, "text-anchor": "end" },
        Number.isInteger(value) ? String(value) : value.toFixed(1),
      ),
    );
  }
  const every = Math.max(1, Math.round(points.length / 6));
  points.forEach((point, i) => {
    if (i % every !== 0 && i !== points.length - 1) return;
    const at = x(i);
    grid.push(
      s("line", { class: "axis", x1: at, x2: at, y1: MARGIN.top + plotHeight, y2: MARGIN.top + plotHeight + 5 }),
      s(
        "text",
        { class: "tick", x: at, y: HEIGHT - MARGIN.bottom + 20, "text-anchor": "middle" },
        label(new Date(point.at)),
      ),
    );
  });

  const lines = series.map((one) => {
    const coords = points.map((p, i) => `${x(i).toFixed(1)},${y(Number(p[one.key]) || 0).toFixed(1)}`);
    const dots = points.map((p, i) =>
      s(
        "circle",
        { class: `dot ${one.className}`, cx: x(i).toFixed(1), cy: y(Number(p[one.key]) || 0).toFixed(1), r: 2.5 },
        s("title", {}, `${label(new Date(p.at))}  ${one.name}: ${Number(p[one.key]) || 0}`),
      ),
    );
    return s(
      "g",
      { class: `series ${one.className}` },
      s("polyline", { class: `line ${one.className}`, points: coords.join(" ") }),
      dots,
    );
  });

  const legend = series.map((one, i) =>
    s(
      "g",
      { class: "legend", transform: `translate(${MARGIN.left + i * 170}, 8)` },
      s("rect", { class: `swatch ${one.className}`, x: 0, y: 0, width: 12, height: 12, rx: 2 }),
      s("text", { class: "legend-text", x: 18, y: 10 }, one.name),
    ),
  );

  return s(
    "svg",
    {
      class: "chart",
      viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
      role: "img",
      "aria-label": title,
      preserveAspectRatio: "xMidYMid meet",
    },
    s("title", {}, title),
    grid,
    s("line", { class: "axis", x1: MARGIN.left, x2: MARGIN.left, y1: MARGIN.top, y2: MARGIN.top + plotHeight }),
    s("line", {
      class: "axis",
      x1: MARGIN.left,
      x2: WIDTH - MARGIN.right,
      y1: MARGIN.top + plotHeight,
      y2: MARGIN.top + plotHeight,
    }),
    s(
      "text",
      { class: "axis-label", x: 14, y: MARGIN.top + plotHeight / 2, transform: `rotate(-90 14 ${MARGIN.top + plotHeight / 2})`, "text-anchor": "middle" },
      "per minute",
    ),
    lines,
    legend,
  );
}
