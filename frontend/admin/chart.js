// A campaign's progress as an inline SVG chart: one horizontal bar per measure, 0 to 100%.

import { svg } from "./dom.js";

const WIDTH = 640;
const LABEL_WIDTH = 170;
const VALUE_WIDTH = 150;
const ROW_HEIGHT = 34;
const BAR_HEIGHT = 16;
const BAR_WIDTH = WIDTH - LABEL_WIDTH - VALUE_WIDTH;

/** The bars of a campaign: images retired, plays collected of those wanted, DNN success. */
export function progressRows(campaign) {
  const { progress } = campaign;
  const playsWanted = progress.images_total * campaign.plays_wanted_per_image;
  return [
    {
      label: "Images retired",
      fraction: progress.images_total ? progress.images_retired / progress.images_total : 0,
      value: `${progress.images_retired} of ${progress.images_total}`,
    },
    {
      label: "Plays collected",
      fraction: playsWanted ? Math.min(1, progress.rounds / playsWanted) : 0,
      value: `${progress.rounds} of ${playsWanted}`,
    },
    {
      label: "DNN success rate",
      fraction: progress.dnn_success_rate ?? 0,
      value:
        progress.dnn_success_rate === null
          ? "no finished round"
          : `${Math.round(progress.dnn_success_rate * 100)}%`,
    },
  ];
}

function barRow(row, index) {
  const y = index * ROW_HEIGHT;
  const middle = y + ROW_HEIGHT / 2;
  const fraction = Math.max(0, Math.min(1, row.fraction));
  return svg(
    "g",
    { class: "chart-row" },
    svg(
      "text",
      { x: 0, y: middle, class: "chart-label", "dominant-baseline": "middle" },
      row.label,
    ),
    svg("rect", {
      x: LABEL_WIDTH,
      y: middle - BAR_HEIGHT / 2,
      width: BAR_WIDTH,
      height: BAR_HEIGHT,
      rx: 4,
      class: "chart-track",
    }),
    svg("rect", {
      x: LABEL_WIDTH,
      y: middle - BAR_HEIGHT / 2,
      width: fraction * BAR_WIDTH,
      height: BAR_HEIGHT,
      rx: 4,
      class: "chart-bar",
    }),
    svg(
      "text",
      {
        x: LABEL_WIDTH + BAR_WIDTH + 12,
        y: middle,
        class: "chart-value",
        "dominant-baseline": "middle",
      },
      row.value,
    ),
  );
}

/** An SVG of labelled bars, each `{label, fraction, value}` (value: the text shown). */
export function barChart(rows, title) {
  const height = rows.length * ROW_HEIGHT;
  return svg(
    "svg",
    {
      class: "chart",
      viewBox: `0 0 ${WIDTH} ${height}`,
      role: "img",
      "aria-label": title,
      testid: "campaign-chart",
    },
    svg("title", {}, title),
    rows.map(barRow),
  );
}

const PLOT = { width: 640, height: 200, left: 44, right: 12, top: 12, bottom: 34 };
const PLOT_WIDTH = PLOT.width - PLOT.left - PLOT.right;
const PLOT_HEIGHT = PLOT.height - PLOT.top - PLOT.bottom;

function plotFrame(title, testid, yMax, yLabel, children) {
  const ticks = [0, 0.5, 1].map((share) => {
    const y = PLOT.top + PLOT_HEIGHT * (1 - share);
    return svg(
      "g",
      {},
      svg("line", { x1: PLOT.left, x2: PLOT.width - PLOT.right, y1: y, y2: y, class: "plot-grid" }),
      svg(
        "text",
        { x: PLOT.left - 6, y, class: "plot-tick", "text-anchor": "end", "dominant-baseline": "middle" },
        yLabel(share * yMax),
      ),
    );
  });
  return svg(
    "svg",
    { class: "chart", viewBox: `0 0 ${PLOT.width} ${PLOT.height}`, role: "img", "aria-label": title, testid },
    svg("title", {}, title),
    ticks,
    children,
  );
}

function xLabel(x, text) {
  return svg("text", { x, y: PLOT.height - 10, class: "plot-tick", "text-anchor": "middle" }, text);
}

/** Rounds started per hour (`[{start, rounds}]`, oldest first) as a filled line. */
export function playsChart(hours) {
  // An even top, so the middle tick is a whole number of rounds too.
  const peak = 2 * Math.max(1, Math.ceil(Math.max(...hours.map((hour) => hour.rounds)) / 2));
  const step = PLOT_WIDTH / Math.max(1, hours.length - 1);
  const points = hours.map((hour, index) => [
    PLOT.left + index * step,
    PLOT.top + PLOT_HEIGHT * (1 - hour.rounds / peak),
  ]);
  const path = points.map(([x, y], index) => `${index ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`);
  const bottom = PLOT.top + PLOT_HEIGHT;
  const area = `${path.join("")}L${points.at(-1)[0]},${bottom}L${PLOT.left},${bottom}Z`;
  const days = hours
    .map((hour, index) => [hour, index])
    .filter(([hour]) => new Date(hour.start).getHours() === 0)
    .map(([hour, index]) =>
      xLabel(PLOT.left + index * step, new Date(hour.start).toLocaleDateString(undefined, { weekday: "short" })),
    );
  const total = hours.reduce((sum, hour) => sum + hour.rounds, 0);
  return plotFrame(
    `Rounds started per hour, last 7 days: ${total} in all`,
    "plays-chart",
    peak,
    (value) => String(value),
    [
      svg("path", { d: area, class: "plot-area" }),
      svg("path", { d: path.join(""), class: "plot-line" }),
      ...days,
    ],
  );
}

/** The DNN's success rate in each bin of revealed area (`[{low, high, rounds, success_rate}]`). */
export function revealedChart(bins) {
  const slot = PLOT_WIDTH / bins.length;
  const bars = bins.map((bin, index) => {
    const x = PLOT.left + index * slot;
    const rate = bin.success_rate ?? 0;
    const height = PLOT_HEIGHT * rate;
    return svg(
      "g",
      { class: "plot-bin" },
      svg("rect", { x: x + 3, y: PLOT.top, width: slot - 6, height: PLOT_HEIGHT, class: "chart-track" }),
      svg("rect", { x: x + 3, y: PLOT.top + PLOT_HEIGHT - height, width: slot - 6, height, class: "chart-bar" }),
      svg("title", {}, `${Math.round(bin.low * 100)}-${Math.round(bin.high * 100)}% revealed: ${bin.correct} of ${bin.rounds} rounds won`),
      svg(
        "text",
        { x: x + slot / 2, y: PLOT.top + PLOT_HEIGHT - height - 4, class: "plot-count", "text-anchor": "middle" },
        bin.rounds ? `n=${bin.rounds}` : "",
      ),
      xLabel(x + slot / 2, `${Math.round(bin.low * 100)}%`),
    );
  });
  return plotFrame(
    "DNN success rate by share of the image revealed",
    "revealed-chart",
    1,
    (value) => `${Math.round(value * 100)}%`,
    bars,
  );
}

/**
 * Reliability against players per image (`[{players, reliability, images}]`, by players) as a
 * line with a dot per point, and the target as a dashed horizontal line.
 */
export function reliabilityChart(curve, target) {
  const first = curve[0].players;
  const span = Math.max(1, curve.at(-1).players - first);
  const x = (players) => PLOT.left + (PLOT_WIDTH * (players - first)) / span;
  const y = (value) => PLOT.top + PLOT_HEIGHT * (1 - Math.max(0, Math.min(1, value)));
  const path = curve.map(
    (point, index) => `${index ? "L" : "M"}${x(point.players).toFixed(1)},${y(point.reliability).toFixed(1)}`,
  );
  const every = Math.ceil(curve.length / 10);
  const dots = curve.map((point, index) =>
    svg(
      "g",
      { class: "plot-point" },
      svg("circle", { cx: x(point.players), cy: y(point.reliability), r: 3.5, class: "plot-dot" }),
      svg(
        "title",
        {},
        `${point.players} players: ${point.reliability.toFixed(2)} (mean of ${point.images} images)`,
      ),
      index % every === 0 || index === curve.length - 1 ? xLabel(x(point.players), String(point.players)) : null,
    ),
  );
  const targetY = y(target);
  return plotFrame(
    `Reliability of the maps against players per image; target ${target.toFixed(2)}`,
    "reliability-chart",
    1,
    (value) => value.toFixed(1),
    [
      svg("line", { x1: PLOT.left, x2: PLOT.width - PLOT.right, y1: targetY, y2: targetY, class: "plot-target" }),
      svg(
        "text",
        { x: PLOT.width - PLOT.right, y: targetY - 5, class: "plot-tick", "text-anchor": "end" },
        `target ${target.toFixed(2)}`,
      ),
      svg("path", { d: path.join(""), class: "plot-line" }),
      ...dots,
    ],
  );
}

/**
 * Each model's top-1 (x) against its human alignment (y: mean Spearman, with its 95% interval),
 * the campaign's human ceiling as a dashed line (`rows`: alignment rows that have a top-1).
 */
export function accuracyAlignmentChart(rows, setName) {
  const x = (value) => PLOT.left + PLOT_WIDTH * Math.max(0, Math.min(1, value));
  const y = (value) => PLOT.top + PLOT_HEIGHT * (1 - Math.max(0, Math.min(1, value)));
  const ceilings = rows.map((row) => row.ceiling).filter((value) => value !== null);
  const ceiling = ceilings.length ? ceilings.reduce((sum, value) => sum + value, 0) / ceilings.length : null;
  const ceilingLine =
    ceiling === null
      ? []
      : [
          svg("line", { x1: PLOT.left, x2: PLOT.width - PLOT.right, y1: y(ceiling), y2: y(ceiling), class: "plot-target" }),
          svg(
            "text",
            { x: PLOT.width - PLOT.right, y: y(ceiling) - 5, class: "plot-tick", "text-anchor": "end" },
            `human ceiling ${ceiling.toFixed(2)}`,
          ),
        ];
  const points = rows.map((row) =>
    svg(
      "g",
      { class: "plot-point", testid: `alignment-point-${row.model_name}` },
      svg("line", { x1: x(row.top1), x2: x(row.top1), y1: y(row.ci_low), y2: y(row.ci_high), class: "plot-error" }),
      svg("circle", { cx: x(row.top1), cy: y(row.mean), r: 4, class: "plot-dot" }),
      svg("text", { x: x(row.top1) + 7, y: y(row.mean) - 6, class: "plot-tick" }, row.model_name),
      svg(
        "title",
        {},
        `${row.model_name} ${row.model_version}: top-1 ${(row.top1 * 100).toFixed(1)}%, ` +
          `alignment ${row.mean.toFixed(3)} [${row.ci_low.toFixed(3)}, ${row.ci_high.toFixed(3)}]`,
      ),
    ),
  );
  return plotFrame(
    `Top-1 on ${setName} (across) against human alignment (Spearman, up)`,
    "alignment-chart",
    1,
    (value) => value.toFixed(1),
    [
      ...ceilingLine,
      ...[0, 0.25, 0.5, 0.75].map((share) => xLabel(x(share), `${share * 100}%`)),
      svg("text", { x: x(1), y: PLOT.height - 10, class: "plot-tick", "text-anchor": "end" }, "100%"),
      ...points,
    ],
  );
}
