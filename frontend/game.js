// The ClickMe game page: consent, rounds of painting, live DNN guesses, scores.
// The client only reports what the player painted; the server decides time, outcome and score.

import { api } from "./api.js";
import { farEnough, RevealCanvas } from "./brush.js";
import { PointSender } from "./sender.js";
import { StrokesChannel } from "./strokes.js";

const FINISH_RETRY_MS = 200;
// The DNN is saturated: no new round for now (503 scorer_busy); asked again after 1 to 2 s.
const BUSY_RETRY_MS = 1000;
// A round made ahead (while the player reads the last result) is used only if its photo can
// still go on screen this long before the server's start bound; else a fresh one is asked for.
const START_MARGIN_MS = 2000;
const NARROW_LAYOUT_PX = 900;
const MAX_UPSCALE = 2.5;
const POINTER_TYPES = new Set(["mouse", "touch", "pen"]);
const URL_PARAMS = new URLSearchParams(window.location.search);
// The campaign to play (its public slug, `/?campaign=<slug>`); none: the server's default.
const CAMPAIGN = URL_PARAMS.get("campaign");
// Recruitment ids a study's URL carries (Prolific, MTurk): sent along with the consent.
const RECRUITMENT_IDS = [
  "PROLIFIC_PID",
  "STUDY_ID",
  "SESSION_ID",
  "workerId",
  "assignmentId",
  "hitId",
];
const RECRUITMENT = Object.fromEntries(
  RECRUITMENT_IDS.filter((name) => URL_PARAMS.has(name)).map((name) => [
    name,
    URL_PARAMS.get(name),
  ]),
);
const MTURK_PREVIEW = RECRUITMENT.assignmentId === "ASSIGNMENT_ID_NOT_AVAILABLE";
// Who the URL says the participant is; null: whoever holds the player cookie.
const PARTICIPANT = RECRUITMENT.PROLIFIC_PID
  ? `prolific:${RECRUITMENT.PROLIFIC_PID}`
  : RECRUITMENT.workerId
    ? `mturk:${RECRUITMENT.workerId}`
    : null;
const PARTICIPANT_KEY = "clickme-participant";
// Starting a round answers one of these once there is nothing more for this player to play.
const END_CODES = new Set(["no_images_left", "player_done", "campaign_complete"]);
// A study link to a campaign that is not active: what the page says, by the server's code.
const CLOSED = new Map([
  [
    "campaign_not_started",
    [
      "This study has not started yet",
      "The researchers have not opened it yet. Please come back later, or check the link you were given.",
    ],
  ],
  [
    "campaign_paused",
    ["This study is paused", "The researchers have paused it for a while. Please try again later."],
  ],
  [
    "campaign_finished",
    [
      "This study is finished. Thank you!",
      "It has collected all the answers it needs. Thank you for your interest.",
    ],
  ],
]);
const REDIRECT_DELAY_MS = 5000;

const byId = (id) => document.getElementById(id);

// Every round's batches of points: over the strokes' socket, or over HTTP where it cannot open.
const strokes = new StrokesChannel();

const ui = {
  screens: [
    "loading-screen",
    "consent-screen",
    "preview-screen",
    "game-screen",
    "complete-screen",
    "done-screen",
    "cookie-screen",
    "closed-screen",
    "error-screen",
  ],
  game: byId("game-screen"),
  canvas: byId("game-canvas"),
  stage: byId("stage"),
  className: byId("class-name"),
  timer: byId("round-timer"),
  timerFill: byId("timer-fill"),
  busy: byId("busy-notice"),
  repeat: byId("repeat-notice"),
  controls: byId("controls"),
  skip: byId("skip-button"),
  result: byId("round-result"),
  resultTitle: byId("result-title"),
  resultDetail: byId("result-detail"),
  next: byId("next-button"),
  roundError: byId("round-error"),
  guesses: byId("dnn-guesses"),
  guessesEmpty: byId("guesses-empty"),
  leaderboard: byId("leaderboard"),
  leaderboardEmpty: byId("leaderboard-empty"),
  playerBox: byId("player-box"),
  playerName: byId("player-name"),
  playerScore: byId("player-score"),
  doneScore: byId("done-score"),
  nameView: byId("name-view"),
  renameForm: byId("rename-form"),
  renameInput: byId("rename-input"),
  renameError: byId("rename-error"),
};

// The how-to, written once in the page, goes on each screen that shows it.
for (const slot of document.querySelectorAll("[data-how-to]")) {
  slot.replaceWith(byId("how-to").content.cloneNode(true));
}

function showScreen(id) {
  for (const screen of ui.screens) byId(screen).hidden = screen !== id;
}

function showError(element, message) {
  element.textContent = message;
  element.hidden = !message;
}

function wait(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function loadPhoto(url) {
  const photo = new Image();
  photo.src = url;
  return photo.decode().then(() => photo);
}

/** Shows a campaign's own text (as text: it is never read as HTML); hidden when empty. */
function showText(element, text) {
  element.textContent = text;
  element.hidden = !text;
}

function renderCampaign(campaign) {
  showText(byId("campaign-consent"), campaign.consent_text);
  showText(byId("campaign-instructions"), campaign.instructions_text);
  showText(byId("preview-instructions"), campaign.instructions_text);
  if (campaign.sample_image_url) {
    const sample = byId("preview-image");
    sample.src = campaign.sample_image_url;
    sample.hidden = false;
  }
}

/** Whether the player cookie (if any) is the participant the URL names, who consented here. */
function isKnownParticipant() {
  if (PARTICIPANT === null) return true;
  try {
    return localStorage.getItem(PARTICIPANT_KEY) === PARTICIPANT;
  } catch {
    return false; // no storage: ask for consent; the server recognises a returning participant
  }
}

function rememberParticipant() {
  if (PARTICIPANT === null) return;
  try {
    localStorage.setItem(PARTICIPANT_KEY, PARTICIPANT);
  } catch {
    // No storage: the consent screen shows again on the next visit.
  }
}

/** The end of a recruited study: the code, and the way back to the recruiter (if it has one). */
function showCompletion(completion) {
  byId("completion-message").textContent = completion.code
    ? "Thank you \u2014 your completion code is"
    : "Thank you \u2014 you have played every image of this study.";
  showText(byId("completion-code"), completion.code || "");
  const link = byId("completion-link");
  link.hidden = !completion.url;
  byId("completion-redirect").hidden = !completion.url;
  byId("completion-paste").hidden = !completion.code || Boolean(completion.url);
  showScreen("complete-screen");
  if (completion.url) {
    link.href = completion.url;
    setTimeout(() => window.location.assign(completion.url), REDIRECT_DELAY_MS);
  }
}

/**
 * The server set the player cookie and the next request came back without it: why, and what to
 * do. Off HTTPS the browser drops the production cookie (it is `Secure`); otherwise it refused it.
 */
function showCookieTrouble() {
  const link = byId("cookie-link");
  if (window.isSecureContext) {
    byId("cookie-reason").textContent =
      "Your browser refused the cookie that keeps you as the same anonymous player, so the " +
      "game cannot start.";
    byId("cookie-advice").textContent =
      "Allow cookies for this site (private windows, blockers and, when the game is shown " +
      "inside another site, blocked third-party cookies can refuse it), then reload the page, " +
      "or open the game in a tab of its own.";
    link.href = window.location.href;
    link.textContent = "Open the game in a new tab";
  } else {
    const secure = new URL(window.location.href);
    secure.protocol = "https:";
    byId("cookie-reason").textContent =
      "This page was opened over plain HTTP, and your browser keeps the cookie that remembers " +
      "you as the same anonymous player only over HTTPS.";
    byId("cookie-advice").textContent = "Open the game at its https:// address:";
    link.href = secure.href;
    link.textContent = secure.href;
  }
  ui.playerBox.hidden = true; // the player just made cannot come back
  showScreen("cookie-screen");
}

/** What happened, in words: where the DNN ranked the class, or what it guessed instead. */
function resultDetail(outcome, className, guesses) {
  const percent = (guess) =>
    guess.probability < 0.005 ? "under 1%" : `${Math.round(guess.probability * 100)}%`;
  if (outcome === "correct") {
    const rank = guesses.findIndex((guess) => guess.name === className);
    if (rank < 0) return `The DNN saw the ${className} thanks to you.`;
    const place = rank === 0 ? "its first guess" : `guess #${rank + 1}`;
    return `The DNN saw the ${className} thanks to you: ${place}, ${percent(guesses[rank])} sure.`;
  }
  if (outcome === "skip") return "No points this time: on to the next photo.";
  if (outcome === "abandoned") return "The photo took too long to show: on to the next one.";
  if (!guesses.length) return "Time ran out before the DNN saw any of the photo.";
  const top = guesses.slice(0, 3).map((guess) => `${guess.name} (${percent(guess)})`);
  return `The DNN did not see the ${className}: it guessed ${top.join(", ")}.`;
}

const RESULT_TITLES = {
  correct: (score) => `Correct! +${score}`,
  timeout: () => "Time's up",
  skip: () => "Skipped",
  abandoned: () => "Too late to start",
};

/** One image to paint: pointer input, batches of points, the timer, and how it ends. */
class Round {
  constructor(data, photo, reveal, onEnd) {
    this.data = data;
    this.reveal = reveal;
    this.onEnd = onEnd;
    this.pointer = null;
    this.lastPoint = null;
    this.lastT = 0;
    this.ended = false;
    this.lastGuesses = []; // the DNN's latest top-k, for the result's words
    this.acceptsInput = true;
    this.reveal.setPhoto(photo, data.image.width, data.image.height, data.brush);
    this.sender = new PointSender((batch) => strokes.send(data.round_id, batch), {
      onReveal: (answer) => this.onReveal(answer),
      onBusy: () => {
        ui.busy.hidden = false;
      },
      onFailure: () => this.settleFromServer(),
    });
  }

  /** Called once the photo is on screen: from now on the clock runs, here and on the server. */
  begin() {
    this.shownAt = performance.now();
    this.tick();
    this.announceShown();
  }

  /** Tells the server the photo is on screen (its clock starts when this arrives, so the two
   * timers agree within the round trip); sent again while the network fails. */
  async announceShown() {
    while (!this.ended) {
      try {
        await api.photoShown(this.data.round_id);
        return;
      } catch (error) {
        if (!error.retryable) {
          await this.settleFromServer();
          return;
        }
        await wait(FINISH_RETRY_MS);
      }
    }
  }

  elapsedAt(timeStamp) {
    return timeStamp - this.shownAt;
  }

  tick() {
    if (this.ended) return;
    this.reveal.render();
    const elapsed = this.elapsedAt(performance.now());
    const left = Math.max(0, 1 - elapsed / this.data.time_limit_ms);
    ui.timerFill.style.transform = `scaleX(${left})`;
    ui.timer.setAttribute("aria-valuenow", String(Math.round(left * 100)));
    ui.timer.classList.toggle("is-low", left < 0.3);
    if (left === 0 && this.acceptsInput) this.timeUp();
    requestAnimationFrame(() => this.tick());
  }

  pointerDown(event) {
    if (!this.acceptsInput || this.pointer !== null) return;
    if (event.pointerType === "mouse" && event.button !== 0) return;
    event.preventDefault();
    this.pointer = event.pointerId;
    ui.canvas.setPointerCapture(event.pointerId);
    this.paint(event);
  }

  pointerMove(event) {
    if (event.pointerId !== this.pointer) return;
    event.preventDefault();
    const samples = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    for (const sample of samples.length ? samples : [event]) this.paint(sample);
  }

  pointerUp(event) {
    if (event.pointerId === this.pointer) this.pointer = null;
  }

  /** Keeps the sample if it is on the photo, in time, and not a near-duplicate. */
  paint(sample) {
    const now = this.elapsedAt(performance.now());
    if (!this.acceptsInput || now >= this.data.time_limit_ms) return;
    const position = this.reveal.toNative(sample.clientX, sample.clientY);
    if (position === null || !farEnough(this.lastPoint, position[0], position[1])) return;
    // The sample's own time (coalesced samples are older than the event), kept within the round.
    const sampled = Math.min(now, Math.max(0, this.elapsedAt(sample.timeStamp)));
    const t = Math.max(this.lastT, Math.round(sampled));
    this.lastPoint = position;
    this.lastT = t;
    this.reveal.addPoint(position[0], position[1]);
    const pointerType = POINTER_TYPES.has(sample.pointerType) ? sample.pointerType : null;
    this.sender.add([position[0], position[1], t], pointerType);
  }

  onReveal(answer) {
    ui.busy.hidden = true;
    this.lastGuesses = answer.guesses;
    renderGuesses(answer.guesses, this.data.class_name);
    if (answer.state !== "playing") {
      this.end({ outcome: answer.state, score: answer.score, class_name: this.data.class_name });
    }
  }

  stopInput() {
    this.acceptsInput = false;
    if (this.pointer !== null && ui.canvas.hasPointerCapture(this.pointer)) {
      ui.canvas.releasePointerCapture(this.pointer);
    }
    this.pointer = null;
  }

  /** The clock ran out here: deliver what is painted, then ask the server to close the round. */
  async timeUp() {
    this.stopInput();
    await this.sender.flush();
    while (!this.ended) {
      try {
        this.end(await api.finish(this.data.round_id));
      } catch (error) {
        if (error.code !== "round_running" && !error.retryable) {
          await this.settleFromServer();
          return;
        }
        await wait(FINISH_RETRY_MS);
      }
    }
  }

  async skip() {
    if (this.ended || !this.acceptsInput) return;
    this.stopInput();
    this.sender.stop();
    while (!this.ended) {
      try {
        this.end(await api.skip(this.data.round_id));
      } catch (error) {
        if (!error.retryable) {
          await this.settleFromServer();
          return;
        }
        await wait(FINISH_RETRY_MS);
      }
    }
  }

  /** The server refused something (the round is likely over): take its word for the outcome. */
  async settleFromServer() {
    try {
      const result = await api.round(this.data.round_id);
      if (result.outcome) this.end(result);
    } catch (error) {
      showError(ui.roundError, `Lost touch with the server: ${error.message}`);
    }
  }

  end(result) {
    if (this.ended) return;
    this.ended = true;
    this.stopInput();
    this.sender.stop();
    this.reveal.render();
    this.onEnd(result);
  }

  /** Redraws at a new canvas size (window resized). */
  resize(cssWidth, cssHeight, pixelRatio) {
    this.reveal.resize(cssWidth, cssHeight, pixelRatio);
    this.reveal.render();
  }
}

function renderGuesses(guesses, className) {
  ui.guessesEmpty.hidden = guesses.length > 0;
  const rows = guesses.map((guess) => {
    const row = document.createElement("li");
    const isTarget = guess.name === className;
    row.className = isTarget ? "guess is-target" : "guess";
    const name = document.createElement("span");
    name.className = "guess-name";
    name.textContent = guess.name;
    const percent = document.createElement("span");
    percent.className = "guess-percent";
    percent.textContent = `${Math.round(guess.probability * 100)}%`;
    const bar = document.createElement("span");
    bar.className = "guess-bar";
    const fill = document.createElement("span");
    fill.style.width = `${Math.max(0, Math.min(1, guess.probability)) * 100}%`;
    bar.append(fill);
    row.append(name, percent, bar);
    return row;
  });
  ui.guesses.replaceChildren(...rows);
}

function renderPlayer(player) {
  ui.playerBox.hidden = false;
  ui.playerName.textContent = player.display_name;
  ui.playerScore.textContent = String(player.total_score);
  ui.doneScore.textContent = String(player.total_score);
}

function leaderboardRow(entry, isMe) {
  const row = document.createElement("li");
  row.className = isMe ? "is-me" : "";
  const rank = document.createElement("span");
  rank.className = "rank";
  rank.textContent = `#${entry.rank}`;
  const name = document.createElement("span");
  name.className = "name";
  name.textContent = isMe ? `${entry.display_name} (you)` : entry.display_name;
  const score = document.createElement("span");
  score.className = "score";
  score.textContent = String(entry.score);
  row.append(rank, name, score);
  return row;
}

function renderLeaderboard(board) {
  const me = board.me;
  const isMe = (entry) => entry.is_me;
  const rows = board.top.map((entry) => leaderboardRow(entry, isMe(entry)));
  if (me && !board.top.some(isMe)) {
    const gap = document.createElement("li");
    gap.className = "gap";
    gap.setAttribute("aria-hidden", "true");
    gap.textContent = "\u22ef";
    rows.push(gap, leaderboardRow(me, true));
  }
  ui.leaderboard.replaceChildren(...rows);
  ui.leaderboardEmpty.hidden = rows.length > 0;
}

/** The whole page: which screen shows, the player, and one round after another. */
class Game {
  constructor() {
    this.reveal = new RevealCanvas(ui.canvas);
    this.round = null;
    this.upcoming = null;
    this.player = null;
    this.cookieSet = false; // the server just set the player cookie (consent accepted)
    this.bindEvents();
  }

  bindEvents() {
    byId("consent-accept").addEventListener("click", () => this.acceptConsent());
    byId("error-retry").addEventListener("click", () => this.start());
    ui.skip.addEventListener("click", () => this.round && this.round.skip());
    ui.next.addEventListener("click", () => this.nextRound());
    byId("rename-button").addEventListener("click", () => this.openRename());
    byId("rename-cancel").addEventListener("click", () => this.closeRename());
    ui.renameForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.rename(ui.renameInput.value.trim());
    });
    const canvas = ui.canvas;
    canvas.addEventListener("pointerdown", (event) => this.round && this.round.pointerDown(event));
    canvas.addEventListener("pointermove", (event) => this.round && this.round.pointerMove(event));
    for (const type of ["pointerup", "pointercancel", "lostpointercapture"]) {
      canvas.addEventListener(type, (event) => this.round && this.round.pointerUp(event));
    }
    canvas.addEventListener("contextmenu", (event) => event.preventDefault());
    let resizeTimer;
    window.addEventListener("resize", () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => this.fitCanvas(), 100);
    });
  }

  async start() {
    showScreen("loading-screen");
    try {
      if (CAMPAIGN) renderCampaign(await api.campaign(CAMPAIGN));
      if (MTURK_PREVIEW) {
        showScreen("preview-screen"); // nobody plays (or is created) before accepting the HIT
        return;
      }
      if (!isKnownParticipant()) {
        showScreen("consent-screen");
        return;
      }
      this.setPlayer(await api.me());
    } catch (error) {
      if (error.status === 401) {
        showScreen("consent-screen");
        return;
      }
      this.fail(error);
      return;
    }
    await this.nextRound();
  }

  fail(error) {
    if (CLOSED.has(error.code)) {
      const [title, message] = CLOSED.get(error.code);
      byId("closed-title").textContent = title;
      byId("closed-message").textContent = message;
      showScreen("closed-screen");
      return;
    }
    byId("error-message").textContent = error.message;
    showScreen("error-screen");
  }

  setPlayer(player) {
    this.player = player;
    renderPlayer(player);
  }

  async acceptConsent() {
    const button = byId("consent-accept");
    button.disabled = true;
    try {
      this.setPlayer(await api.createPlayer(RECRUITMENT));
      this.cookieSet = true;
      rememberParticipant();
      await this.nextRound();
    } catch (error) {
      showError(byId("consent-error"), error.message);
    } finally {
      button.disabled = false;
    }
  }

  /** Asks for a round and loads its photo; the server's clock waits until the photo shows. */
  async prepareRound() {
    const data = await api.startRound(window.innerWidth, window.innerHeight, CAMPAIGN);
    this.cookieSet = false; // it came back: a later no_player is a forgotten player
    strokes.warm(); // the socket opens while the photo loads
    const startBy = performance.now() + data.start_within_ms - START_MARGIN_MS;
    const photo = await loadPhoto(data.image.url);
    return { data, photo, startBy };
  }

  /** Makes the next round and loads its photo while the player reads the result. */
  prepareNextRound() {
    this.upcoming = this.prepareRound();
    this.upcoming.catch(() => {}); // its error is handled when the player asks for it
  }

  async nextRound() {
    ui.next.disabled = true;
    showError(ui.roundError, "");
    let next;
    try {
      const upcoming = this.upcoming;
      this.upcoming = null;
      next = upcoming ? await upcoming : null;
      if (next === null || performance.now() > next.startBy) next = await this.prepareRound();
    } catch (error) {
      if (error.code === "scorer_busy") {
        showError(ui.roundError, error.message);
        await wait(BUSY_RETRY_MS * (1 + Math.random())); // players' retries spread out
        return this.nextRound();
      }
      ui.next.disabled = false;
      if (END_CODES.has(error.code)) {
        await this.showEnd();
      } else if (error.code === "no_player" && this.cookieSet) {
        showCookieTrouble();
      } else if (error.status === 401) {
        showScreen("consent-screen");
      } else if (this.round === null || CLOSED.has(error.code)) {
        this.fail(error);
      } else {
        showError(ui.roundError, `Could not start a new image: ${error.message}`);
      }
      return;
    }
    this.showRound(next.data, next.photo);
  }

  /** Nothing more to play: the completion code where the campaign gives one, else a thank-you. */
  async showEnd() {
    if (CAMPAIGN) {
      try {
        showCompletion(await api.completion(CAMPAIGN));
        return;
      } catch (error) {
        if (error.status !== 409) {
          this.fail(error);
          return;
        }
        // 409: the campaign gives no code, or this player has not played its images.
      }
    }
    showScreen("done-screen");
  }

  showRound(data, photo) {
    showScreen("game-screen");
    ui.game.dataset.state = "playing";
    ui.className.textContent = data.class_label;
    ui.repeat.hidden = !data.repeat;
    ui.result.hidden = true;
    ui.controls.hidden = false;
    ui.busy.hidden = true;
    ui.next.disabled = false;
    renderGuesses([], data.class_name);
    this.round = new Round(data, photo, this.reveal, (result) => this.showResult(result));
    this.fitCanvas();
    this.refreshLeaderboard();
    this.round.begin();
  }

  /** Sizes the canvas to the photo's aspect within the room the layout leaves. */
  fitCanvas() {
    if (!this.round) return;
    const { width, height } = this.round.data.image;
    const narrow = window.innerWidth < NARROW_LAYOUT_PX;
    const stageTop = ui.stage.getBoundingClientRect().top + window.scrollY;
    const reserved = narrow ? 250 : 96;
    const maxHeight = Math.max(160, window.innerHeight - stageTop - reserved);
    const maxWidth = ui.stage.clientWidth;
    const scale = Math.min(maxWidth / width, maxHeight / height, MAX_UPSCALE);
    const cssWidth = Math.floor(width * scale);
    const cssHeight = Math.floor(height * scale);
    this.round.resize(cssWidth, cssHeight, window.devicePixelRatio || 1);
  }

  showResult(result) {
    ui.game.dataset.state = "over";
    ui.resultTitle.textContent = RESULT_TITLES[result.outcome](result.score);
    ui.result.dataset.outcome = result.outcome;
    ui.resultDetail.textContent = resultDetail(
      result.outcome,
      result.class_name,
      this.round.lastGuesses,
    );
    ui.controls.hidden = true;
    ui.busy.hidden = true;
    ui.result.hidden = false;
    ui.next.focus({ preventScroll: true });
    this.prepareNextRound();
    this.refreshPlayer();
    this.refreshLeaderboard();
  }

  async refreshPlayer() {
    try {
      this.setPlayer(await api.me());
    } catch {
      // The score shown stays the last known one; the next round refreshes it again.
    }
  }

  async refreshLeaderboard() {
    try {
      renderLeaderboard(await api.leaderboard(CAMPAIGN));
    } catch {
      // The leaderboard is a nicety: keep the last one shown.
    }
  }

  openRename() {
    ui.renameInput.value = this.player ? this.player.display_name : "";
    ui.nameView.hidden = true;
    ui.renameForm.hidden = false;
    ui.renameInput.focus();
    ui.renameInput.select();
  }

  closeRename() {
    ui.renameForm.hidden = true;
    ui.nameView.hidden = false;
    showError(ui.renameError, "");
  }

  async rename(displayName) {
    if (!displayName) return;
    try {
      this.setPlayer(await api.rename(displayName));
      this.closeRename();
      this.refreshLeaderboard();
    } catch (error) {
      showError(ui.renameError, `That name didn't work: ${error.message}`);
    }
  }
}

new Game().start();
