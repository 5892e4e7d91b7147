// A tiny element builder. Text always goes in as text nodes (never parsed as HTML), so artifact
// names such as `<img src=x onerror=…>.jar` are shown, not run.

/**
 * h('a', { href, class: 'x', onclick: fn, disabled: true }, 'text', child, [more])
 * Attributes starting with `on` are listeners; `true`/`false` toggle boolean attributes.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** Replaces an element's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

export const $ = (sel, root = document) => root.querySelector(sel);

/** Copies text; shows "Copied" on the button for a moment. Works outside secure contexts too. */
export async function copy(text, button) {
  let ok = false;
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      ok = true;
    }
  } catch { /* fall back below */ }
  if (!ok) {
    const area = h('textarea', { readonly: true, class: 'offscreen' });
    area.value = text;
    document.body.appendChild(area);
    area.select();
    try { ok = document.execCommand('copy'); } catch { ok = false; }
    area.remove();
  }
  if (button) {
    const label = button.textContent;
    button.textContent = ok ? 'Copied' : 'Copy failed';
    button.classList.add('flash');
    setTimeout(() => { button.textContent = label; button.classList.remove('flash'); }, 1200);
  }
  return ok;
}

export function copyButton(text, label = 'Copy', title = 'Copy to the clipboard') {
  const b = h('button', { type: 'button', class: 'copy', title, dataset: { copy: text } }, label);
  b.addEventListener('click', () => copy(text, b));
  return b;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
export function humanSize(n) {
  if (n === null || n === undefined) return '';
  let v = n, u = 0;
  while (v >= 1024 && u < UNITS.length - 1) { v /= 1024; u++; }
  return u === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${UNITS[u]}`;
}

export function shortDate(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const p = (x) => String(x).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** A modal confirmation (a <dialog>, not window.confirm). Resolves true on confirm. */
export function confirmDialog({ title, body, confirm = 'Confirm', danger = false }) {
  return new Promise((resolve) => {
    const dlg = h('dialog', { class: 'confirm', 'aria-labelledby': 'confirm-title' },
      h('h2', { id: 'confirm-title' }, title),
      h('div', { class: 'confirm-body' }, body),
      // Plain buttons, not <form method="dialog">: the page's CSP has form-action 'none'.
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'secondary', onclick: () => dlg.close('cancel') }, 'Cancel'),
        h('button', { type: 'button', class: danger ? 'danger' : 'primary', id: 'confirm-ok', onclick: () => dlg.close('ok') }, confirm)));
    dlg.addEventListener('close', () => { resolve(dlg.returnValue === 'ok'); dlg.remove(); });
    document.body.appendChild(dlg);
    dlg.showModal();
  });
}
