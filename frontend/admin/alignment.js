// The models page's human-alignment card: each model's alignment with a campaign's human maps
// (stored by `clickme align`), its top-1 on an image set, and one plotted against the other.

import { accuracyAlignmentChart } from "./chart.js";
import { DASH, dateTime, el, percent } from "./dom.js";

function spearmanCell(row) {
  return `${row.mean.toFixed(3)} [${row.ci_low.toFixed(3)}, ${row.ci_high.toFixed(3)}]`;
}

function ceilingCell(row) {
  if (row.of_ceiling === null) return DASH;
  const interval = `[${percent(row.of_ceiling_low, 1)}, ${percent(row.of_ceiling_high, 1)}]`;
  return `${percent(row.of_ceiling, 1)} ${interval}`;
}

function alignmentRow(row) {
  return el(
    "tr",
    { "data-model": row.model_name },
    el(
      "td",
      {},
      el("div", { class: "strong" }, row.model_name),
      el("div", { class: "muted small" }, `${row.model_version} \u00b7 ${row.method} saliency`),
    ),
    el("td", { class: "num" }, percent(row.top1, 1)),
    el("td", { class: "num", title: `computed ${dateTime(row.computed_at)}` }, spearmanCell(row)),
    el("td", { class: "num" }, ceilingCell(row)),
    el("td", { class: "num" }, String(row.n_images)),
  );
}

/** Fills the alignment table and draws the accuracy-alignment picture. */
export function renderAlignment({ body, empty, plot }, table) {
  body.replaceChildren(...table.rows.map(alignmentRow));
  empty.hidden = table.rows.length > 0;
  const plotted = table.rows.filter((row) => row.top1 !== null);
  if (plotted.length) {
    plot.replaceChildren(
      accuracyAlignmentChart(plotted, table.accuracy_set.name),
      el(
        "p",
        { class: "muted small" },
        `Across: top-1 on ${table.accuracy_set.name}. Up: alignment (mean Spearman), with its ` +
          "95% interval; dashed: the human ceiling.",
      ),
    );
  } else {
    const hint = table.rows.length
      ? "No model has a top-1 on this image set yet: compute one below, or pass --accuracy-set."
      : "";
    plot.replaceChildren(el("p", { class: "muted" }, hint));
  }
}
