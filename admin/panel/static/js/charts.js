// Small SVG charts for the dashboard: stacked bars, lines with markers, a funnel.
// Served by the hub (no CDN); values are numbers, labels go through html`` like every page's.
import {html} from "./core.js";

const COLORS = ["#2563eb", "#16a34a", "#d97706", "#9333ea", "#0891b2", "#dc2626", "#64748b"];
const W = 600, H = 220, L = 40, R = 10, T = 10, B = 28;
const fmt = (v) => (v >= 100 ? Math.round(v) : Math.round(v * 10) / 10);

function axis(max, labels, step, unit = "") {
  const grid = [0, 1, 2, 3, 4].map((i) => {
    const v = max * i / 4, y = T + (H - T - B) * (1 - i / 4);
    return html`<line x1="${L}" x2="${W - R}" y1="${y}" y2="${y}" stroke="#eef0f3"/><text x="${L - 6}" y="${y + 4}" font-size="10" text-anchor="end" fill="#667085">${unit === "%" ? Math.round(v * 100) + "%" : fmt(v)}</text>`;
  });
  const every = Math.max(1, Math.ceil(labels.length / 8));
  const ticks = labels.map((label, i) => (i % every ? ""
    : html`<text x="${L + step * (i + 0.5)}" y="${H - 8}" font-size="10" text-anchor="middle" fill="#667085">${label.slice(5)}</text>`));
  return [grid, ticks];
}

const legend = (names) => html`<div class="legend">${names.map((n, i) => html`<span><i style="background:${COLORS[i % COLORS.length]}"></i>${n}</span>`)}</div>`;

// series: {name: [values per label]}
export function stackedBars(labels, series, title) {
  const names = Object.keys(series);
  const totals = labels.map((_, i) => names.reduce((s, n) => s + (series[n][i] || 0), 0));
  const max = Math.max(4, Math.ceil(Math.max(...totals) / 4) * 4);  // whole numbers on the axis
  const step = (W - L - R) / Math.max(1, labels.length);
  const bars = labels.map((label, i) => {
    let y = H - B;
    return names.map((n, k) => {
      const v = series[n][i] || 0, h = (H - T - B) * v / max;
      if (!v) return "";
      y -= h;
      return html`<rect x="${L + step * i + step * 0.15}" y="${y}" width="${step * 0.7}" height="${h}" fill="${COLORS[k % COLORS.length]}"><title>${label} ${n}: ${v}</title></rect>`;
    });
  });
  return html`<div class="chart"><svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${title}">${axis(max, labels, step)}${bars}</svg>${legend(names)}</div>`;
}

// series: {name: [values or null]}; marks: [{index, label}] drawn as red flags
export function lines(labels, series, title, marks = [], unit = "") {
  const names = Object.keys(series);
  const values = names.flatMap((n) => series[n].filter((v) => v !== null && v !== undefined));
  const max = Math.max(unit === "%" ? 0.1 : 1, ...values);
  const step = (W - L - R) / Math.max(1, labels.length);
  const paths = names.map((n, k) => {
    let d = "";
    const dots = series[n].map((v, i) => {
      if (v === null || v === undefined) return "";
      const x = L + step * (i + 0.5), y = T + (H - T - B) * (1 - v / max);
      d += (d ? "L" : "M") + x.toFixed(1) + " " + y.toFixed(1);
      const shown = unit === "%" ? Math.round(v * 100) + "%" : fmt(v) + unit;
      return html`<circle cx="${x}" cy="${y}" r="3" fill="${COLORS[k % COLORS.length]}"><title>${labels[i]} ${n}: ${shown}</title></circle>`;
    });
    return html`<path d="${d}" fill="none" stroke="${COLORS[k % COLORS.length]}" stroke-width="2"/>${dots}`;
  });
  const flags = marks.map((m) => {
    const x = L + step * (m.index + 0.5);
    return html`<g class="alert-mark"><line x1="${x}" x2="${x}" y1="${T}" y2="${H - B}" stroke="#dc2626" stroke-dasharray="3 3"/><text x="${x + 3}" y="${T + 10}" font-size="11" fill="#dc2626">⚠</text><title>${m.label}</title></g>`;
  });
  return html`<div class="chart"><svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${title}">${axis(max, labels, step, unit)}${flags}${paths}</svg>${legend(names)}</div>`;
}

// steps: [{stage, count}]
export function funnel(steps, title) {
  const max = Math.max(1, ...steps.map((s) => s.count));
  const rowH = 28, h = steps.length * rowH + 8;
  const rows = steps.map((s, i) => {
    const w = Math.max(2, (W - 160) * s.count / max), x = 120 + (W - 160 - w) / 2;
    return html`<text x="112" y="${i * rowH + 20}" font-size="12" text-anchor="end" fill="#344054">${s.stage}</text><rect x="${x}" y="${i * rowH + 6}" width="${w}" height="${rowH - 8}" rx="3" fill="${COLORS[i % COLORS.length]}"/><text x="${W - 30}" y="${i * rowH + 20}" font-size="12" fill="#344054">${s.count}</text>`;
  });
  return html`<div class="chart"><svg viewBox="0 0 ${W} ${h}" role="img" aria-label="${title}">${rows}</svg></div>`;
}
