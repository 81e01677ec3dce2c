// Campaigns: the table with progress and state buttons, the new-campaign form, the detail view.

import { barChart, playsChart, progressRows, reliabilityChart, revealedChart } from "./chart.js";
import { DASH, chooseOption, dateTime, decimal, el, fillSelect, percent, plural } from "./dom.js";
import { imageSetChoice } from "./images.js";

/** The transitions the API allows from each state, as (new state, button label). */
const STATE_ACTIONS = {
  draft: [["active", "Start"]],
  active: [
    ["paused", "Pause"],
    ["completed", "Complete"],
  ],
  paused: [
    ["active", "Resume"],
    ["completed", "Complete"],
  ],
  completed: [],
};

/** Error codes of the API that concern one field of the form. */
const FIELD_OF_CODE = {
  slug_taken: "slug",
  image_set_not_found: "image_set_id",
  model_not_found: "model_id",
};

const PATTERN_HINTS = {
  slug: "use lowercase letters, digits and single hyphens (e.g. spring-study)",
  completion_url: "an http:// or https:// address",
  completion_code: "no spaces",
  screened_out_code: "no spaces",
};

const SETTINGS_SHOWN = [
  ["image_set_id", "Image set"],
  ["model_id", "DNN model"],
  ["top_k", "Top-k"],
  ["time_limit_ms", "Time limit (ms)"],
  ["brush_radius", "Brush radius (of the shorter side)"],
  ["brush_softness", "Brush softness"],
  ["reveal_background", "Hidden parts look"],
  ["background_blur_sigma", "Blur sigma"],
  ["plays_wanted_per_image", "Plays wanted per image"],
  ["max_images_per_player", "Max images per player"],
  ["catch_trial_share", "Share of catch trials"],
  ["retire_at_reliability", "Retire at reliability"],
  ["assignment_order", "Order of assignment"],
  ["min_valid_rounds_for_completion", "Valid rounds for the completion code"],
  ["leave_out_unwinnable", "Leave out images nobody can win"],
  ["repeat_when_exhausted", "Replays once every image is seen"],
  ["completion_url", "Completion URL"],
  ["completion_code", "Completion code"],
  ["screened_out_code", "Screened-out code"],
];

/** The players' link, as a full URL on this server. */
export function playerLink(campaign) {
  return `${window.location.origin}/?campaign=${encodeURIComponent(campaign.slug)}`;
}

// Prolific fills these placeholders in a study URL; MTurk appends its ids to an ExternalQuestion.
const PROLIFIC_PARAMETERS =
  "&PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}";

/** The study links to paste into Prolific and MTurk, with what each recruiter adds. */
export function studyLinks(campaign) {
  return [
    ["Players", playerLink(campaign), "for anyone: the game with this campaign's rules"],
    [
      "Prolific",
      playerLink(campaign) + PROLIFIC_PARAMETERS,
      "the study URL: Prolific fills in the participant, study and session ids",
    ],
    [
      "MTurk",
      playerLink(campaign),
      "the ExternalQuestion URL: MTurk adds workerId, assignmentId and hitId",
    ],
  ];
}

/** A read-only copy of a link with a button that puts it on the clipboard. */
function copyableLink(name, url, note) {
  const field = el("input", {
    type: "text",
    readonly: true,
    value: url,
    class: "mono copy-field",
    "aria-label": `${name} link`,
    testid: `link-${name.toLowerCase()}`,
  });
  const button = el("button", { type: "button", class: "small secondary" }, "Copy");
  button.addEventListener("click", async () => {
    field.select();
    try {
      await navigator.clipboard.writeText(url);
    } catch {
      document.execCommand("copy"); // the field is selected: older browsers and plain HTTP
    }
    button.textContent = "Copied";
  });
  return el(
    "div",
    { class: "copy-row" },
    el("span", { class: "strong" }, name),
    field,
    button,
    el("span", { class: "muted small" }, note),
  );
}

function linksCard(campaign) {
  return el(
    "section",
    { class: "card", testid: "study-links" },
    el("h2", {}, "Links"),
    ...studyLinks(campaign).map(([name, url, note]) => copyableLink(name, url, note)),
  );
}

function stateBadge(state) {
  return el("span", { class: `badge state-${state}` }, state);
}

/** The campaign's state with, for admins, a button for each allowed transition. */
function stateControls(campaign, canWrite, onChangeState) {
  const buttons = canWrite
    ? STATE_ACTIONS[campaign.state].map(([state, label]) =>
        el(
          "button",
          {
            type: "button",
            class: state === "completed" ? "small ghost danger" : "small secondary",
            onclick: () => onChangeState(campaign, state),
          },
          label,
        ),
      )
    : [];
  return el(
    "div",
    { class: "state-controls", testid: `campaign-state-${campaign.slug}` },
    stateBadge(campaign.state),
    buttons,
  );
}

function retiredCell(progress) {
  const fraction = progress.images_total ? progress.images_retired / progress.images_total : 0;
  return el(
    "td",
    { class: "retired" },
    el("span", {}, `${progress.images_retired} / ${progress.images_total}`),
    el(
      "span",
      { class: "minibar", "aria-hidden": "true" },
      el("span", { style: `width: ${(fraction * 100).toFixed(1)}%` }),
    ),
  );
}

function campaignRow(campaign, canWrite, onChangeState) {
  const { progress } = campaign;
  return el(
    "tr",
    { "data-slug": campaign.slug },
    el(
      "td",
      {},
      el("a", { href: `#campaigns/${campaign.id}`, class: "strong" }, campaign.name),
      el("div", { class: "muted small" }, campaign.slug),
    ),
    el("td", {}, stateControls(campaign, canWrite, onChangeState)),
    el("td", { class: "num" }, String(campaign.version)),
    retiredCell(progress),
    el("td", { class: "num", testid: `campaign-rounds-${campaign.slug}` }, String(progress.rounds)),
    el("td", { class: "num" }, String(progress.plays_last_hour)),
    el("td", { class: "num" }, String(progress.active_players)),
    el("td", { class: "num" }, percent(progress.dnn_success_rate)),
    el("td", { class: "num" }, percent(progress.median_revealed)),
  );
}

/** Fills the campaigns table. */
export function renderCampaignTable(body, empty, campaigns, canWrite, onChangeState) {
  body.replaceChildren(...campaigns.map((c) => campaignRow(c, canWrite, onChangeState)));
  empty.hidden = campaigns.length > 0;
}

/** Settings an empty field clears (sent as null); other empty fields are left out. */
const CLEARABLE = new Set([
  "max_images_per_player",
  "min_valid_rounds_for_completion",
  "completion_url",
  "completion_code",
  "screened_out_code",
]);
const TEXTS = new Set(["consent_text", "instructions_text"]);

function settingFields(form) {
  return Array.from(form.elements).filter((field) => field.name);
}

/** A field's value for the API: a number for number inputs (and data-number selects), null when
 * empty. */
function fieldValue(field) {
  const raw = field.value.trim();
  if (raw === "") return null;
  if ("boolean" in field.dataset) return raw === "true";
  return field.type === "number" || "number" in field.dataset ? Number(raw) : raw;
}

/** A new campaign's settings: empty fields are left out (the API's defaults apply). */
export function formSettings(form) {
  const settings = {};
  for (const field of settingFields(form)) {
    const value = fieldValue(field);
    if (value !== null) settings[field.name] = value;
  }
  return settings;
}

/** The settings the form changes on `campaign` (an emptied optional setting: null). */
export function formChanges(form, campaign) {
  const changes = {};
  for (const field of settingFields(form)) {
    let value = fieldValue(field);
    if (value === null && TEXTS.has(field.name)) value = "";
    if (value === null && !CLEARABLE.has(field.name)) continue;
    if (value !== campaign[field.name]) changes[field.name] = value;
  }
  return changes;
}

/** Puts a campaign's settings into the form. */
export function fillForm(form, campaign) {
  for (const field of settingFields(form)) {
    const value = campaign[field.name];
    if (field.tagName === "SELECT") chooseOption(field, value, `#${value}`);
    else field.value = value === null || value === undefined ? "" : String(value);
  }
}

/** The image sets and models the form offers, from the image-set and model lists. */
export function fillCampaignChoices(form, imageSets, models) {
  fillSelect(form.elements.image_set_id, imageSets.map(imageSetChoice));
  fillSelect(
    form.elements.model_id,
    models.map((model) => [model.id, modelLabel(model)]),
  );
}

function fieldMessage(name, message) {
  return message.startsWith("String should match pattern") && PATTERN_HINTS[name]
    ? PATTERN_HINTS[name]
    : message;
}

export function clearFormErrors(form, general) {
  for (const error of form.querySelectorAll(".field-error")) error.remove();
  for (const field of form.querySelectorAll("[aria-invalid]")) {
    field.removeAttribute("aria-invalid");
  }
  general.hidden = true;
  general.textContent = "";
}

function markField(form, name, message) {
  const field = form.elements.namedItem(name);
  if (!field || !field.closest(".field")) return false;
  field.setAttribute("aria-invalid", "true");
  const error = el(
    "p",
    { class: "field-error", role: "alert", testid: `field-error-${name}` },
    fieldMessage(name, message),
  );
  field.closest(".field").append(error);
  return true;
}

/** Shows the API's refusal next to the fields it names, the rest above the buttons. */
export function showFormErrors(form, general, error) {
  clearFormErrors(form, general);
  const unplaced = [];
  if (error.details && error.details.length) {
    for (const detail of error.details) {
      const name = detail.loc.filter((part) => part !== "body").join(".");
      if (!markField(form, name, detail.msg)) {
        unplaced.push(name ? `${name}: ${detail.msg}` : detail.msg);
      }
    }
  } else if (!markField(form, FIELD_OF_CODE[error.code], error.message)) {
    unplaced.push(error.message);
  }
  if (unplaced.length) {
    general.textContent = unplaced.join("; ");
    general.hidden = false;
  }
  const first = form.querySelector("[aria-invalid]");
  if (first) first.focus();
}

/** A slug proposed from a name: lowercase words joined by hyphens. */
export function slugify(name) {
  return name
    .toLowerCase()
    .normalize("NFKD")
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 100);
}

function settingValue(value) {
  return value === null || value === undefined || value === ""
    ? el("span", { class: "muted" }, "none")
    : String(value);
}

/** A model as staff read it: its name, and its weights' version as a detail. */
export function modelLabel(model) {
  return `${model.name} (weights ${model.version})`;
}

/** Names for the settings that hold ids (image set, model), from the lists the console loaded. */
function namedSettings(campaign, names) {
  const named = { ...campaign };
  const imageSet = names.imageSets.find((item) => item.id === campaign.image_set_id);
  const model = names.models.find((item) => item.id === campaign.model_id);
  if (imageSet) named.image_set_id = imageSet.name;
  if (model) named.model_id = modelLabel(model);
  return named;
}

function settingsList(campaign, names) {
  const shown = namedSettings(campaign, names);
  return el(
    "dl",
    { class: "settings" },
    SETTINGS_SHOWN.flatMap(([key, label]) => [
      el("dt", {}, label),
      el("dd", {}, settingValue(shown[key])),
    ]),
  );
}

function textBlock(title, text) {
  return el(
    "div",
    { class: "text-block" },
    el("h3", {}, title),
    text ? el("p", { class: "pre" }, text) : el("p", { class: "muted" }, "The game's own text."),
  );
}

function changedSettings(version, previous) {
  if (!previous) return "first version";
  const keys = Object.keys(version.settings).filter(
    (key) => JSON.stringify(version.settings[key]) !== JSON.stringify(previous.settings[key]),
  );
  return keys.length
    ? keys
        .map((key) => `${key}: ${previous.settings[key]} \u2192 ${version.settings[key]}`)
        .join(", ")
    : "no game setting changed";
}

function versionsTable(versions) {
  if (!versions.length) {
    return el(
      "p",
      { class: "muted" },
      "No version yet: version 1 is recorded when the campaign starts.",
    );
  }
  const sorted = [...versions].sort((a, b) => a.version - b.version);
  const rows = sorted.map((version, index) =>
    el(
      "tr",
      {},
      el("td", { class: "num" }, String(version.version)),
      el("td", {}, dateTime(version.created_at)),
      el("td", {}, version.created_by_email ?? "system"),
      el("td", {}, changedSettings(version, sorted[index - 1])),
    ),
  );
  return el(
    "table",
    { class: "data compact", testid: "campaign-versions" },
    el(
      "thead",
      {},
      el("tr", {}, ["Version", "Since", "By", "Changes"].map((h) => el("th", { scope: "col" }, h))),
    ),
    el("tbody", {}, rows.reverse()),
  );
}

function stat(label, value) {
  return el(
    "div",
    { class: "stat" },
    el("span", { class: "stat-value" }, value),
    el("span", { class: "stat-label" }, label),
  );
}

function mapCard(image) {
  return el(
    "figure",
    { class: "thumb map-card", testid: "map-card" },
    image.map_url
      ? el("img", { src: image.map_url, alt: `Human map of a ${image.class_name}`, loading: "lazy" })
      : el("div", { class: "no-map muted" }, "no finished round yet"),
    el(
      "figcaption",
      {},
      el("strong", {}, image.class_name),
      el(
        "span",
        { class: "muted" },
        `${plural(image.plays, "play")}${image.retired ? " \u00b7 retired" : ""}`,
      ),
    ),
  );
}

/** Plays over time, success against revealed area, and the images with their human maps. */
function picturesSection({ stats, images }) {
  return el(
    "section",
    { class: "card", testid: "campaign-pictures" },
    el("h2", {}, "Plays over time"),
    playsChart(stats.hours),
    el("h2", {}, "DNN success against revealed area"),
    el(
      "p",
      { class: "muted" },
      `The latest ${plural(stats.rounds_measured, "finished round")}; median revealed area `,
      percent(stats.median_revealed),
      ".",
    ),
    revealedChart(stats.revealed_bins),
    el("h2", {}, "Human maps"),
    el(
      "p",
      { class: "muted" },
      `The ${images.images.length} most played of ${plural(images.total, "image")}: `,
      "where players painted, hotter where more of them did.",
    ),
    el("div", { class: "thumbs" }, images.images.map(mapCard)),
  );
}

const TARGET_SOURCES = {
  query: "the target asked for",
  campaign: "the campaign's target",
  default: "a usual bar; the campaign sets no target",
};

/** "0.93 (0.91–0.95)": a value with its 95% interval. */
function withInterval(found) {
  return found ? `${decimal(found.value, 2)} (${decimal(found.ci_low, 2)}${DASH}${decimal(found.ci_high, 2)})` : DASH;
}

/** The sentence on the plays the target needs (medians over the measured images). */
function estimateSentence(estimate) {
  const target = estimate.target.toFixed(2);
  if (estimate.more_plays_per_image === null) {
    return `At this consistency no number of plays reaches ${target}.`;
  }
  if (estimate.more_plays_per_image === 0) {
    return `The maps reach ${target}: no more plays needed (${estimate.images_at_target} of ${plural(estimate.images, "image")} measured are there).`;
  }
  return `~${plural(estimate.more_plays_per_image, "more play")} per image to reach ${target} (${estimate.players_needed} per image in all; median over the images measured).`;
}

/** The card's content from the API's answer: the latest measurement, if any. */
function reliabilityBody(answer) {
  const measuring = answer.measuring
    ? el("p", { class: "muted" }, "Measuring\u2026 (this can take a minute)")
    : null;
  const measurement = answer.measurement;
  if (!measurement) return [measuring];
  if (!measurement.images_mapped) {
    const needed = `No image has ${measurement.min_rounds} valid rounds (a map) yet.`;
    return [el("p", { class: "muted" }, needed), measuring];
  }
  const { estimate } = measurement;
  return [
    el(
      "div",
      { class: "stats" },
      stat("ceiling (split-half, 95% CI)", withInterval(measurement.ceiling)),
      stat(
        `ceiling without flagged players (${measurement.flagged_players})`,
        withInterval(measurement.ceiling_without_flagged),
      ),
      stat("floor (other images)", measurement.floor ? decimal(measurement.floor.value, 2) : DASH),
      stat("images retired by reliability", String(answer.images_retired_by_reliability)),
    ),
    estimate && measurement.curve.length ? reliabilityChart(measurement.curve, estimate.target) : null,
    estimate
      ? el(
          "p",
          { testid: "reliability-estimate" },
          estimateSentence(estimate),
          el("span", { class: "muted" }, ` Target: ${TARGET_SOURCES[estimate.target_source]}.`),
        )
      : null,
    el(
      "p",
      { class: "muted small" },
      `Measured ${dateTime(measurement.measured_at)} on ${measurement.images_measured} of the `,
      `${plural(measurement.images_mapped, "image")} with a map `,
      `(${plural(measurement.rounds_measured, "finished round")}), at most `,
      `${measurement.max_players_measured} players each; the curve on ${measurement.curve_images} of them.`,
    ),
    measuring,
  ];
}

const RELIABILITY_POLL_MS = 3000;

/**
 * The images the campaign's DNN does not get even on the whole photo, from `load()` (a promise
 * of the API's answer); while they are being measured, it asks again.
 */
function unwinnableSection(load) {
  const body = el("div", {});
  const section = el(
    "section",
    { class: "card", testid: "campaign-unwinnable" },
    el("h2", {}, "Images nobody can win"),
    body,
  );
  const refresh = () =>
    load().then(
      (answer) => {
        const names = answer.images.map((image) => `${image.file_name} (${image.class_name})`);
        body.replaceChildren(
          el(
            "p",
            {},
            `${plural(answer.images.length, "image")} the DNN does not get in its top-k on the ` +
              `whole photo (${answer.measured} of ${answer.total} measured); ` +
              (answer.left_out ? "left out of assignment." : "still assigned."),
          ),
          names.length ? el("p", { class: "muted small" }, names.join(", ")) : null,
        );
        if (answer.measured < answer.total && section.isConnected) {
          setTimeout(refresh, RELIABILITY_POLL_MS);
        }
      },
      (error) => body.replaceChildren(el("p", { class: "form-error" }, error.message)),
    );
  refresh();
  return section;
}

/**
 * The reliability card, filled from `load()` (a promise of the API's answer); while a newer
 * measurement is under way and the card is shown, it asks again until that one arrives.
 */
function reliabilitySection(load) {
  const body = el("div", {});
  const section = el(
    "section",
    { class: "card", testid: "campaign-reliability" },
    el("h2", {}, "Reliability"),
    body,
  );
  const refresh = (shown) =>
    load().then(
      (answer) => {
        const measuredAt = answer.measurement ? answer.measurement.measured_at : null;
        body.replaceChildren(...reliabilityBody(answer).filter(Boolean));
        const waiting = answer.measuring && (shown === undefined || measuredAt === shown);
        if (waiting && section.isConnected) {
          setTimeout(() => refresh(measuredAt), RELIABILITY_POLL_MS);
        }
      },
      (error) => body.replaceChildren(el("p", { class: "form-error" }, error.message)),
    );
  refresh(undefined);
  return section;
}

/**
 * The campaign's page: state, progress chart, pictures, reliability, settings, texts and
 * versions; `pictures`: {stats, images} from the API and `reliability`, a function returning a
 * promise of its answer; `actions`: {canWrite, changeState(campaign, state), edit(campaign)}.
 */
export function renderCampaignDetail(view, campaign, pictures, actions, names) {
  const { progress } = campaign;
  const editable = actions.canWrite && campaign.state !== "completed";
  view.replaceChildren(
    el("a", { href: "#campaigns", class: "back" }, "\u2190 All campaigns"),
    el(
      "div",
      { class: "view-head" },
      el("h1", {}, campaign.name),
      stateControls(campaign, actions.canWrite, actions.changeState),
      editable
        ? el(
            "button",
            {
              type: "button",
              class: "ghost",
              testid: "campaign-edit",
              onclick: () => actions.edit(campaign),
            },
            "Edit settings",
          )
        : null,
      el(
        "a",
        { href: `#exports/${campaign.id}`, class: "button-link", testid: "campaign-export" },
        "Export\u2026",
      ),
    ),
    el(
      "p",
      { class: "muted" },
      `Campaign version ${campaign.version} \u00b7 created ${dateTime(campaign.created_at)}`,
    ),
    linksCard(campaign),
    el(
      "section",
      { class: "card" },
      el("h2", {}, "Progress"),
      el(
        "div",
        { class: "stats" },
        stat("rounds", String(progress.rounds)),
        stat("plays in the last hour", String(progress.plays_last_hour)),
        stat("players active now", String(progress.active_players)),
        stat("DNN success", percent(progress.dnn_success_rate)),
        stat("median revealed area", percent(pictures.stats.median_revealed)),
      ),
      barChart(progressRows(campaign), `Progress of ${campaign.name}`),
    ),
    picturesSection(pictures),
    reliabilitySection(pictures.reliability),
    unwinnableSection(pictures.unwinnable),
    el(
      "div",
      { class: "columns" },
      el("section", { class: "card" }, el("h2", {}, "Settings"), settingsList(campaign, names)),
      el(
        "section",
        { class: "card" },
        el("h2", {}, "Texts"),
        textBlock("Consent", campaign.consent_text),
        textBlock("Instructions", campaign.instructions_text),
      ),
    ),
    el("section", { class: "card" }, el("h2", {}, "Versions"), versionsTable(campaign.versions)),
  );
}
