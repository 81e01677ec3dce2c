// Image sets: the list, the upload and folder-import report, and a set's images as a grid.

import { dateTime, el, plural } from "./dom.js";

export const IMAGES_PER_PAGE = 48;

/** An image set as a [value, label] choice of a select. */
export function imageSetChoice(imageSet) {
  return [imageSet.id, `${imageSet.name} (${plural(imageSet.image_count, "image")})`];
}

/** Fills the image sets table. */
export function renderImageSets(body, empty, imageSets) {
  body.replaceChildren(
    ...imageSets.map((imageSet) =>
      el(
        "tr",
        { "data-set": imageSet.name },
        el("td", {}, el("a", { href: `#images/${imageSet.id}`, class: "strong" }, imageSet.name)),
        el("td", { class: "num" }, String(imageSet.image_count)),
        el("td", {}, dateTime(imageSet.created_at)),
        el("td", { class: "muted small" }, imageSet.description),
      ),
    ),
  );
  empty.hidden = imageSets.length > 0;
}

/** What an import did: counts, a link to the set, and every file refused with its reason. */
export function renderImportReport(box, report) {
  const skipped = report.skipped.length
    ? `, ${report.skipped.length} skipped (not photos: ${report.skipped.join(", ")})`
    : "";
  const summary = `${report.imported} imported, ${report.duplicates} already in the set, ${plural(
    report.problems.length,
    "problem",
  )}${skipped}.`;
  box.replaceChildren(
    el(
      "p",
      { class: "strong" },
      `Image set ${report.image_set}: ${summary} `,
      report.image_set_id === null
        ? null
        : el("a", { href: `#images/${report.image_set_id}` }, "See the images"),
    ),
    report.problems.length
      ? el(
          "ul",
          { class: "problems" },
          report.problems.map((problem) =>
            el("li", {}, el("span", { class: "mono" }, problem.path), ` \u2013 ${problem.message}`),
          ),
        )
      : null,
  );
  box.hidden = false;
}

/** A catch-trial checkbox for admins (`onToggleCatch(image, checked)`), else a note. */
function catchControl(image, onToggleCatch) {
  if (!onToggleCatch) {
    return image.is_catch ? el("span", { class: "muted small" }, "catch trial") : null;
  }
  return el(
    "label",
    { class: "small" },
    el("input", {
      type: "checkbox",
      checked: image.is_catch,
      testid: `image-catch-${image.id}`,
      onchange: (event) => onToggleCatch(image, event.target.checked),
    }),
    " catch trial",
  );
}

function imageCard(image, onToggleCatch) {
  const { label } = image;
  return el(
    "figure",
    { class: "thumb", testid: `image-${image.id}` },
    el("img", {
      src: image.thumbnail_url,
      alt: label.name,
      loading: "lazy",
      width: image.width,
      height: image.height,
    }),
    el(
      "figcaption",
      {},
      el("span", { class: "strong" }, label.name),
      el(
        "span",
        { class: "muted small" },
        `${label.synset} \u00b7 ${image.width}\u00d7${image.height}`,
      ),
      el("span", { class: "muted small" }, `#${image.id}`),
      catchControl(image, onToggleCatch),
    ),
  );
}

/** A set's page of images with its pager; `onPage(page)` turns the page; admins get
 * `onToggleCatch(image, checked)` to mark catch trials. */
export function renderImageSetPage(view, page, onPage, onToggleCatch = null) {
  const pages = Math.max(1, Math.ceil(page.total / page.per_page));
  const { image_set: imageSet } = page;
  view.replaceChildren(
    el("a", { href: "#images", class: "back" }, "\u2190 All image sets"),
    el(
      "div",
      { class: "view-head" },
      el("h1", {}, imageSet.name),
      el("span", { class: "muted" }, `${plural(page.total, "image")} \u00b7 set #${imageSet.id}`),
    ),
    page.images.length
      ? el("div", { class: "thumbs", testid: "image-grid" }, page.images.map((image) => imageCard(image, onToggleCatch)))
      : el("p", { class: "muted card" }, "No image in this set."),
    el(
      "div",
      { class: "pager" },
      el(
        "button",
        {
          type: "button",
          class: "ghost",
          disabled: page.page <= 1,
          onclick: () => onPage(page.page - 1),
        },
        "\u2190 Previous",
      ),
      el("span", {}, `Page ${page.page} of ${pages}`),
      el(
        "button",
        {
          type: "button",
          class: "ghost",
          disabled: page.page >= pages,
          onclick: () => onPage(page.page + 1),
        },
        "Next \u2192",
      ),
    ),
  );
}
