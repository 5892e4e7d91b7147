// The page: sign-in, mounts, directory listings with pagination and a filter, uploads, details
// and deletes. Navigation lives in the URL fragment (#/<mount>/<dir>/), so reload and the back
// button work. Everything the token may not do is rendered disabled, from /whoami.

import { h, replace, $, copyButton, humanSize, shortDate, confirmDialog } from './dom.js';
import * as api from './api.js';
import { digestOf, put } from './upload.js';
import { snippets } from './snippets.js';

const PAGE = Number(new URLSearchParams(location.search).get('limit')) || 200;

const state = {
  who: null, // /whoami
  mount: null, // current mount name (null: the mount list)
  dir: '', // current directory, '' or 'a/b/'
  entries: [],
  next: null,
  filter: '',
};

// ---- errors --------------------------------------------------------------------------------

function showError(err, context) {
  const msg = err instanceof api.ApiError
    ? `${context ? `${context}: ` : ''}${err.message} (${err.status || 'network'} ${err.code})`
    : `${context ? `${context}: ` : ''}${err && err.message ? err.message : String(err)}`;
  replace($('#error'), h('span', { class: 'msg' }, msg),
    h('button', { type: 'button', class: 'link', onclick: clearError, 'aria-label': 'Dismiss' }, '×'));
  $('#error').hidden = false;
}

function clearError() {
  $('#error').hidden = true;
  replace($('#error'));
}

// ---- sign-in -------------------------------------------------------------------------------

function renderWho() {
  const who = state.who;
  if (who && who.authenticated) {
    replace($('#who'),
      h('span', { class: 'principal', id: 'principal' }, 'Signed in as ', h('strong', {}, who.token)),
      h('button', { type: 'button', id: 'signout', class: 'secondary', onclick: signOut }, 'Sign out'));
    return;
  }
  const input = h('input', {
    type: 'password', id: 'token', name: 'token', placeholder: 'Bearer token', autocomplete: 'off',
    'aria-label': 'Bearer token', required: true,
  });
  const form = h('form', { id: 'signin', class: 'signin' },
    h('span', { class: 'principal', id: 'principal' }, 'Anonymous'), input,
    h('button', { type: 'submit', class: 'primary' }, 'Sign in'));
  form.addEventListener('submit', (e) => { e.preventDefault(); signIn(input.value.trim()); });
  replace($('#who'), form);
}

async function signIn(token) {
  if (!token) return;
  try {
    const who = await api.whoami(token);
    api.session.set(token);
    state.who = who;
    clearError();
    renderWho();
    await route();
  } catch (err) {
    showError(err, 'Sign-in refused');
  }
}

async function signOut() {
  api.session.clear();
  await loadWho();
  renderWho();
  await route();
}

async function loadWho() {
  try {
    state.who = await api.whoami();
  } catch (err) {
    if (err.status === 401 && api.session.token) {
      api.session.clear();
      showError(err, 'The saved token was refused; signed out');
      state.who = await api.whoami(null);
    } else throw err;
  }
}

const caps = (mount) => (state.who ? state.who.mounts.find((m) => m.name === mount) : null)
  || { name: mount, read: false, write: false, delete: false, anonymous_read: false };

// ---- navigation ----------------------------------------------------------------------------

function hashFor(mount, dir = '') {
  if (mount === null) return '#/';
  return `#/${api.encodeSegment(mount)}/${dir.split('/').map((s) => (s ? api.encodeSegment(s) : s)).join('/')}`;
}

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  if (!raw) return { mount: null, dir: '' };
  try {
    const parts = raw.split('/');
    const mount = decodeURIComponent(parts.shift());
    const segs = parts.filter((s) => s !== '').map(decodeURIComponent);
    return { mount, dir: segs.length ? `${segs.join('/')}/` : '' };
  } catch {
    return { mount: null, dir: '' }; // a malformed %-escape: back to the mounts
  }
}

function renderCrumbs() {
  const items = [h('a', { href: '#/' }, 'mounts')];
  if (state.mount !== null) {
    items.push(h('span', { class: 'sep' }, '/'), h('a', { href: hashFor(state.mount) }, state.mount));
    let acc = '';
    for (const seg of state.dir.split('/').filter(Boolean)) {
      acc += `${seg}/`;
      items.push(h('span', { class: 'sep' }, '/'), h('a', { href: hashFor(state.mount, acc) }, seg));
    }
  }
  replace($('#crumbs'), items);
}

async function route() {
  const { mount, dir } = parseHash();
  state.mount = mount;
  state.dir = dir;
  state.filter = '';
  renderCrumbs();
  if (mount === null) return renderMounts();
  return openDir();
}

// ---- mounts --------------------------------------------------------------------------------

function badge(ok, label, why) {
  return h('span', { class: ok ? 'badge on' : 'badge off', title: ok ? `may ${label}` : why }, label);
}

function renderMounts() {
  const mounts = state.who ? state.who.mounts : [];
  const readable = mounts.filter((m) => m.read);
  const body = readable.length
    ? h('table', { class: 'listing', id: 'mounts' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Mount'), h('th', {}, 'Your access'), h('th', {}, 'Anonymous read'))),
      h('tbody', {}, readable.map((m) => h('tr', { dataset: { mount: m.name } },
        h('td', {}, h('a', { href: hashFor(m.name), class: 'dir' }, `${m.name}/`)),
        h('td', {}, badge(m.read, 'read', ''), ' ',
          badge(m.write, 'write', 'this token may not upload here'), ' ',
          badge(m.delete, 'delete', 'this token may not delete here')),
        h('td', {}, m.anonymous_read ? 'yes' : 'no')))))
    : h('p', { class: 'empty' }, state.who && state.who.authenticated
      ? 'This token may not read any mount.'
      : 'No mount is readable without a token. Sign in with a bearer token.');
  replace($('#main'), h('section', { class: 'card' }, h('h1', {}, 'Mounts'), body));
}

// ---- a directory ---------------------------------------------------------------------------

async function openDir() {
  const c = caps(state.mount);
  state.entries = [];
  state.next = null;
  replace($('#main'),
    uploadPanel(c),
    h('section', { class: 'card' },
      h('div', { class: 'toolbar' },
        h('h1', {}, `/${state.mount}/${state.dir}`),
        h('input', { type: 'search', id: 'filter', placeholder: 'Filter this directory', 'aria-label': 'Filter', oninput: (e) => { state.filter = e.target.value; renderEntries(); } }),
        h('button', { type: 'button', class: 'secondary', id: 'refresh', onclick: () => loadPage(true) }, 'Refresh')),
      h('div', { id: 'entries' }, h('p', { class: 'empty' }, 'Loading…')),
      h('div', { class: 'more' },
        h('span', { id: 'count' }),
        h('button', { type: 'button', id: 'more', class: 'secondary', hidden: true, onclick: () => loadPage(false) }, 'Load more'))));
  await loadPage(true);
}

async function loadPage(first) {
  const mount = state.mount, dir = state.dir;
  try {
    const page = await api.list(mount, dir, { after: first ? null : state.next, limit: PAGE });
    if (mount !== state.mount || dir !== state.dir) return; // navigated away meanwhile
    state.entries = first ? page.entries : state.entries.concat(page.entries);
    state.next = page.next_after || null;
    clearErrorIfListing();
  } catch (err) {
    if (err.status === 404 && !dir) state.entries = [];
    else if (err.status === 404 && first) {
      state.entries = [];
      showError(err, `/${mount}/${dir}`);
    } else {
      showError(err, `Listing /${mount}/${dir}`);
      state.entries = [];
    }
    state.next = null;
  }
  renderEntries();
}

function clearErrorIfListing() {
  const e = $('#error');
  if (!e.hidden && /Listing/.test(e.textContent)) clearError();
}

function renderEntries() {
  const c = caps(state.mount);
  const f = state.filter.trim().toLowerCase();
  const shown = f ? state.entries.filter((e) => e.name.toLowerCase().includes(f)) : state.entries;
  const count = $('#count');
  if (count) {
    count.textContent = `${shown.length} of ${state.entries.length} loaded${state.next ? ' (more on the server)' : ''}`;
  }
  const more = $('#more');
  if (more) more.hidden = !state.next;
  const target = $('#entries');
  if (!target) return;
  if (!state.entries.length) {
    replace(target, h('p', { class: 'empty' }, 'Nothing here yet.'));
    return;
  }
  const rows = shown.map((e) => (e.is_dir ? dirRow(e) : fileRow(e, c)));
  if (state.dir) {
    const parent = state.dir.split('/').filter(Boolean).slice(0, -1);
    rows.unshift(h('tr', { class: 'up' }, h('td', { colspan: 6 },
      h('a', { href: hashFor(state.mount, parent.length ? `${parent.join('/')}/` : '') }, '../'))));
  }
  replace(target, h('table', { class: 'listing', id: 'listing' },
    h('thead', {}, h('tr', {}, ['Name', 'Size', 'Modified', 'SHA-256', 'URL', ''].map((t) => h('th', {}, t)))),
    h('tbody', {}, rows)));
}

function dirRow(e) {
  return h('tr', { class: 'is-dir', dataset: { name: e.name } },
    h('td', { class: 'name' }, h('a', { href: hashFor(state.mount, `${state.dir}${e.name}/`), class: 'dir' }, `${e.name}/`)),
    h('td', {}), h('td', {}), h('td', {}), h('td', {}), h('td', {}));
}

function fileRow(e, c) {
  const path = state.dir + e.name;
  const url = api.artifactUrl(state.mount, path);
  const deny = !c.delete ? (state.who && state.who.authenticated
    ? 'this token may not delete on this mount' : 'sign in with a token that may delete') : null;
  return h('tr', { class: 'is-file', dataset: { name: e.name } },
    h('td', { class: 'name' }, h('button', { type: 'button', class: 'link name-link', title: 'Details', onclick: () => showDetails(path) }, e.name)),
    h('td', { class: 'size', title: e.size !== null ? `${e.size} bytes` : '' }, humanSize(e.size)),
    h('td', { class: 'date', title: e.last_modified || '' }, shortDate(e.last_modified)),
    h('td', { class: 'sha' }, e.sha256
      ? [h('code', { class: 'sha256', title: e.sha256, dataset: { sha256: e.sha256 } }, `${e.sha256.slice(0, 12)}…`), ' ', copyButton(e.sha256, 'Copy', 'Copy the SHA-256')]
      : h('span', { class: 'muted' }, '—')),
    h('td', { class: 'url' }, copyButton(url, 'Copy URL', url)),
    h('td', { class: 'actions' },
      h('button', { type: 'button', class: 'secondary', onclick: () => showDetails(path) }, 'Details'), ' ',
      h('button', { type: 'button', class: 'danger delete', disabled: !c.delete, title: deny || `Delete ${path}`, onclick: () => deleteArtifact(path, e.etag) }, 'Delete')));
}

// ---- details and delete ---------------------------------------------------------------------

async function showDetails(path) {
  const mount = state.mount;
  let meta;
  try {
    meta = await api.stat(mount, path);
  } catch (err) {
    showError(err, `Details of ${path}`);
    return;
  }
  const name = path.split('/').pop();
  const url = api.artifactUrl(mount, path);
  const c = caps(mount);
  const row = (k, v, extra) => [h('dt', {}, k), h('dd', {}, v, extra ? [' ', extra] : null)];
  const dlg = h('dialog', { class: 'details', id: 'details', 'aria-labelledby': 'details-title' },
    h('h2', { id: 'details-title' }, name),
    h('dl', {},
      row('Path', h('code', {}, `/${mount}/${path}`)),
      row('URL', h('code', { id: 'details-url' }, url), copyButton(url, 'Copy', 'Copy the URL')),
      row('Size', `${humanSize(meta.size)} (${meta.size} bytes)`),
      row('SHA-256', meta.sha256 ? h('code', { id: 'details-sha256' }, meta.sha256) : 'not recorded', meta.sha256 ? copyButton(meta.sha256) : null),
      row('ETag', h('code', { id: 'details-etag' }, meta.etag || '')),
      row('Type', meta.contentType || ''),
      row('Modified', meta.lastModified || '')),
    snippets({ url, name, sha256: meta.sha256, anonymous: c.anonymous_read }).map((s) => h('div', { class: 'snippet', dataset: { snippet: s.id } },
      h('div', { class: 'snippet-head' }, h('h3', {}, s.title), copyButton(s.text)),
      h('pre', {}, s.text))),
    h('div', { class: 'actions' }, h('button', { type: 'button', class: 'primary', onclick: () => dlg.close() }, 'Close')));
  dlg.addEventListener('close', () => dlg.remove());
  document.body.appendChild(dlg);
  dlg.showModal();
}

async function deleteArtifact(path, etag) {
  const mount = state.mount;
  const ok = await confirmDialog({
    title: 'Delete this artifact?',
    body: [h('p', {}, 'This deletes ', h('code', { class: 'target' }, `/${mount}/${path}`), ' for every client. It cannot be undone.')],
    confirm: 'Delete',
    danger: true,
  });
  if (!ok) return;
  try {
    await api.remove(mount, path, etag ? `"${etag}"` : null);
    await loadPage(true);
  } catch (err) {
    showError(err, `Deleting ${path}`);
  }
}

// ---- uploads -------------------------------------------------------------------------------

function uploadPanel(c) {
  const why = c.write ? null : (state.who && state.who.authenticated
    ? `This token may not upload to ${state.mount}.` : 'Sign in with a token that may write to upload.');
  const input = h('input', { type: 'file', id: 'file-input', multiple: true, class: 'offscreen', disabled: !c.write });
  input.addEventListener('change', () => { startUploads([...input.files]); input.value = ''; });
  const zone = h('label', { class: c.write ? 'dropzone' : 'dropzone disabled', id: 'dropzone', for: 'file-input' },
    h('strong', {}, 'Drop files here'), ' or ', h('span', { class: 'fake-link' }, 'choose files'), input);
  if (c.write) {
    zone.addEventListener('dragover', (e) => { e.preventDefault(); zone.classList.add('over'); });
    zone.addEventListener('dragleave', () => zone.classList.remove('over'));
    zone.addEventListener('drop', (e) => {
      e.preventDefault();
      zone.classList.remove('over');
      startUploads([...e.dataTransfer.files]);
    });
  }
  return h('section', { class: 'card upload', id: 'upload' },
    h('fieldset', { disabled: !c.write },
      h('legend', {}, 'Upload'),
      why ? h('p', { class: 'muted', id: 'upload-why' }, why) : null,
      h('label', { class: 'target' }, 'Into ', h('code', {}, `/${state.mount}/`),
        h('input', { type: 'text', id: 'upload-dir', value: state.dir, placeholder: 'directory/ (empty: the mount root)', 'aria-label': 'Upload directory' })),
      zone),
    h('ul', { id: 'uploads', class: 'uploads' }));
}

function targetDir() {
  const v = ($('#upload-dir').value || '').trim().replace(/^\/+/, '');
  return v && !v.endsWith('/') ? `${v}/` : v;
}

function startUploads(files) {
  const mount = state.mount;
  const dir = targetDir();
  const c = caps(mount);
  for (const file of files) uploadOne(mount, `${dir}${file.name}`, file, c);
}

async function uploadOne(mount, path, file, c) {
  const bar = h('progress', { max: 1, value: 0 });
  const status = h('span', { class: 'status' }, 'queued');
  const actions = h('span', { class: 'row-actions' });
  const li = h('li', { dataset: { path }, class: 'pending' },
    h('span', { class: 'file' }, path), bar, status, actions);
  $('#uploads').prepend(li);
  const set = (cls, text) => { li.className = cls; status.textContent = text; };
  if (file.size > c.max_upload_size) {
    set('failed', `too large: ${humanSize(file.size)} is over this mount's limit of ${humanSize(c.max_upload_size)}`);
    return;
  }
  let digest;
  try {
    set('hashing', 'computing SHA-256…');
    digest = await digestOf(file, (done, total) => { bar.max = total || 1; bar.value = done; });
  } catch (err) {
    set('failed', `could not read the file: ${err.message}`);
    return;
  }
  const send = async (replaceEtag) => {
    set('uploading', 'uploading…');
    bar.max = file.size || 1;
    bar.value = 0;
    try {
      const res = await put({
        mount, path, file, digest, replace: replaceEtag,
        onProgress: (done, total) => { bar.max = total || 1; bar.value = done; status.textContent = `uploading ${Math.floor((100 * done) / (total || 1))}%`; },
      });
      bar.value = bar.max;
      const verified = res && res.sha256 === digest.hex;
      li.dataset.sha256 = res ? res.sha256 : '';
      set(verified ? 'done' : 'failed', verified
        ? `${res.created ? 'stored' : 'replaced'} · sha256 ${digest.hex.slice(0, 12)}… verified by the server`
        : `stored, but the server reports sha256 ${res && res.sha256}`);
      replace(actions);
      if (mount === state.mount) loadPage(true);
    } catch (err) {
      if (err.status === 412 && !replaceEtag) return exists();
      set('failed', `${err.message} (${err.status || 'network'} ${err.code})`);
    }
    return undefined;
  };
  const exists = () => {
    set('exists', 'already exists: not overwritten');
    replace(actions,
      h('button', { type: 'button', class: 'danger overwrite', onclick: overwrite }, 'Overwrite…'), ' ',
      h('button', { type: 'button', class: 'secondary', onclick: () => { set('skipped', 'skipped: the existing artifact was kept'); replace(actions); } }, 'Skip'));
  };
  const overwrite = async () => {
    let cur;
    try {
      cur = await api.stat(mount, path);
    } catch (err) {
      if (err.status === 404) return send(null); // deleted meanwhile: create again
      set('failed', `${err.message} (${err.status} ${err.code})`);
      return undefined;
    }
    const ok = await confirmDialog({
      title: 'Overwrite this artifact?',
      body: [
        h('p', {}, 'Replace ', h('code', { class: 'target' }, `/${mount}/${path}`), '?'),
        h('p', { class: 'muted' }, `Current: ${humanSize(cur.size)}, sha256 ${cur.sha256 || 'unknown'}, ${cur.lastModified}.`),
        h('p', { class: 'muted' }, `New: ${humanSize(file.size)}, sha256 ${digest.hex}.`),
      ],
      confirm: 'Overwrite',
      danger: true,
    });
    if (!ok) return undefined;
    return send(cur.etag);
  };
  await send(null);
}

// ---- start ---------------------------------------------------------------------------------

async function start() {
  $('#main').hidden = false;
  try {
    await loadWho();
  } catch (err) {
    showError(err, 'Could not reach the gateway');
    return;
  }
  renderWho();
  window.addEventListener('hashchange', () => { route(); });
  await route();
  document.body.dataset.ready = 'true';
}

start();
