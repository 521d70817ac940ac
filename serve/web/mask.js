// The inpainting mask: strokes drawn on a canvas over the init image, at the image's own pixel size.
// Exported as A1111 takes it: white = repaint, black = keep.

export class MaskCanvas {
  constructor(canvas, brush) {
    this.canvas = canvas;
    this.brush = brush;
    this.context = canvas.getContext("2d");
    this.drawn = false;
    this.last = null;
    canvas.addEventListener("pointerdown", (e) => this.start(e));
    canvas.addEventListener("pointermove", (e) => this.move(e));
    for (const name of ["pointerup", "pointerleave", "pointercancel"]) {
      canvas.addEventListener(name, () => (this.last = null));
    }
  }

  resize(width, height) {
    this.canvas.width = width;
    this.canvas.height = height;
    this.clear();
  }

  clear() {
    this.context.clearRect(0, 0, this.canvas.width, this.canvas.height);
    this.drawn = false;
  }

  // The pointer in canvas pixels (the canvas is shown scaled to fit).
  point(event) {
    const box = this.canvas.getBoundingClientRect();
    const scale = this.canvas.width / box.width;
    return [(event.clientX - box.left) * scale, (event.clientY - box.top) * scale, scale];
  }

  start(event) {
    this.canvas.setPointerCapture?.(event.pointerId);
    this.last = this.point(event);
    this.stroke(this.last, this.last);
  }

  move(event) {
    if (!this.last) return;
    const next = this.point(event);
    this.stroke(this.last, next);
    this.last = next;
  }

  stroke(from, to) {
    const c = this.context;
    c.strokeStyle = "white";
    c.lineCap = "round";
    c.lineJoin = "round";
    c.lineWidth = Number(this.brush.value) * to[2];
    c.beginPath();
    c.moveTo(from[0], from[1]);
    c.lineTo(to[0], to[1]);
    c.stroke();
    this.drawn = true;
  }

  // The mask as a base64 PNG (no data: prefix), or null when nothing was drawn.
  png() {
    if (!this.drawn) return null;
    const out = document.createElement("canvas");
    out.width = this.canvas.width;
    out.height = this.canvas.height;
    const c = out.getContext("2d");
    c.fillStyle = "black";
    c.fillRect(0, 0, out.width, out.height);
    c.drawImage(this.canvas, 0, 0);
    return out.toDataURL("image/png").split(",")[1];
  }
}
