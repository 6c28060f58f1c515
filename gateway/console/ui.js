// Small building blocks of the console's pages: element creation (text is always set as
// text, never parsed as HTML), the confirmation dialog, messages, and number formats.

export function h(tag, attrs = {}, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'testid') el.dataset.testid = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, v);
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid === undefined || kid === null || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

// A message at the top of the page: errors stay until dismissed, notices fade.
export function notify(message, kind = 'error') {
  const area = document.getElementById('messages');
  const item = h('div', { class: `message ${kind}`, role: kind === 'error' ? 'alert' : 'status', testid: `message-${kind}` },
    h('span', {}, message),
    h('button', { type: 'button', class: 'link', 'aria-label': 'Dismiss', onclick: () => item.remove() }, '×'));
  area.append(item);
  if (kind !== 'error') setTimeout(() => item.remove(), 4000);
  return item;
}

export function showError(e) {
  const code = e && e.code && e.code !== String(e.status) ? `${e.code}: ` : '';
  return notify(`${code}${e && e.message ? e.message : e}`, 'error');
}

export function clearMessages() {
  clear(document.getElementById('messages'));
}

// Asks before something that cannot be undone; resolves to true when confirmed.
export function confirmDialog(question) {
  const dialog = document.getElementById('confirm-dialog');
  clear(dialog);
  return new Promise((resolve) => {
    const done = (answer) => {
      dialog.close();
      resolve(answer);
    };
    dialog.append(
      h('form', { method: 'dialog', onsubmit: (e) => { e.preventDefault(); done(true); } },
        h('p', { id: 'confirm-question' }, question),
        h('div', { class: 'actions' },
          h('button', { type: 'button', onclick: () => done(false) }, 'Cancel'),
          h('button', { type: 'submit', class: 'danger', testid: 'confirm' }, 'Delete'))));
    dialog.setAttribute('aria-labelledby', 'confirm-question');
    dialog.addEventListener('cancel', () => resolve(false), { once: true });
    dialog.showModal();
  });
}

export function bytes(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = Number(n);
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u += 1;
  }
  return `${u === 0 ? Math.round(v) : v.toFixed(1)} ${units[u]}`;
}

export function when(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

// Copies text, with a fallback for plain-HTTP pages where the clipboard API is absent.
export async function copyText(text, input) {
  try {
    await navigator.clipboard.writeText(text);
  } catch (_) {
    if (input) {
      input.select();
      document.execCommand('copy');
    }
  }
  notify('Copied', 'notice');
}

export function field(label, input) {
  const id = input.id || `f-${Math.random().toString(36).slice(2)}`;
  input.id = id;
  return h('div', { class: 'field' }, h('label', { for: id }, label), input);
}

// A button that runs `action` and reports its error, disabled while it runs.
export function actionButton(label, action, attrs = {}) {
  const button = h('button', { type: 'button', ...attrs }, label);
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      await action();
    } catch (e) {
      showError(e);
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs = {}, ...kids) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  el.append(...kids);
  return el;
}

// A line chart of `series` ([{name, color, values: [{t, v}]}]) over time, drawn as SVG with
// its last values written out (also what a screen reader gets).
export function lineChart(title, series, format) {
  const width = 600;
  const height = 160;
  const pad = { left: 8, right: 8, top: 10, bottom: 18 };
  const all = series.flatMap((s) => s.values.filter((p) => p.v !== null));
  const times = all.map((p) => p.t);
  const t0 = Math.min(...times, Date.now() - 3600e3);
  const t1 = Math.max(...times, Date.now());
  const top = Math.max(...all.map((p) => p.v), 0) || 1;
  const x = (t) => pad.left + ((t - t0) / (t1 - t0 || 1)) * (width - pad.left - pad.right);
  const y = (v) => height - pad.bottom - (v / top) * (height - pad.top - pad.bottom);
  const drawing = svg('svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', 'aria-hidden': 'true' },
    svg('line', { x1: pad.left, x2: width - pad.right, y1: y(0), y2: y(0), class: 'axis' }),
    svg('text', { x: pad.left, y: pad.top, class: 'scale' }, `max ${format(top)}`),
    svg('text', { x: pad.left, y: height - 4, class: 'scale' }, new Date(t0).toLocaleTimeString()),
    svg('text', { x: width - pad.right, y: height - 4, class: 'scale end' }, new Date(t1).toLocaleTimeString()),
    ...series.map((s) => svg('polyline', {
      fill: 'none', stroke: s.color, 'stroke-width': 2,
      points: s.values.filter((p) => p.v !== null).map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' '),
    })),
    // The newest point as a dot: visible even while the line has only one point.
    ...series.flatMap((s) => {
      const values = s.values.filter((p) => p.v !== null);
      if (!values.length) return [];
      const p = values[values.length - 1];
      return [svg('circle', { cx: x(p.t).toFixed(1), cy: y(p.v).toFixed(1), r: 3, fill: s.color })];
    }));
  const last = series.map((s) => {
    const values = s.values.filter((p) => p.v !== null);
    const v = values.length ? values[values.length - 1].v : null;
    const swatch = h('span', { class: 'swatch' });
    // Through the CSSOM: the page's CSP refuses style attributes.
    swatch.style.background = s.color;
    return h('span', { class: 'legend' }, swatch, `${s.name}: ${v === null ? '—' : format(v)}`);
  });
  return h('figure', { class: 'chart-box', testid: 'chart' }, h('figcaption', {}, title, ' ', last), drawing);
}
