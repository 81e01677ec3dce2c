// Small DOM helpers: elements built from data (text, never HTML), and the console's formats.

const SVG_NS = "http://www.w3.org/2000/svg";

function build(node, props, children) {
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.setAttribute("class", value);
    else if (key === "testid") node.dataset.testid = value;
    else if (key === "style") node.style.cssText = value; // CSSOM: allowed by the CSP
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

/** An HTML element: `props` are attributes (`class`, `testid`, `onclick`...), then children. */
export function el(tag, props = {}, ...children) {
  return build(document.createElement(tag), props, children);
}

/** An SVG element, like `el`. */
export function svg(tag, props = {}, ...children) {
  return build(document.createElementNS(SVG_NS, tag), props, children);
}

export const DASH = "\u2013";

export function percent(fraction, digits = 0) {
  return fraction === null || fraction === undefined
    ? DASH
    : `${(fraction * 100).toFixed(digits)}%`;
}

export function decimal(value, digits = 1) {
  return value === null || value === undefined ? DASH : value.toFixed(digits);
}

export function seconds(ms) {
  return ms === null || ms === undefined ? DASH : `${(ms / 1000).toFixed(2)} s`;
}

/** "1 image", "2 images". */
export function plural(count, word) {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

export function dateTime(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime())
    ? iso
    : date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/**
 * Replaces a select's options by `items` as [value, label] pairs, keeping the chosen value when
 * it is still offered.
 */
export function fillSelect(select, items) {
  const chosen = select.value;
  select.replaceChildren(...items.map(([value, label]) => el("option", { value }, label)));
  if (items.some(([value]) => String(value) === chosen)) select.value = chosen;
}

/** Chooses `value` in a select, adding an option for it (labelled `label`) if it has none. */
export function chooseOption(select, value, label = String(value)) {
  const text = String(value);
  if (!Array.from(select.options).some((option) => option.value === text)) {
    select.append(el("option", { value: text }, label));
  }
  select.value = text;
}
