// Background jobs (exports, alignment): their state, progress and cancel button, and a watch
// that shows them again every second while one may still change.

import { dateTime, el, plural } from "./dom.js";

/** Job states in which a job may still change (the page polls while one is shown). */
export const ACTIVE_STATES = new Set(["queued", "running"]);

/** The job's state as a badge; `kind` names it in test ids ("export-state-7"). */
export function stateBadge(job, kind) {
  const testid = `${kind}-state-${job.id}`;
  return el("span", { class: `badge job-${job.state}`, testid }, job.state);
}

/** A cell with the job's progress bar and "done / total units". */
export function progressCell(job, kind, unit = "image") {
  const fraction = job.total ? job.done / job.total : 0;
  return el(
    "td",
    { class: "export-progress" },
    el(
      "span",
      {
        class: "progressbar",
        role: "progressbar",
        "aria-valuemin": 0,
        "aria-valuemax": job.total,
        "aria-valuenow": job.done,
        testid: `${kind}-progress-${job.id}`,
      },
      el("span", { style: `width: ${(fraction * 100).toFixed(1)}%` }),
    ),
    el("span", { class: "small muted" }, `${job.done} / ${plural(job.total, unit)}`),
  );
}

/** The button that cancels a queued or running job. */
export function cancelButton(job, kind, cancel) {
  return el(
    "button",
    {
      type: "button",
      class: "small ghost danger",
      testid: `${kind}-cancel-${job.id}`,
      onclick: () => cancel(job),
    },
    "Cancel",
  );
}

/**
 * Shows a list of jobs (`render(jobs)`) and, while one of them may still change and the page
 * is `visible()`, fetches (`fetchJobs()`, undefined when it failed) and shows them again a second
 * later.
 */
export class JobWatch {
  constructor(fetchJobs, render, visible) {
    this.fetchJobs = fetchJobs;
    this.render = render;
    this.visible = visible;
    this.timer = 0;
  }

  show(jobs) {
    this.render(jobs);
    clearTimeout(this.timer);
    if (jobs.some((job) => ACTIVE_STATES.has(job.state))) {
      this.timer = setTimeout(() => this.poll(), 1000);
    }
  }

  async poll() {
    if (!this.visible()) return;
    const jobs = await this.fetchJobs();
    if (jobs !== undefined && this.visible()) this.show(jobs);
  }
}

/** A job's first cell: its number and when it was asked for. */
export function jobIdCell(job) {
  return el(
    "td",
    {},
    el("div", { class: "strong" }, `#${job.id}`),
    el("div", { class: "muted small" }, dateTime(job.created_at)),
  );
}
