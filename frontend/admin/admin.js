// The ClickMe staff console: sign-in, campaigns, a campaign's detail, players, image sets, models.
// Admins may change things; researchers see the same pages without the buttons that write.

import { renderAlignment, renderAlignmentJobs } from "./alignment.js";
import { staffApi } from "./api.js";
import {
  clearFormErrors,
  fillCampaignChoices,
  fillForm,
  formChanges,
  formSettings,
  modelLabel,
  renderCampaignDetail,
  renderCampaignTable,
  showFormErrors,
  slugify,
} from "./campaigns.js";
import { chooseOption, el, fillSelect } from "./dom.js";
import {
  exportRequest,
  fillExportChoices,
  renderExportPreview,
  renderExports,
} from "./exports.js";
import {
  IMAGES_PER_PAGE,
  imageSetChoice,
  renderImageSetPage,
  renderImageSets,
  renderImportReport,
} from "./images.js";
import { ACTIVE_STATES, JobWatch } from "./jobs.js";
import { renderEvaluation, renderModels, renderTry } from "./models.js";
import { renderPlayerDetail, renderPlayers } from "./players.js";

const byId = (id) => document.getElementById(id);
const VIEWS = [
  "loading-view",
  "login-view",
  "campaigns-view",
  "campaign-view",
  "players-view",
  "player-view",
  "images-view",
  "image-set-view",
  "models-view",
  "exports-view",
];

const ui = {
  tabs: byId("tabs"),
  who: byId("who"),
  notice: byId("notice"),
  loginForm: byId("login-form"),
  loginError: byId("login-error"),
  campaignsBody: byId("campaigns-body"),
  campaignsEmpty: byId("campaigns-empty"),
  campaignForm: byId("campaign-form"),
  campaignFormError: byId("campaign-form-error"),
  campaignView: byId("campaign-view"),
  playersBody: byId("players-body"),
  playersSummary: byId("players-summary"),
  playersPage: byId("players-page"),
  flaggedOnly: byId("flagged-only"),
  playersCampaign: byId("players-campaign"),
  playerView: byId("player-view"),
  ask: byId("ask-dialog"),
  uploadForm: byId("upload-form"),
  folderForm: byId("folder-form"),
  importError: byId("import-error"),
  importReport: byId("import-report"),
  imageSetView: byId("image-set-view"),
  accuracyForm: byId("accuracy-form"),
  tryForm: byId("try-form"),
  alignmentForm: byId("alignment-form"),
  alignmentRunForm: byId("alignment-run-form"),
  alignmentRunError: byId("alignment-run-error"),
  exportForm: byId("export-form"),
  exportFormError: byId("export-form-error"),
  exportsView: byId("exports-view"),
};

const state = {
  me: null,
  campaigns: [],
  editing: null, // the campaign the form edits; null: the form creates one
  playersPage: 1,
  stopReplay: () => {}, // stops the replay on the player's page shown last
  slugEdited: false,
  loads: 0,
  exportPreview: { timer: 0, asked: 0 }, // the pending preview of the export form, the latest ask
};

const isAdmin = () => state.me !== null && state.me.role === "admin";

function showView(id) {
  for (const view of VIEWS) byId(view).hidden = view !== id;
}

function notify(message) {
  ui.notice.textContent = message;
  ui.notice.hidden = !message;
}

/** Asks to confirm in a dialog (with `reason`: a reason must be typed); null when cancelled. */
function ask({ title, text, confirm, reason = false }) {
  byId("ask-title").textContent = title;
  byId("ask-text").textContent = text;
  byId("ask-confirm").textContent = confirm;
  byId("ask-reason-box").hidden = !reason;
  byId("ask-reason").value = "";
  byId("ask-error").hidden = true;
  ui.ask.dataset.needsReason = reason ? "yes" : "no";
  ui.ask.returnValue = "";
  ui.ask.showModal();
  (reason ? byId("ask-reason") : byId("ask-confirm")).focus();
  return new Promise((resolve) => {
    ui.ask.addEventListener(
      "close",
      () => resolve(ui.ask.returnValue === "ok" ? byId("ask-reason").value.trim() : null),
      { once: true },
    );
  });
}

function onAskSubmit(event) {
  const confirming = event.submitter && event.submitter.value === "ok";
  if (confirming && ui.ask.dataset.needsReason === "yes" && !byId("ask-reason").value.trim()) {
    event.preventDefault();
    byId("ask-error").textContent = "Please give a reason: it is kept with the decision.";
    byId("ask-error").hidden = false;
  }
}

/**
 * Loads a view's data; resolves undefined when the call failed or a later load started meanwhile
 * (its answer would be stale), so only the latest load renders.
 */
async function load(call) {
  const ticket = ++state.loads;
  const data = await guarded(call);
  return ticket === state.loads ? data : undefined;
}

/** Runs a call to the API; a lost session leads back to sign-in, other errors to the notice. */
async function guarded(call) {
  try {
    return await call();
  } catch (error) {
    if (error.status === 401) {
      signedOut();
    } else {
      notify(error.message);
    }
    return undefined;
  }
}

function signedIn(me) {
  state.me = me;
  byId("who-email").textContent = me.email;
  byId("who-role").textContent = me.role;
  ui.who.hidden = false;
  ui.tabs.hidden = false;
  for (const button of document.querySelectorAll("[data-admin-only]")) button.hidden = !isAdmin();
  route();
}

function signedOut() {
  state.me = null;
  ui.who.hidden = true;
  ui.tabs.hidden = true;
  notify("");
  showView("login-view");
  byId("login-email").focus();
}

async function login(event) {
  event.preventDefault();
  const submit = ui.loginForm.querySelector("button[type=submit]");
  submit.disabled = true;
  ui.loginError.hidden = true;
  try {
    const me = await staffApi.login(byId("login-email").value, byId("login-password").value);
    byId("login-password").value = "";
    signedIn(me);
  } catch (error) {
    ui.loginError.textContent =
      error.code === "bad_credentials" ? "Wrong email or password." : error.message;
    ui.loginError.hidden = false;
  } finally {
    submit.disabled = false;
  }
}

async function logout() {
  await guarded(() => staffApi.logout());
  signedOut();
}

function markTab(section) {
  for (const tab of ui.tabs.querySelectorAll("a")) {
    if (tab.dataset.section === section) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  }
}

/**
 * Shows the page the URL's hash names: #campaigns, #campaigns/<id>, #players, #players/<id>,
 * #images, #images/<id>, #models, #exports or #exports/<campaign id> (the form set to that
 * campaign).
 */
function route() {
  if (state.me === null) return;
  notify("");
  state.stopReplay();
  const [section, id] = window.location.hash.replace(/^#/, "").split("/");
  if (section === "players") {
    markTab("players");
    if (id) showPlayer(Number(id));
    else showPlayers();
  } else if (section === "images") {
    markTab("images");
    if (id) showImageSet(Number(id), 1);
    else showImages();
  } else if (section === "models") {
    markTab("models");
    showModels();
  } else if (section === "exports") {
    markTab("exports");
    showExports(id ? Number(id) : null);
  } else if (section === "campaigns" && id) {
    markTab("campaigns");
    showCampaign(Number(id));
  } else {
    markTab("campaigns");
    showCampaigns();
  }
}

async function showCampaigns() {
  showView("campaigns-view");
  const campaigns = await load(() => staffApi.campaigns());
  if (campaigns === undefined) return;
  state.campaigns = campaigns;
  renderCampaignTable(ui.campaignsBody, ui.campaignsEmpty, campaigns, isAdmin(), changeState);
}

const campaignActions = {
  get canWrite() {
    return isAdmin();
  },
  changeState: (campaign, newState) => changeState(campaign, newState),
  edit: (campaign) => openCampaignForm(campaign),
};

async function showCampaign(id) {
  const loaded = await load(() =>
    Promise.all([
      staffApi.campaign(id),
      staffApi.campaignStats(id),
      staffApi.campaignImages(id),
      staffApi.imageSets(),
      staffApi.models(),
    ]),
  );
  if (loaded === undefined) return;
  const [campaign, stats, images, imageSets, models] = loaded;
  const reliability = () => staffApi.campaignReliability(id);
  const unwinnable = () => staffApi.campaignUnwinnable(id);
  const pictures = { stats, images, reliability, unwinnable };
  renderCampaignDetail(ui.campaignView, campaign, pictures, campaignActions, { imageSets, models });
  showView("campaign-view");
}

async function changeState(campaign, newState) {
  if (newState === "completed") {
    const answer = await ask({
      title: `Complete ${campaign.name}?`,
      text: "Nobody can play a completed campaign again, and its settings are frozen.",
      confirm: "Complete it",
    });
    if (answer === null) return;
  }
  const changed = await guarded(() => staffApi.changeState(campaign.id, newState));
  if (changed !== undefined) route();
}

const FORM_TEXTS = {
  create: {
    title: "New campaign",
    note: "A new campaign starts as a draft: nobody plays it until you start it.",
    save: "Create campaign",
  },
  edit: {
    title: "Edit settings",
    note: "Changing a game setting of a started campaign makes a new version of it.",
    save: "Save changes",
  },
};

/**
 * Opens the campaign form: to edit `campaign` (in its page), or to create one (in the list, its
 * model taken from the newest campaign, its image set left to choose).
 */
async function openCampaignForm(campaign = null) {
  const form = ui.campaignForm;
  const texts = FORM_TEXTS[campaign ? "edit" : "create"];
  const choices = await guarded(() => Promise.all([staffApi.imageSets(), staffApi.models()]));
  if (choices === undefined) return;
  fillCampaignChoices(form, ...choices);
  form.reset();
  clearFormErrors(form, ui.campaignFormError);
  state.editing = campaign;
  state.slugEdited = campaign !== null;
  byId("campaign-form-title").textContent = texts.title;
  byId("campaign-form-note").textContent = texts.note;
  byId("campaign-save").textContent = texts.save;
  if (campaign) {
    fillForm(form, campaign);
    ui.campaignView.querySelector(".view-head").after(form);
  } else {
    const newest = state.campaigns.reduce((a, b) => (a && a.id > b.id ? a : b), null);
    // The model of the newest campaign; the image set is chosen on purpose (no demo default).
    if (newest) form.elements.model_id.value = String(newest.model_id);
    const imageSet = form.elements.image_set_id;
    imageSet.prepend(el("option", { value: "" }, "Choose an image set\u2026"));
    imageSet.value = "";
    byId("campaigns-table-wrap").before(form);
  }
  form.hidden = false;
  form.elements.name.focus();
}

async function saveCampaign(event) {
  event.preventDefault();
  const form = ui.campaignForm;
  const submit = form.querySelector("button[type=submit]");
  const editing = state.editing;
  submit.disabled = true;
  try {
    if (editing) {
      await staffApi.updateCampaign(editing.id, formChanges(form, editing));
    } else {
      await staffApi.createCampaign(formSettings(form));
    }
    form.hidden = true;
    await (editing ? showCampaign(editing.id) : showCampaigns());
  } catch (error) {
    if (error.status === 401) signedOut();
    else showFormErrors(form, ui.campaignFormError, error);
  } finally {
    submit.disabled = false;
  }
}

const playerActions = {
  get canWrite() {
    return isAdmin();
  },
  async exclude(player) {
    const reason = await ask({
      title: `Exclude ${player.display_name}?`,
      text: "Their data stays stored but every export leaves it out. You can reinstate them.",
      confirm: "Exclude",
      reason: true,
    });
    if (reason === null) return;
    if ((await guarded(() => staffApi.exclude(player.id, reason))) !== undefined) route();
  },
  async reinstate(player) {
    await guarded(() => staffApi.reinstate(player.id));
    route();
  },
  async resolveFlag(player, flag) {
    if ((await guarded(() => staffApi.resolveFlag(player.id, flag.kind))) !== undefined) route();
  },
  roundPoints: (round) => guarded(() => staffApi.roundPoints(round.id)),
};

async function showPlayers() {
  showView("players-view");
  const campaignId = Number(ui.playersCampaign.value) || null;
  const loaded = await load(() =>
    Promise.all([
      staffApi.players(state.playersPage, ui.flaggedOnly.checked, campaignId),
      staffApi.campaigns(),
    ]),
  );
  if (loaded === undefined) return;
  const [page, campaigns] = loaded;
  fillSelect(ui.playersCampaign, [
    ["", "all campaigns"],
    ...campaigns.map((campaign) => [campaign.id, campaign.name]),
  ]);
  const pages = Math.max(1, Math.ceil(page.total / page.per_page));
  const chosen = ui.playersCampaign.selectedOptions[0];
  ui.playersSummary.textContent = `${page.total} player${page.total === 1 ? "" : "s"}${
    ui.flaggedOnly.checked ? " with an open flag" : ""
  }${campaignId && chosen ? ` in ${chosen.textContent}` : ""}.`;
  ui.playersPage.textContent = `Page ${page.page} of ${pages}`;
  byId("players-prev").disabled = page.page <= 1;
  byId("players-next").disabled = page.page >= pages;
  renderPlayers(ui.playersBody, page.players, playerActions);
}

async function showPlayer(id) {
  const player = await load(() => staffApi.player(id));
  if (player === undefined) return;
  state.stopReplay = renderPlayerDetail(ui.playerView, player, playerActions);
  showView("player-view");
}

function turnPlayersPage(step) {
  state.playersPage = Math.max(1, state.playersPage + step);
  showPlayers();
}

async function refreshFlags() {
  const report = await guarded(() => staffApi.refreshFlags());
  if (report === undefined) return;
  await showPlayers();
  notify(
    `Flags recomputed for ${report.players} players: ` +
      `${report.raised} raised, ${report.cleared} cleared.`,
  );
}

async function showImages() {
  showView("images-view");
  const imageSets = await load(() => staffApi.imageSets());
  if (imageSets === undefined) return;
  renderImageSets(byId("image-sets-body"), byId("image-sets-empty"), imageSets);
}

async function showImageSet(id, page) {
  const images = await load(() => staffApi.imageSetPage(id, page, IMAGES_PER_PAGE));
  if (images === undefined) return;
  const toggleCatch = async (image, checked) => {
    await guarded(() => staffApi.setCatch(id, image.id, checked));
    await showImageSet(id, page);
  };
  renderImageSetPage(
    ui.imageSetView,
    images,
    (next) => showImageSet(id, next),
    isAdmin() ? toggleCatch : null,
  );
  showView("image-set-view");
}

/** Runs an import from one of the image forms; shows its report, or why it was refused. */
async function runImport(form, call) {
  const submit = form.querySelector("button[type=submit]");
  submit.disabled = true;
  submit.dataset.label = submit.textContent;
  submit.textContent = "Importing\u2026";
  ui.importError.hidden = true;
  ui.importReport.hidden = true;
  try {
    renderImportReport(ui.importReport, await call());
    form.reset();
    await showImages();
  } catch (error) {
    if (error.status === 401) {
      signedOut();
      return;
    }
    ui.importError.textContent = error.message;
    ui.importError.hidden = false;
  } finally {
    submit.disabled = false;
    submit.textContent = submit.dataset.label;
  }
}

function uploadZip(event) {
  event.preventDefault();
  const form = ui.uploadForm;
  if (!form.elements.file.files.length || !form.elements.set.value.trim()) {
    ui.importError.textContent = "Choose a zip file and name the image set.";
    ui.importError.hidden = false;
    return;
  }
  runImport(form, () => staffApi.uploadZip(new FormData(form)));
}

function importFolder(event) {
  event.preventDefault();
  const { path, set } = ui.folderForm.elements;
  runImport(ui.folderForm, () => staffApi.importFolder(path.value.trim(), set.value.trim()));
}

async function showModels() {
  showView("models-view");
  const loaded = await load(() =>
    Promise.all([staffApi.models(), staffApi.imageSets(), staffApi.campaigns()]),
  );
  if (loaded === undefined) return;
  const [models, imageSets, campaigns] = loaded;
  renderModels(byId("models-body"), models);
  const modelChoices = models.map((model) => [model.name, modelLabel(model)]);
  fillSelect(ui.accuracyForm.elements.model, modelChoices);
  fillSelect(ui.tryForm.elements.model, modelChoices);
  fillSelect(ui.alignmentRunForm.elements.model, modelChoices);
  fillSelect(ui.tryForm.elements.image_set, imageSets.map(imageSetChoice));
  await fillTryPhotos();
  fillSelect(ui.accuracyForm.elements.image_set, imageSets.map(imageSetChoice));
  fillSelect(ui.alignmentForm.elements.image_set, imageSets.map(imageSetChoice));
  fillSelect(
    ui.alignmentForm.elements.campaign,
    campaigns.map((campaign) => [campaign.id, campaign.name]),
  );
  await showAlignment(null);
  await alignmentJobs.poll();
}

function chosenCampaign() {
  return Number(ui.alignmentForm.elements.campaign.value) || null;
}

const runningAlignments = new Set(); // the alignment jobs last seen queued or running

/** The chosen campaign's alignment jobs; one done since last seen redraws the table. */
function showAlignmentJobs(jobs) {
  const parts = { body: byId("alignment-jobs-body"), empty: byId("alignment-jobs-empty") };
  renderAlignmentJobs(parts, jobs, cancelAlignment);
  const justDone = jobs.some((job) => job.state === "done" && runningAlignments.has(job.id));
  runningAlignments.clear();
  for (const job of jobs) if (ACTIVE_STATES.has(job.state)) runningAlignments.add(job.id);
  if (justDone) showAlignment(Number(ui.alignmentForm.elements.image_set.value) || null);
}

const alignmentJobs = new JobWatch(
  () => (chosenCampaign() ? guarded(() => staffApi.alignmentJobs(chosenCampaign())) : undefined),
  showAlignmentJobs,
  () => !byId("models-view").hidden,
);

async function cancelAlignment(job) {
  if ((await guarded(() => staffApi.cancelAlignment(job.id))) !== undefined) {
    await alignmentJobs.poll();
  }
}

async function startAlignment(event) {
  event.preventDefault();
  const form = ui.alignmentRunForm;
  const submit = form.querySelector("button[type=submit]");
  const campaignId = chosenCampaign();
  if (campaignId === null) return;
  submit.disabled = true;
  ui.alignmentRunError.hidden = true;
  try {
    await staffApi.startAlignment({
      campaign_id: campaignId,
      model_name: form.elements.model.value,
      splits: Number(form.elements.splits.value),
    });
    await alignmentJobs.poll();
  } catch (error) {
    if (error.status === 401) {
      signedOut();
      return;
    }
    ui.alignmentRunError.textContent = error.message;
    ui.alignmentRunError.hidden = false;
  } finally {
    submit.disabled = false;
  }
}

/** The chosen campaign's alignment table, top-1 on the chosen set (null: the server's pick). */
async function showAlignment(imageSetId) {
  const { campaign, image_set: imageSet } = ui.alignmentForm.elements;
  if (!campaign.value) return;
  const table = await guarded(() => staffApi.alignment(Number(campaign.value), imageSetId));
  if (table === undefined) return;
  if (table.accuracy_set === null) imageSet.value = "";
  else chooseOption(imageSet, table.accuracy_set.id, table.accuracy_set.name);
  renderAlignment(
    { body: byId("alignment-body"), empty: byId("alignment-empty"), plot: byId("alignment-plot") },
    table,
  );
}

async function computeAccuracy(event) {
  event.preventDefault();
  const { model, image_set: imageSet } = ui.accuracyForm.elements;
  const submit = ui.accuracyForm.querySelector("button[type=submit]");
  const result = byId("accuracy-result");
  submit.disabled = true;
  result.textContent = "Computing: every image of the set goes through the DNN\u2026";
  result.hidden = false;
  const evaluation = await guarded(() =>
    staffApi.computeAccuracy(model.value, Number(imageSet.value)),
  );
  submit.disabled = false;
  if (evaluation === undefined) {
    result.hidden = true;
    return;
  }
  await showModels();
  renderEvaluation(result, evaluation);
}

// The photos "Try it" offers: the first of the chosen set, by class name and file name.
const TRY_PHOTOS = 200;

async function fillTryPhotos() {
  const { image_set: imageSet, image_id: imageId } = ui.tryForm.elements;
  if (!imageSet.value) return;
  const page = await guarded(() => staffApi.imageSetPage(Number(imageSet.value), 1, TRY_PHOTOS));
  if (page === undefined) return;
  fillSelect(
    imageId,
    page.images.map((image) => [image.id, `${image.label.name} \u00b7 ${image.original_name}`]),
  );
}

async function tryModel(event) {
  event.preventDefault();
  const { model, image_id: imageId } = ui.tryForm.elements;
  const tried = await guarded(() => staffApi.tryModel(model.value, Number(imageId.value)));
  if (tried !== undefined) renderTry(byId("try-result"), tried);
}

async function showExports(campaignId) {
  showView("exports-view");
  const loaded = await load(() =>
    Promise.all([staffApi.campaigns(), staffApi.imageSets(), staffApi.exports()]),
  );
  if (loaded === undefined) return;
  const [campaigns, imageSets, jobs] = loaded;
  state.campaigns = campaigns;
  fillExportChoices(ui.exportForm, campaigns, imageSets, campaignId);
  exportJobs.show(jobs);
  await previewExport();
}

/** Shows what the form's export would hold; only the answer to the latest ask is shown. */
async function previewExport() {
  clearTimeout(state.exportPreview.timer);
  const asked = ++state.exportPreview.asked;
  const box = byId("export-preview");
  box.setAttribute("aria-busy", "true");
  let preview = null;
  let error = null;
  try {
    preview = await staffApi.previewExport(exportRequest(ui.exportForm));
  } catch (failure) {
    if (failure.status === 401) {
      signedOut();
      return;
    }
    error = failure.message;
  }
  if (asked !== state.exportPreview.asked) return;
  box.removeAttribute("aria-busy");
  renderExportPreview(box, preview, error);
  if (preview !== null && ui.exportForm.elements.min_rounds.value.trim() === "") {
    byId("ef-min-rounds-default").textContent = `: ${preview.map_settings.min_rounds}`;
  }
}

/** Previews the export once the form has been still for a moment. */
function schedulePreview() {
  clearTimeout(state.exportPreview.timer);
  state.exportPreview.timer = setTimeout(previewExport, 300);
}

const exportActions = {
  async cancel(job) {
    if ((await guarded(() => staffApi.cancelExport(job.id))) !== undefined) await pollExports();
  },
};

// The export jobs, shown again every second while one may still change.
const exportJobs = new JobWatch(
  () => guarded(() => staffApi.exports()),
  (jobs) => renderExports(byId("exports-body"), byId("exports-empty"), jobs, exportActions),
  () => !ui.exportsView.hidden,
);

const pollExports = () => exportJobs.poll();

async function startExport(event) {
  event.preventDefault();
  const form = ui.exportForm;
  const submit = form.querySelector("button[type=submit]");
  submit.disabled = true;
  try {
    await staffApi.startExport(exportRequest(form));
    clearFormErrors(form, ui.exportFormError);
    await pollExports();
  } catch (error) {
    if (error.status === 401) signedOut();
    else showFormErrors(form, ui.exportFormError, error);
  } finally {
    submit.disabled = false;
  }
}

function bindEvents() {
  ui.loginForm.addEventListener("submit", login);
  byId("logout-button").addEventListener("click", logout);
  window.addEventListener("hashchange", route);
  byId("campaign-new").addEventListener("click", () => openCampaignForm());
  byId("campaign-cancel").addEventListener("click", () => {
    ui.campaignForm.hidden = true;
  });
  ui.campaignForm.addEventListener("submit", saveCampaign);
  ui.campaignForm.elements.name.addEventListener("input", (event) => {
    if (!state.slugEdited) ui.campaignForm.elements.slug.value = slugify(event.target.value);
  });
  ui.campaignForm.elements.slug.addEventListener("input", () => {
    state.slugEdited = true;
  });
  byId("ask-form").addEventListener("submit", onAskSubmit);
  for (const filter of [ui.flaggedOnly, ui.playersCampaign]) {
    filter.addEventListener("change", () => {
      state.playersPage = 1;
      showPlayers();
    });
  }
  byId("players-prev").addEventListener("click", () => turnPlayersPage(-1));
  byId("players-next").addEventListener("click", () => turnPlayersPage(1));
  byId("refresh-flags").addEventListener("click", refreshFlags);
  ui.uploadForm.addEventListener("submit", uploadZip);
  ui.folderForm.addEventListener("submit", importFolder);
  ui.accuracyForm.addEventListener("submit", computeAccuracy);
  ui.tryForm.addEventListener("submit", tryModel);
  ui.tryForm.elements.image_set.addEventListener("change", fillTryPhotos);
  ui.alignmentForm.elements.campaign.addEventListener("change", () => {
    showAlignment(null);
    alignmentJobs.poll();
  });
  ui.alignmentRunForm.addEventListener("submit", startAlignment);
  ui.alignmentForm.elements.image_set.addEventListener("change", (event) =>
    showAlignment(Number(event.target.value)),
  );
  ui.exportForm.addEventListener("submit", startExport);
  ui.exportForm.addEventListener("input", schedulePreview);
  ui.exportForm.addEventListener("change", schedulePreview);
}

async function start() {
  bindEvents();
  try {
    signedIn(await staffApi.me());
  } catch (error) {
    if (error.status === 401) signedOut();
    else notify(`Cannot reach the server: ${error.message}`);
  }
}

start();
