// The player's batches of points to the server: over the strokes' WebSocket (docs/api.md),
// each answered as its POST /api/rounds/{id}/points would be, or over that POST while the socket
// cannot be opened (a proxy or network that refuses WebSockets). A batch's headers and cookie,
// sent again with each POST, are not sent with each batch: less for a phone's link to carry and
// less for the server to read.

import { ApiError, api } from "./api.js";

export const STROKES_PATH = "/api/strokes";
// A socket not open by then is taken as refused (a proxy may hold the handshake unanswered).
const OPEN_TIMEOUT_MS = 5000;
// An answer not come by then: the socket is taken for dead (closed, opened again for the next).
const ANSWER_TIMEOUT_MS = 15000;
// After the socket failed to open, the batches go over HTTP for this long before it is tried again.
const REOPEN_AFTER_MS = 30000;
// Answers that may come from the socket's player being the one of its handshake, not the cookie's
// now (a new player since, or a forgotten one): the batch goes over HTTP, whose answer stands.
const ASK_OVER_HTTP = new Set([401, 404]);

function socketUrl() {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${window.location.host}${STROKES_PATH}`;
}

function lostConnection(reason) {
  return new ApiError(0, "network_error", `network error: ${reason}`);
}

function refusal(message) {
  const error = message.body && message.body.error ? message.body.error : {};
  return new ApiError(
    message.status,
    error.code || "http_error",
    error.message || `HTTP ${message.status}`,
    error.details || [],
  );
}

/** One socket and the batches waiting for their answers on it. */
class Link {
  constructor(socket, onGone) {
    this.socket = socket;
    this.onGone = onGone; // (link, usable): once, when the link is closed
    this.pending = new Map(); // "roundId:seq" -> { resolve, reject, timer }
    this.opened = false;
    this.answered = 0;
    this.gone = false;
    socket.onmessage = (event) => this.answer(event.data);
    socket.onclose = () => this.close("the connection closed");
  }

  get open() {
    return !this.gone && this.socket.readyState === WebSocket.OPEN;
  }

  /** The answer's message ({round_id, seq, status, retry_after, body}); rejects with a
   * (retryable) network error when the socket closes or no answer comes in time. */
  ask(roundId, batch) {
    const key = `${roundId}:${batch.seq}`;
    this.settle(key)?.reject(lostConnection("sent again"));
    const answer = new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.close("no answer in time"), ANSWER_TIMEOUT_MS);
      this.pending.set(key, { resolve, reject, timer });
    });
    this.socket.send(JSON.stringify({ round_id: roundId, ...batch }));
    return answer;
  }

  answer(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return; // not an answer: the batch waiting gets its own in time, or its timeout
    }
    const waiting = this.settle(`${message.round_id}:${message.seq}`);
    if (!waiting) return; // answered after its timeout: sent again since
    this.answered += 1;
    waiting.resolve(message);
  }

  settle(key) {
    const waiting = this.pending.get(key);
    if (!waiting) return undefined;
    this.pending.delete(key);
    clearTimeout(waiting.timer);
    return waiting;
  }

  /** Closes the socket (if still open) and fails the batches waiting on it; once. */
  close(reason) {
    if (this.gone) return;
    this.gone = true;
    // Opened, but a batch sent went unanswered by it: a path that carries no socket's frames.
    const usable = this.opened && (this.answered > 0 || this.pending.size === 0);
    this.socket.onmessage = null;
    this.socket.onclose = null;
    this.socket.close();
    for (const key of [...this.pending.keys()]) this.settle(key).reject(lostConnection(reason));
    this.onGone(this, usable);
  }
}

export class StrokesChannel {
  constructor() {
    this.opening = null; // a promise of the open Link, or of null when it failed to open
    this.link = null; // the open Link
    this.failedAt = -Infinity;
  }

  /** Opens the socket ahead of the first batch (as a round's photo loads). */
  warm() {
    if (this.usable()) this.open();
  }

  /** The batch's answer (the reveal), rejecting with an ApiError as `request` does. */
  async send(roundId, batch) {
    let link = this.usable() ? await this.open() : null;
    if (link !== null && !link.open) {
      link.close("the connection closed"); // closing, its close event not yet come
      link = this.usable() ? await this.open() : null;
    }
    if (link === null) return api.sendPoints(roundId, batch);
    const message = await link.ask(roundId, batch);
    if (message.status === 200) return message.body;
    if (ASK_OVER_HTTP.has(message.status)) {
      link.close("its player may be out of date"); // the next one shakes hands with the cookie
      return api.sendPoints(roundId, batch);
    }
    throw refusal(message);
  }

  usable() {
    return "WebSocket" in window && performance.now() - this.failedAt >= REOPEN_AFTER_MS;
  }

  open() {
    if (this.opening === null) {
      const opening = this.connect().then((link) => {
        if (link === null && this.opening === opening) this.opening = null;
        return link;
      });
      this.opening = opening;
    }
    return this.opening;
  }

  connect() {
    return new Promise((resolve) => {
      let socket;
      try {
        socket = new WebSocket(socketUrl());
      } catch {
        this.failedAt = performance.now(); // refused by the page's own policy
        resolve(null);
        return;
      }
      const link = new Link(socket, (gone, usable) => {
        clearTimeout(giveUp);
        if (!usable) this.failedAt = performance.now();
        if (this.link === gone) {
          this.link = null;
          this.opening = null;
        }
        resolve(null); // when it never opened
      });
      const giveUp = setTimeout(() => link.close("the socket did not open"), OPEN_TIMEOUT_MS);
      socket.onopen = () => {
        clearTimeout(giveUp);
        link.opened = true;
        this.link = link;
        resolve(link);
      };
    });
  }
}
