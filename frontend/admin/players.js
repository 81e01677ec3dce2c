// Players: recruitment, quality measures, flags and exclusion, one row each; and a player's
// page with their rounds and a replay of a round's strokes.

import { DASH, dateTime, decimal, el, percent, plural, seconds } from "./dom.js";
import { RoundReplay } from "./replay.js";

function recruitment(player) {
  if (!player.source) return el("span", { class: "muted" }, "direct");
  return el(
    "div",
    {},
    el("span", { class: "badge" }, player.source),
    player.external_id ? el("div", { class: "small mono" }, player.external_id) : null,
  );
}

function catchTrials(measures) {
  if (!measures.catch_rounds) return el("span", { class: "muted" }, DASH);
  return `${percent(measures.catch_accuracy)} of ${measures.catch_rounds}`;
}

function flagItem(player, flag, actions) {
  return el(
    "li",
    { class: flag.resolved ? "flag resolved" : "flag", title: dateTime(flag.created_at) },
    el("span", { class: "flag-kind" }, flag.kind),
    el("span", { class: "flag-reason" }, flag.reason),
    actions.canWrite && !flag.resolved
      ? el(
          "button",
          {
            type: "button",
            class: "small ghost",
            title: "Mark as reviewed",
            onclick: () => actions.resolveFlag(player, flag),
          },
          "Resolve",
        )
      : null,
  );
}

function flagsCell(player, actions) {
  if (!player.flags.length) return el("td", { class: "muted" }, "none");
  const items = player.flags.map((flag) => flagItem(player, flag, actions));
  return el("td", {}, el("ul", { class: "flags" }, items));
}

function status(player, actions) {
  const { exclusion } = player;
  if (exclusion) {
    return el(
      "div",
      { class: "status" },
      el("span", { class: "badge state-completed" }, "excluded"),
      el("div", { class: "small" }, exclusion.reason),
      actions.canWrite
        ? el(
            "button",
            { type: "button", class: "small ghost", onclick: () => actions.reinstate(player) },
            "Reinstate",
          )
        : null,
    );
  }
  return el(
    "div",
    { class: "status" },
    el("span", { class: "badge state-active" }, "included"),
    actions.canWrite
      ? el(
          "button",
          {
            type: "button",
            class: "small ghost danger",
            testid: `player-exclude-${player.id}`,
            onclick: () => actions.exclude(player),
          },
          "Exclude",
        )
      : null,
  );
}

// The quality measures, in the table's column order: [label, format].
const MEASURES = [
  ["Rounds", (m) => String(m.rounds)],
  ["Success", (m) => percent(m.success_rate)],
  ["Revealed", (m) => percent(m.mean_revealed)],
  ["Speed px/s", (m) => decimal(m.speed_px_s, 0)],
  ["First point", (m) => seconds(m.first_point_ms)],
  ["Photo shown", (m) => seconds(m.display_ms)],
  ["Timing CV", (m) => decimal(m.interval_cv, 2)],
  ["Catch", catchTrials],
  ["Consensus", (m) => decimal(m.consensus_distance, 2)],
];

function playerRow(player, actions) {
  return el(
    "tr",
    { "data-player": player.id, class: player.exclusion ? "is-excluded" : null },
    el(
      "td",
      {},
      el("a", { class: "strong", href: `#players/${player.id}` }, player.display_name),
      el("div", { class: "muted small" }, `#${player.id} \u00b7 ${dateTime(player.created_at)}`),
    ),
    el("td", {}, recruitment(player)),
    MEASURES.map(([, format]) => el("td", { class: "num" }, format(player.measures))),
    flagsCell(player, actions),
    el("td", {}, status(player, actions)),
  );
}

/** Fills the players table; `actions`: {canWrite, exclude, reinstate, resolveFlag}. */
export function renderPlayers(body, players, actions) {
  if (!players.length) {
    const cell = el("td", { colspan: 13, class: "muted empty" }, "No player here.");
    body.replaceChildren(el("tr", {}, cell));
    return;
  }
  body.replaceChildren(...players.map((player) => playerRow(player, actions)));
}

function measuresList(measures) {
  return el(
    "dl",
    { class: "stats", testid: "player-measures" },
    MEASURES.map(([label, format]) =>
      el(
        "div",
        { class: "stat" },
        el("dt", { class: "stat-label" }, label),
        el("dd", { class: "stat-value" }, format(measures)),
      ),
    ),
  );
}

const OUTCOME_BADGES = { correct: "state-completed", timeout: "state-active" };

function roundRow(round, onReplay) {
  return el(
    "tr",
    { "data-round": round.id },
    el(
      "td",
      { class: "round-photo" },
      el("img", { src: `/api/images/${round.image_id}/file`, alt: "", loading: "lazy" }),
      el("span", {}, round.class_name),
    ),
    el("td", {}, round.campaign_name),
    el(
      "td",
      {},
      round.outcome
        ? el("span", { class: `badge ${OUTCOME_BADGES[round.outcome] || ""}` }, round.outcome)
        : el("span", { class: "muted" }, "playing"),
      round.is_repeat ? el("span", { class: "muted small" }, " repeat (not counted)") : "",
    ),
    el("td", { class: "num" }, String(round.score)),
    el("td", { class: "num" }, String(round.n_points)),
    el("td", { class: "num" }, seconds(round.duration_ms)),
    el("td", { class: "small" }, dateTime(round.started_at)),
    el(
      "td",
      {},
      round.n_points
        ? el(
            "button",
            { type: "button", class: "small ghost", onclick: () => onReplay(round) },
            "Replay",
          )
        : null,
    ),
  );
}

function roundsTable(rounds, onReplay) {
  if (!rounds.length) return el("p", { class: "muted" }, "No round played yet.");
  const heads = ["Photo", "Campaign", "Outcome", "Score", "Points", "Time", "Started", ""];
  return el(
    "div",
    { class: "table-wrap" },
    el(
      "table",
      { class: "data", testid: "player-rounds" },
      el("thead", {}, el("tr", {}, heads.map((head) => el("th", { scope: "col" }, head)))),
      el("tbody", {}, rounds.map((round) => roundRow(round, onReplay))),
    ),
  );
}

function replayCard(loadPoints) {
  const canvas = el("canvas", { testid: "replay-canvas" });
  const toggle = el(
    "button",
    { type: "button", class: "secondary", testid: "replay-toggle", disabled: true },
    "Play",
  );
  const caption = el("p", { class: "muted", "aria-live": "polite" }, "Choose a round to replay.");
  const replay = new RoundReplay(canvas, (shown) => {
    toggle.textContent = shown.state === "playing" ? "Pause" : "Play";
    caption.textContent =
      `${shown.drawn} of ${plural(shown.points.length, "point")} \u00b7 ` +
      `${seconds(Math.min(shown.elapsed, shown.duration))} of ${seconds(shown.duration)}`;
  });
  toggle.addEventListener("click", () => replay.toggle());
  const title = el("h2", {}, "Replay");
  const card = el(
    "section",
    { class: "card replay", testid: "player-replay", hidden: true },
    title,
    canvas,
    el("div", { class: "actions" }, toggle, caption),
  );
  const start = async (round) => {
    const points = await loadPoints(round);
    if (points === undefined) return;
    title.textContent = `Replay: round #${round.id}, ${round.class_name}`;
    card.hidden = false;
    await replay.load(points);
    toggle.disabled = false;
    replay.play();
    card.scrollIntoView({ block: "nearest" });
  };
  return { card, start, stop: () => replay.stop() };
}

/**
 * Fills a player's page: measures, flags, status, rounds and a replay of a round's strokes;
 * `actions` as for the table, with `roundPoints(round)` (undefined when it failed). Returns a
 * function that stops the replay.
 */
export function renderPlayerDetail(view, player, actions) {
  const replay = replayCard(actions.roundPoints);
  view.replaceChildren(
    el("a", { href: "#players", class: "back" }, "\u2190 All players"),
    el(
      "div",
      { class: "view-head", "data-player": player.id },
      el("h1", {}, player.display_name),
      el("span", { class: "muted" }, `#${player.id} \u00b7 since ${dateTime(player.created_at)}`),
      recruitment(player),
      status(player, actions),
    ),
    el("section", { class: "card" }, el("h2", {}, "Quality"), measuresList(player.measures)),
    el(
      "section",
      { class: "card", testid: "player-flags" },
      el("h2", {}, "Flags"),
      player.flags.length
        ? el("ul", { class: "flags" }, player.flags.map((flag) => flagItem(player, flag, actions)))
        : el("p", { class: "muted" }, "No flag."),
    ),
    el(
      "section",
      { class: "card" },
      el("h2", {}, `Rounds (${player.rounds.length})`),
      roundsTable(player.rounds, replay.start),
    ),
    replay.card,
  );
  return replay.stop;
}
