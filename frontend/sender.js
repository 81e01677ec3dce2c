// Sends painted points to the server in numbered batches, one batch in flight at a time.
// A batch that fails on the network or with a 5xx is sent again unchanged (same seq, same
// points): the server acknowledges a repeat without storing it twice.

export const BATCH_INTERVAL_MS = 200;
export const MAX_POINTS_PER_BATCH = 500;
const FIRST_RETRY_DELAY_MS = 250;
const MAX_RETRY_DELAY_MS = 2000;

export class PointSender {
  /**
   * @param send (batch) => Promise<reveal>, rejecting with an ApiError
   * @param handlers onReveal(reveal), onBusy(), onFailure(error) for a batch the server refused
   */
  constructor(send, { onReveal, onBusy, onFailure }) {
    this.send = send;
    this.onReveal = onReveal;
    this.onBusy = onBusy;
    this.onFailure = onFailure;
    this.groups = [];
    this.nextSeq = 1;
    this.inFlight = false;
    this.flushing = false;
    this.stopped = false;
    this.retryDelay = FIRST_RETRY_DELAY_MS;
    this.idleWaiters = [];
    this.interval = setInterval(() => this.sendNext(), BATCH_INTERVAL_MS);
  }

  /** Queues one point [x, y, t]; a change of pointer type starts a new batch. */
  add(point, pointerType) {
    if (this.stopped) return;
    const last = this.groups[this.groups.length - 1];
    if (last && last.pointerType === pointerType && last.points.length < MAX_POINTS_PER_BATCH) {
      last.points.push(point);
    } else {
      this.groups.push({ pointerType, points: [point] });
    }
  }

  get idle() {
    return !this.inFlight && this.groups.length === 0;
  }

  /** Sends what is queued without waiting for the interval; resolves once all is delivered. */
  flush() {
    this.flushing = true;
    this.sendNext();
    return this.whenIdle();
  }

  whenIdle() {
    if (this.idle || this.stopped) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Sends nothing more and reports nothing more (the round is over). */
  stop() {
    this.stopped = true;
    clearInterval(this.interval);
    clearTimeout(this.retryTimer);
    this.groups = [];
    this.wakeIdleWaiters();
  }

  sendNext() {
    if (this.stopped || this.inFlight || this.groups.length === 0) return;
    const group = this.groups.shift();
    const batch = { seq: this.nextSeq++, points: group.points, pointer_type: group.pointerType };
    this.inFlight = true;
    this.deliver(batch);
  }

  async deliver(batch) {
    let reveal;
    try {
      reveal = await this.send(batch);
    } catch (error) {
      if (this.stopped) return;
      if (error.retryable) {
        this.retryLater(batch, error);
        return;
      }
      this.stop();
      this.onFailure(error);
      return;
    }
    if (this.stopped) return;
    this.inFlight = false;
    this.retryDelay = FIRST_RETRY_DELAY_MS;
    this.onReveal(reveal);
    if (this.stopped) return;
    if (this.idle) this.wakeIdleWaiters();
    else if (this.flushing) this.sendNext();
  }

  retryLater(batch, error) {
    if (error.code === "scorer_busy") this.onBusy();
    this.retryTimer = setTimeout(() => this.deliver(batch), this.retryDelay);
    this.retryDelay = Math.min(this.retryDelay * 2, MAX_RETRY_DELAY_MS);
  }

  wakeIdleWaiters() {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
