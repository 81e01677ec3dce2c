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
