// What the player sees of the photo: bright inside the painted bubbles, dimmed elsewhere.
// Bubble geometry is the one of docs/api.md, so the player sees what the DNN sees:
// fully revealed within radius * (1 - softness), fading linearly to 0 at radius,
// bubbles combined by maximum.

/** Brightness of the photo where nothing is painted (0 black .. 1 the photo itself). */
export const DIM_LEVEL = 0.25;

/** Points closer than this (native pixels) to the last kept point are not kept. */
export const MIN_POINT_DISTANCE_PX = 4;

function grey(level) {
  const value = Math.round(level * 255);
  return `rgb(${value}, ${value}, ${value})`;
}

/** Whether (x, y) is at least `minDistance` from `last` (always true without a last point). */
export function farEnough(last, x, y, minDistance = MIN_POINT_DISTANCE_PX) {
  return last === null || Math.hypot(x - last[0], y - last[1]) >= minDistance;
}

/**
 * A canvas showing a photo through painted bubbles.
 *
 * A "shade" canvas of the same pixel size holds, per pixel, the brightness
 * DIM_LEVEL + (1 - DIM_LEVEL) * mask; bubbles are drawn on it with the "lighten"
 * operation (per-pixel maximum), and the photo is multiplied by it when shown.
 */
export class RevealCanvas {
  constructor(canvas) {
    this.canvas = canvas;
    this.context = canvas.getContext("2d");
    this.shade = document.createElement("canvas");
    this.shadeContext = this.shade.getContext("2d");
    this.photo = null;
    this.width = 1;
    this.height = 1;
    this.brush = { radius_px: 30, softness: 0.5 };
    this.points = [];
    this.dirty = false;
  }

  /** Starts over with a loaded photo, its native size (the API's pixels) and the brush. */
  setPhoto(photo, width, height, brush) {
    this.photo = photo;
    this.width = width;
    this.height = height;
    this.brush = brush;
    this.points = [];
    this.resetShade();
  }

  /** Sizes the canvas to `cssWidth` x `cssHeight` CSS pixels at the device's pixel ratio. */
  resize(cssWidth, cssHeight, pixelRatio) {
    this.canvas.style.width = `${cssWidth}px`;
    this.canvas.style.height = `${cssHeight}px`;
    this.canvas.width = Math.max(1, Math.round(cssWidth * pixelRatio));
    this.canvas.height = Math.max(1, Math.round(cssHeight * pixelRatio));
    this.resetShade();
    for (const [x, y] of this.points) this.drawBubble(x, y);
  }

  resetShade() {
    this.shade.width = this.canvas.width;
    this.shade.height = this.canvas.height;
    this.shadeContext.globalCompositeOperation = "source-over";
    this.shadeContext.fillStyle = grey(DIM_LEVEL);
    this.shadeContext.fillRect(0, 0, this.shade.width, this.shade.height);
    this.dirty = true;
  }


  /** Reveals a bubble around (x, y), in native image pixels. */
  addPoint(x, y) {
    this.points.push([x, y]);
    this.drawBubble(x, y);
  }

  drawBubble(x, y) {
    const scaleX = this.canvas.width / this.width;
    const scaleY = this.canvas.height / this.height;
    const radius = this.brush.radius_px * scaleX;
    if (radius <= 0) return;
    const cx = x * scaleX;
    const cy = y * scaleY;
    const solid = Math.min(1, Math.max(0, 1 - this.brush.softness));
    const gradient = this.shadeContext.createRadialGradient(cx, cy, 0, cx, cy, radius);
    gradient.addColorStop(0, grey(1));
    gradient.addColorStop(solid, grey(1));
    gradient.addColorStop(1, grey(DIM_LEVEL));
    this.shadeContext.globalCompositeOperation = "lighten";
    this.shadeContext.fillStyle = gradient;
    this.shadeContext.fillRect(cx - radius, cy - radius, 2 * radius, 2 * radius);
    this.dirty = true;
  }

  /** Draws the photo through the shade if anything changed since the last call. */
  render() {
    if (!this.dirty || !this.photo) return;
    const { width, height } = this.canvas;
    this.context.globalCompositeOperation = "source-over";
    this.context.imageSmoothingQuality = "high";
    this.context.drawImage(this.photo, 0, 0, width, height);
    this.context.globalCompositeOperation = "multiply";
    this.context.drawImage(this.shade, 0, 0);
    this.context.globalCompositeOperation = "source-over";
    this.dirty = false;
  }

  /** The native image pixel under a pointer's client position, or null outside the photo. */
  toNative(clientX, clientY) {
    if (!this.photo) return null;
    const box = this.canvas.getBoundingClientRect();
    if (box.width <= 0 || box.height <= 0) return null;
    const x = ((clientX - box.left) / box.width) * this.width;
    const y = ((clientY - box.top) / box.height) * this.height;
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return null;
    return [x, y];
  }
}
