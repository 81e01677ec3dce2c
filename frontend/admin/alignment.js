// The models page's human-alignment card: each model's alignment with a campaign's human maps
// (stored by `clickme align` or an alignment job), its top-1 on an image set, one plotted
// against the other; and the alignment jobs started from the console.

import { accuracyAlignmentChart } from "./chart.js";
import { DASH, dateTime, el, percent } from "./dom.js";
import { ACTIVE_STATES, cancelButton, jobIdCell, progressCell, stateBadge } from "./jobs.js";

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

/** What the job gave: its alignment when done, why it failed, a cancel button while it may run. */
function jobResultCell(job, cancel) {
  if (job.state === "done") {
    return el(
      "td",
      { testid: `alignment-result-${job.id}` },
      spearmanCell(job.result),
      el("div", { class: "small muted" }, `${ceilingCell(job.result)} of the human ceiling`),
    );
  }
  if (job.state === "failed") return el("td", { class: "export-error" }, job.error);
  if (ACTIVE_STATES.has(job.state)) return el("td", {}, cancelButton(job, "alignment", cancel));
  return el("td", { class: "muted" }, DASH);
}

/** Fills the alignment jobs' table (newest first); `cancel(job)` cancels one. */
export function renderAlignmentJobs({ body, empty }, jobs, cancel) {
  body.replaceChildren(
    ...jobs.map((job) =>
      el(
        "tr",
        { "data-alignment-job": job.id },
        jobIdCell(job),
        el(
          "td",
          {},
          job.model_name,
          el(
            "div",
            { class: "muted small" },
            `${job.request.method} saliency \u00b7 ${job.request.splits} splits`,
          ),
        ),
        el("td", {}, stateBadge(job, "alignment")),
        progressCell(job, "alignment"),
        jobResultCell(job, cancel),
      ),
    ),
  );
  empty.hidden = jobs.length > 0;
}
