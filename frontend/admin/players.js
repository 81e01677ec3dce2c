// Players: recruitment, quality measures, flags and exclusion, one row each.

import { DASH, dateTime, decimal, el, percent, seconds } from "./dom.js";

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

function playerRow(player, actions) {
  const m = player.measures;
  return el(
    "tr",
    { "data-player": player.id, class: player.exclusion ? "is-excluded" : null },
    el(
      "td",
      {},
      el("div", { class: "strong" }, player.display_name),
      el("div", { class: "muted small" }, `#${player.id} \u00b7 ${dateTime(player.created_at)}`),
    ),
    el("td", {}, recruitment(player)),
    el("td", { class: "num" }, String(m.rounds)),
    el("td", { class: "num" }, percent(m.success_rate)),
    el("td", { class: "num" }, percent(m.mean_revealed)),
    el("td", { class: "num" }, decimal(m.speed_px_s, 0)),
    el("td", { class: "num" }, seconds(m.first_point_ms)),
    el("td", { class: "num" }, seconds(m.display_ms)),
    el("td", { class: "num" }, decimal(m.interval_cv, 2)),
    el("td", { class: "num" }, catchTrials(m)),
    el("td", { class: "num" }, decimal(m.consensus_distance, 2)),
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
