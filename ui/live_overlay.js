// One method's overlay whose boxes follow the τ slider in the page, without waiting for the server.
//
// The server sends the blended photo (no predicted boxes), its exact boxes at the τ it drew, and a sweep:
// the boxes at every τ the slider can reach. While the slider's thumb shows another τ than the server's,
// the sweep's boxes for it are drawn; once the server's redraw for that τ lands, its exact boxes are.
// The thumb is the slider's range input (found by the slider's label), watched through its ARIA value
// text, which the slider updates the moment it moves, before the server hears of it.

const SVG = "http://www.w3.org/2000/svg";

function thumbValue(label) {
  const thumb = document.querySelector(`input[type="range"][aria-label="${CSS.escape(label)}"]`);
  const value = thumb ? Number(thumb.value) : NaN;
  return Number.isFinite(value) ? value : null;
}

function drawBoxes(svg, boxes, size) {
  svg.replaceChildren();
  for (const box of boxes) {
    const outline = document.createElementNS(SVG, "polygon");
    outline.setAttribute("points", box.points.map((p) => p.join(",")).join(" "));
    outline.setAttribute("stroke", box.color);
    outline.setAttribute("stroke-width", box.width);
    outline.setAttribute("fill", "none");
    svg.appendChild(outline);
    if (!box.label) continue;
    const [x1, y1] = box.points.reduce(([a, b], [x, y]) => [Math.min(a, x), Math.min(b, y)], [Infinity, Infinity]);
    const patchH = size.font * 1.5;
    const patchW = size.font * 0.62 * box.label.length + size.font * 0.6;
    const left = Math.max(0, Math.min(x1, size.width - patchW));
    const top = y1 - patchH >= 0 ? y1 - patchH : Math.max(0, Math.min(y1, size.height - patchH));
    const patch = document.createElementNS(SVG, "rect");
    Object.entries({ x: left, y: top, width: patchW, height: patchH, fill: box.color })
      .forEach(([k, v]) => patch.setAttribute(k, v));
    const text = document.createElementNS(SVG, "text");
    Object.entries({ x: left + size.font * 0.3, y: top + patchH * 0.75, fill: box.ink, "font-size": size.font,
                     "font-family": "sans-serif" }).forEach(([k, v]) => text.setAttribute(k, v));
    text.textContent = box.label;
    svg.append(patch, text);
  }
}

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  let view = parentElement.__liveOverlay;
  if (!view) {
    const root = document.createElement("div");
    root.className = "cam-live-overlay";
    const image = document.createElement("img");
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("preserveAspectRatio", "none");
    root.append(image, svg);
    parentElement.appendChild(root);
    view = parentElement.__liveOverlay = { root, image, svg, shown: null };
  }
  if (view.image.getAttribute("src") !== data.image) {
    view.image.src = data.image;
  }
  view.image.alt = data.alt;
  view.svg.setAttribute("viewBox", `0 0 ${data.width} ${data.height}`);
  view.data = data;
  view.shown = null;
  view.root.dataset.sweep = data.sweep === null ? "none" : "ready";
  // The boxes the sweep holds for a τ, for tests and benchmarks to compare with the server's.
  view.root.__sweepAt = (tau) => (view.data.sweep ? view.data.sweep[Math.round(tau / view.data.step)] : null);

  const draw = () => {
    const current = view.data;
    const value = thumbValue(current.slider);
    const moved = value !== null && Math.abs(value - current.tau) > 1e-6;
    const live = moved && current.sweep !== null;  // until the sweep arrives the server's boxes stay
    const index = live ? Math.round(value / current.step) : -1;
    const shown = live ? `sweep ${index}` : "server";
    if (view.shown === shown) return;
    view.shown = shown;
    drawBoxes(view.svg, live ? current.sweep[index] || [] : current.boxes, current);
    view.root.dataset.tau = (live ? value : current.tau).toFixed(2);
    view.root.dataset.source = live ? "sweep" : "server";
    view.root.dataset.serverTau = current.tau.toFixed(2);
  };
  if (view.observer) view.observer.disconnect();
  view.observer = new MutationObserver(draw);
  view.observer.observe(document.body, { subtree: true, attributes: true, attributeFilter: ["aria-valuetext"] });
  draw();
  // The sweep is asked for once per photo and box settings, when the person shows they are about to use
  // τ: the pointer over the slider or the keyboard on it. Browsing with 'Next' then costs no sweeps (five
  // tabs browsing at once stay as quick as without), and a person's hand takes longer to reach the
  // slider than the sweep takes to arrive.
  if (data.sweep === null) {
    window.__camLiveAsk = () => {
      if (window.__camLiveSweepAsked === data.token) return;
      window.__camLiveSweepAsked = data.token;
      setStateValue("sweep", data.token);
    };
  } else if (window.__camLiveSweepAsked === data.token) {
    window.__camLiveAsk = null;
  }
  if (!window.__camLiveIntent) {
    window.__camLiveIntent = (event) => {
      const slider = event.target.closest && event.target.closest(`[role="group"][aria-label="${CSS.escape(data.slider)}"]`);
      if (slider && window.__camLiveAsk) window.__camLiveAsk();
    };
    for (const type of ["pointerover", "focusin"]) document.addEventListener(type, window.__camLiveIntent, true);
  }
  return () => view.observer.disconnect();
}
