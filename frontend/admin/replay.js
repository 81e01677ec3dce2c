// A round's strokes replayed over its photo: the game's own bubbles (RevealCanvas), each point
// drawn when its time `t` comes, with play and pause.

import { RevealCanvas } from "../brush.js";

/** The widest the replay is drawn, in CSS pixels. */
const MAX_WIDTH = 480;

function loadPhoto(url) {
  return new Promise((resolve, reject) => {
    const photo = new Image();
    photo.onload = () => resolve(photo);
    photo.onerror = () => reject(new Error("The round's photo could not be loaded."));
    photo.src = url;
  });
}

/**
 * Plays a round's points (`replay`: the API's /api/admin/rounds/{id}/points) on `canvas`.
 * The canvas's `data-state` is "ready", "playing", "paused" or "done", its `data-drawn` the
 * number of points drawn so far; `onChange` is called after every change of either.
 */
export class RoundReplay {
  constructor(canvas, onChange) {
    this.canvas = canvas;
    this.reveal = new RevealCanvas(canvas);
    this.onChange = onChange;
    this.points = [];
    this.drawn = 0;
    this.elapsed = 0; // ms of the round replayed so far
    this.startedAt = null; // performance.now() when playing resumed, minus `elapsed`
    this.frame = 0;
  }

  async load(replay) {
    this.stop();
    const photo = await loadPhoto(replay.image.url);
    const { width, height } = replay.image;
    this.points = replay.points;
    this.duration = this.points.length ? this.points[this.points.length - 1][2] : 0;
    this.reveal.setPhoto(photo, width, height, replay.brush);
    const cssWidth = Math.min(MAX_WIDTH, width);
    this.reveal.resize(cssWidth, (cssWidth * height) / width, window.devicePixelRatio || 1);
    this.rewind();
  }

  /** Back to the start: the photo with nothing painted. */
  rewind() {
    this.reveal.setPhoto(this.reveal.photo, this.reveal.width, this.reveal.height, this.reveal.brush);
    this.drawn = 0;
    this.elapsed = 0;
    this.reveal.render();
    this.setState("ready");
  }

  /** Plays from where it stands (from the start once it is done). */
  play() {
    if (this.state === "done") this.rewind();
    this.startedAt = performance.now() - this.elapsed;
    this.setState("playing");
    this.frame = requestAnimationFrame(() => this.tick());
  }

  pause() {
    if (this.state !== "playing") return;
    cancelAnimationFrame(this.frame);
    this.elapsed = performance.now() - this.startedAt;
    this.setState("paused");
  }

  /** Play or pause, as a single button does. */
  toggle() {
    if (this.state === "playing") this.pause();
    else this.play();
  }

  stop() {
    cancelAnimationFrame(this.frame);
  }

  tick() {
    this.elapsed = performance.now() - this.startedAt;
    while (this.drawn < this.points.length && this.points[this.drawn][2] <= this.elapsed) {
      const [x, y] = this.points[this.drawn];
      this.reveal.addPoint(x, y);
      this.drawn += 1;
    }
    this.reveal.render();
    if (this.drawn >= this.points.length) {
      this.elapsed = this.duration;
      this.setState("done");
      return;
    }
    this.changed();
    this.frame = requestAnimationFrame(() => this.tick());
  }

  setState(state) {
    this.state = state;
    this.canvas.dataset.state = state;
    this.changed();
  }

  changed() {
    this.canvas.dataset.drawn = String(this.drawn);
    this.onChange(this);
  }
}
