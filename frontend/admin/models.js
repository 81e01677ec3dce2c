// The model registry: the registered DNNs with their accuracy, and the top-5 of a try.

import { DASH, dateTime, el, percent, plural } from "./dom.js";

function accuracyList(evaluations) {
  if (!evaluations.length) return el("span", { class: "muted" }, "not computed yet");
  return el(
    "ul",
    { class: "accuracies" },
    evaluations.map((evaluation) =>
      el(
        "li",
        { title: `computed ${dateTime(evaluation.created_at)}` },
        el("span", { class: "strong" }, evaluation.image_set),
        ` top-1 ${percent(evaluation.top1, 1)} \u00b7 top-5 ${percent(evaluation.top5, 1)}`,
        el("span", { class: "muted" }, ` (${plural(evaluation.n_images, "image")})`),
      ),
    ),
  );
}

/** Fills the models table. */
export function renderModels(body, models) {
  body.replaceChildren(
    ...models.map((model) =>
      el(
        "tr",
        { "data-model": model.name },
        el(
          "td",
          {},
          el("div", { class: "strong" }, model.name),
          el("div", { class: "muted small" }, `model #${model.id} \u00b7 ${model.architecture}`),
        ),
        el("td", {}, model.version),
        el("td", {}, model.backend),
        el(
          "td",
          {},
          model.in_use ? el("span", { class: "badge state-active" }, "playing") : DASH,
        ),
        el(
          "td",
          { class: "mono small", title: model.weights_sha256 },
          model.weights_sha256.slice(0, 12),
        ),
        el("td", { testid: `model-accuracy-${model.name}` }, accuracyList(model.evaluations)),
      ),
    ),
  );
}

/** The result of a new accuracy computation. */
export function renderEvaluation(box, evaluation) {
  box.textContent =
    `${evaluation.model_name} on ${evaluation.image_set}: top-1 ${percent(evaluation.top1, 1)}, ` +
    `top-5 ${percent(evaluation.top5, 1)} over ${plural(evaluation.n_images, "image")}.`;
  box.hidden = false;
}

/** The photo tried and the DNN's five guesses, the true label marked. */
export function renderTry(box, tried) {
  box.replaceChildren(
    el("img", {
      class: "tried",
      src: `/api/images/${tried.image_id}/file`,
      alt: tried.label.name,
    }),
    el(
      "div",
      {},
      el("p", {}, "Label: ", el("span", { class: "strong" }, tried.label.name)),
      el(
        "ol",
        { class: "guesses", testid: "try-guesses" },
        tried.top5.map((guess) =>
          el(
            "li",
            { class: guess.class_index === tried.label.class_index ? "hit" : null },
            el("span", {}, guess.name),
            el("span", { class: "num" }, percent(guess.probability, 1)),
          ),
        ),
      ),
      el(
        "p",
        { class: "muted" },
        tried.label_rank === null
          ? "The label is not among the five guesses."
          : `The label is guess number ${tried.label_rank}.`,
      ),
    ),
  );
  box.hidden = false;
}
