// Small SVG charts for the dashboard: stacked bars, lines with markers, a funnel.
// Served by the hub (no CDN); values are numbers, labels are escaped.
"use strict";

const Charts = (() => {
  const COLORS = ["#2563eb", "#16a34a", "#d97706", "#9333ea", "#0891b2", "#dc2626", "#64748b"];
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
  const W = 600, H = 220, L = 40, R = 10, T = 10, B = 28;

  function axis(max, labels, step, unit = "") {
    let out = "";
    for (let i = 0; i <= 4; i++) {
      const v = max * i / 4, y = T + (H - T - B) * (1 - i / 4);
      out += `<line x1="${L}" x2="${W - R}" y1="${y}" y2="${y}" stroke="#eef0f3"/>` +
             `<text x="${L - 6}" y="${y + 4}" font-size="10" text-anchor="end" fill="#667085">${esc(unit === "%" ? Math.round(v * 100) + "%" : fmt(v))}</text>`;
    }
    const every = Math.max(1, Math.ceil(labels.length / 8));
    labels.forEach((label, i) => {
      if (i % every) return;
      const x = L + step * (i + 0.5);
      out += `<text x="${x}" y="${H - 8}" font-size="10" text-anchor="middle" fill="#667085">${esc(label.slice(5))}</text>`;
    });
    return out;
  }
  function fmt(v) { return v >= 100 ? Math.round(v) : Math.round(v * 10) / 10; }
  function legend(names) {
    return `<div class="legend">${names.map((n, i) => `<span><i style="background:${COLORS[i % COLORS.length]}"></i>${esc(n)}</span>`).join("")}</div>`;
  }

  // series: {name: [values per label]}
  function stackedBars(labels, series, title) {
    const names = Object.keys(series);
    const totals = labels.map((_, i) => names.reduce((s, n) => s + (series[n][i] || 0), 0));
    const max = Math.max(4, Math.ceil(Math.max(...totals) / 4) * 4);  // whole numbers on the axis
    const step = (W - L - R) / Math.max(1, labels.length);
    let bars = "";
    labels.forEach((label, i) => {
      let y = H - B;
      names.forEach((n, k) => {
        const v = series[n][i] || 0, h = (H - T - B) * v / max;
        if (!v) return;
        y -= h;
        bars += `<rect x="${L + step * i + step * 0.15}" y="${y}" width="${step * 0.7}" height="${h}" fill="${COLORS[k % COLORS.length]}"><title>${esc(label)} ${esc(n)}: ${v}</title></rect>`;
      });
    });
    return `<div class="chart"><svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title)}">${axis(max, labels, step)}${bars}</svg>${legend(names)}</div>`;
  }

  // series: {name: [values or null]}; marks: [{index, label}] drawn as red flags
  function lines(labels, series, title, marks = [], unit = "") {
    const names = Object.keys(series);
    const values = names.flatMap((n) => series[n].filter((v) => v !== null && v !== undefined));
    const max = Math.max(unit === "%" ? 0.1 : 1, ...values);
    const step = (W - L - R) / Math.max(1, labels.length);
    let paths = "";
    names.forEach((n, k) => {
      let d = "", dots = "";
      series[n].forEach((v, i) => {
        if (v === null || v === undefined) return;
        const x = L + step * (i + 0.5), y = T + (H - T - B) * (1 - v / max);
        d += (d ? "L" : "M") + x.toFixed(1) + " " + y.toFixed(1);
        const shown = unit === "%" ? Math.round(v * 100) + "%" : fmt(v) + unit;
        dots += `<circle cx="${x}" cy="${y}" r="3" fill="${COLORS[k % COLORS.length]}"><title>${esc(labels[i])} ${esc(n)}: ${esc(shown)}</title></circle>`;
      });
      paths += `<path d="${d}" fill="none" stroke="${COLORS[k % COLORS.length]}" stroke-width="2"/>${dots}`;
    });
    const flags = marks.map((m) => {
      const x = L + step * (m.index + 0.5);
      return `<g class="alert-mark"><line x1="${x}" x2="${x}" y1="${T}" y2="${H - B}" stroke="#dc2626" stroke-dasharray="3 3"/>` +
             `<text x="${x + 3}" y="${T + 10}" font-size="11" fill="#dc2626">⚠</text><title>${esc(m.label)}</title></g>`;
    }).join("");
    return `<div class="chart"><svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title)}">${axis(max, labels, step, unit)}${flags}${paths}</svg>${legend(names)}</div>`;
  }

  // steps: [{stage, count}]
  function funnel(steps, title) {
    const max = Math.max(1, ...steps.map((s) => s.count));
    const rowH = 28, h = steps.length * rowH + 8;
    const rows = steps.map((s, i) => {
      const w = Math.max(2, (W - 160) * s.count / max), x = 120 + (W - 160 - w) / 2;
      return `<text x="112" y="${i * rowH + 20}" font-size="12" text-anchor="end" fill="#344054">${esc(s.stage)}</text>` +
             `<rect x="${x}" y="${i * rowH + 6}" width="${w}" height="${rowH - 8}" rx="3" fill="${COLORS[i % COLORS.length]}"/>` +
             `<text x="${W - 30}" y="${i * rowH + 20}" font-size="12" fill="#344054">${s.count}</text>`;
    }).join("");
    return `<div class="chart"><svg viewBox="0 0 ${W} ${h}" role="img" aria-label="${esc(title)}">${rows}</svg></div>`;
  }

  return { stackedBars, lines, funnel };
})();
