// Exports: the form that starts one, and the jobs with their progress, files and errors.

import { el, fillSelect, plural } from "./dom.js";
import { ACTIVE_STATES, cancelButton, jobIdCell, progressCell, stateBadge } from "./jobs.js";

const NUMBER_FILTERS = ["campaign_version", "min_rounds", "min_reliability", "splits"];
const CHOICE_FILTERS = ["image_set", "pointer_type"];

/** The campaigns and image sets the form offers; `campaignId` is chosen when given. */
export function fillExportChoices(form, campaigns, imageSets, campaignId = null) {
  fillSelect(
    form.elements.campaign_id,
    campaigns.map((campaign) => [campaign.id, `${campaign.name} (${campaign.slug})`]),
  );
  if (campaignId !== null) form.elements.campaign_id.value = String(campaignId);
  fillSelect(form.elements.image_set, [
    ["", "any (no check)"],
    ...imageSets.map((imageSet) => [imageSet.name, imageSet.name]),
  ]);
}

/** The form as the API's export request: empty filters are left out (no filter). */
export function exportRequest(form) {
  const { elements } = form;
  const body = {
    campaign_id: Number(elements.campaign_id.value),
    formats: Array.from(form.querySelectorAll("input[name=formats]:checked"), (box) => box.value),
  };
  for (const name of NUMBER_FILTERS) {
    const raw = elements[name].value.trim();
    if (raw !== "") body[name] = Number(raw);
  }
  for (const name of CHOICE_FILTERS) {
    if (elements[name].value) body[name] = elements[name].value;
  }
  const classes = elements.classes.value.split(",").map((part) => part.trim());
  if (classes.some(Boolean)) body.classes = classes.filter(Boolean); // names or indices
  return body;
}

/** The filters a job was asked with, in words ("" when none). */
function filtersText(request) {
  const parts = [];
  if (request.campaign_version !== null) parts.push(`version ${request.campaign_version}`);
  if (request.image_set !== null) parts.push(`set ${request.image_set}`);
  if (request.classes !== null) parts.push(`classes ${request.classes.join(", ")}`);
  if (request.min_rounds !== null) parts.push(`\u2265 ${plural(request.min_rounds, "round")}`);
  if (request.min_reliability !== null) parts.push(`reliability \u2265 ${request.min_reliability}`);
  if (request.pointer_type !== null) parts.push(request.pointer_type);
  return parts.join(" \u00b7 ");
}

function countsText(counts) {
  const images = plural(counts.images, "image");
  return [
    counts.images_with_map === undefined
      ? images
      : `${images} (${counts.images_with_map} with a map)`,
    plural(counts.valid_rounds, "valid round"),
    plural(counts.players, "player"),
  ].join(" \u00b7 ");
}

/**
 * What the export would hold (`POST /api/admin/exports/preview`): the images and rounds that
 * qualify, how many fail each map rule, and why it would find nothing; or the request's error.
 */
export function renderExportPreview(box, preview, error = null) {
  if (error !== null) {
    box.replaceChildren(
      el("p", { class: "export-error", testid: "export-preview-problem" }, error),
    );
    return;
  }
  const parts = [
    el(
      "ul",
      { class: "export-preview-lines" },
      ...preview.summary.map((line) => el("li", {}, line)),
    ),
  ];
  if (preview.problem !== null) {
    parts.push(
      el(
        "p",
        { class: "export-error", testid: "export-preview-problem" },
        `Nothing to export: ${preview.problem}`,
      ),
    );
  }
  parts.push(el("p", { class: "muted small" }, `Map rules: ${preview.rules}.`));
  box.replaceChildren(...parts);
}

/** What the job gave: the zip when done, why it failed, a cancel button while it may run. */
function resultCell(job, actions) {
  if (job.state === "done") {
    return el(
      "td",
      {},
      el(
        "a",
        {
          href: `/api/admin/exports/${job.id}/download`,
          download: "",
          testid: `export-download-${job.id}`,
        },
        "Download zip",
      ),
      el("div", { class: "small muted" }, countsText(job.counts)),
    );
  }
  if (job.state === "failed" || job.state === "expired") {
    return el(
      "td",
      {},
      el("span", { class: "export-error", testid: `export-error-${job.id}` }, job.error),
    );
  }
  if (ACTIVE_STATES.has(job.state)) {
    return el("td", {}, cancelButton(job, "export", actions.cancel));
  }
  return el("td", { class: "muted" }, "no files");
}

function jobRow(job, actions) {
  return el(
    "tr",
    { "data-export": job.id },
    jobIdCell(job),
    el(
      "td",
      {},
      el("a", { href: `#campaigns/${job.campaign_id}` }, job.campaign_name),
      el("div", { class: "muted small" }, job.campaign_slug),
    ),
    el(
      "td",
      {},
      job.request.formats.join(", "),
      el("div", { class: "muted small" }, filtersText(job.request)),
    ),
    el("td", {}, stateBadge(job, "export")),
    progressCell(job, "export"),
    resultCell(job, actions),
  );
}

/** Fills the jobs table (newest first); `actions`: {cancel(job)}. */
export function renderExports(body, empty, jobs, actions) {
  body.replaceChildren(...jobs.map((job) => jobRow(job, actions)));
  empty.hidden = jobs.length > 0;
}
