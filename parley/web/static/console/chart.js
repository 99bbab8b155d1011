// A small SVG line chart: one or more series of [time, value] points on a shared time axis.

const NS = 'http://www.w3.org/2000/svg';

function svg(tag, attrs, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c);
  return el;
}

function tick(value) {
  if (value >= 1000) return `${(value / 1000).toFixed(value >= 10000 ? 0 : 1)}k`;
  return Number.isInteger(value) || value >= 10 ? String(Math.round(value)) : value.toFixed(1);
}

/** lineChart([{name, points: [[t, v], …], cls}], {width, height, unit}) → an <svg>. */
export function lineChart(series, { width = 560, height = 160, unit = '', label = '' } = {}) {
  const pad = { left: 60, right: 10, top: 10, bottom: 22 };
  const points = series.flatMap((s) => s.points).filter((p) => Array.isArray(p) && Number.isFinite(Number(p[1])));
  const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img', 'aria-label': label });
  if (!points.length) {
    chart.append(svg('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle', class: 'chart-empty' }, 'no data yet'));
    return chart;
  }
  const times = points.map((p) => Number(p[0]));
  const t0 = Math.min(...times);
  const t1 = Math.max(...times, t0 + 1);
  const top = Math.max(1, ...points.map((p) => Number(p[1])));
  const x = (t) => pad.left + ((t - t0) / (t1 - t0)) * (width - pad.left - pad.right);
  const y = (v) => height - pad.bottom - (v / top) * (height - pad.top - pad.bottom);
  for (const frac of [0, 0.5, 1]) {
    const v = top * frac;
    chart.append(svg('line', { x1: pad.left, x2: width - pad.right, y1: y(v), y2: y(v), class: 'grid' }),
      svg('text', { x: pad.left - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'axis' }, `${tick(v)}${unit}`));
  }
  const clock = (t) => new Date(t * (t < 1e12 ? 1000 : 1)).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  chart.append(svg('text', { x: pad.left, y: height - 6, class: 'axis' }, clock(t0)),
    svg('text', { x: width - pad.right, y: height - 6, 'text-anchor': 'end', class: 'axis' }, clock(t1)));
  series.forEach((s, i) => {
    const path = s.points.filter((p) => Number.isFinite(Number(p[1])))
      .map((p, j) => `${j ? 'L' : 'M'}${x(Number(p[0])).toFixed(1)},${y(Number(p[1])).toFixed(1)}`).join(' ');
    if (path) chart.append(svg('path', { d: path, class: `line ${s.cls || `s${i}`}` }, svg('title', {}, s.name)));
  });
  return chart;
}
