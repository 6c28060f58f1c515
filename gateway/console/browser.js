// The buckets page and the object browser: folders by prefix, paging, uploads (files and
// folders, by picker or drag and drop, multipart for large files, cancellable), new folders
// and deleting several objects at once.

import * as s3 from './s3.js';
import { h, clear, notify, showError, confirmDialog, bytes, when, field, actionButton } from './ui.js';
import { link } from './app.js';

export async function bucketsPage(main) {
  const name = h('input', { type: 'text', required: true, testid: 'bucket-create-name', autocomplete: 'off',
    pattern: '[a-z0-9][a-z0-9.\\-]{1,61}[a-z0-9]', placeholder: 'my-bucket' });
  const lock = h('input', { type: 'checkbox', id: 'bucket-create-lock' });
  const form = h('form', { class: 'inline-form', 'aria-label': 'Create a bucket' },
    field('New bucket', name),
    h('div', { class: 'field check' }, lock, h('label', { for: 'bucket-create-lock' }, 'Object lock')),
    h('button', { type: 'submit', testid: 'bucket-create-submit' }, 'Create bucket'));
  const tbody = h('tbody');
  main.append(
    h('h1', {}, 'Buckets'),
    form,
    h('table', { class: 'list' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'Objects'),
        h('th', { scope: 'col' }, 'Size'), h('th', { scope: 'col' }, 'Created'), h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')))),
      tbody));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      await s3.createBucket(name.value.trim(), { objectLock: lock.checked });
      notify(`Bucket ${name.value.trim()} created`, 'notice');
      name.value = '';
      await load();
    } catch (err) {
      showError(err);
    }
  });
  async function load() {
    const buckets = await s3.listBuckets();
    let usage = {};
    try {
      usage = await s3.bucketUsage();
    } catch (e) {
      showError(e);
    }
    clear(tbody);
    if (!buckets.length) tbody.append(h('tr', {}, h('td', { colspan: 5, class: 'empty' }, 'No buckets yet.')));
    for (const b of buckets) {
      const u = usage[b.name];
      tbody.append(h('tr', { testid: 'bucket-row', dataset: { name: b.name } },
        h('td', {}, link(`#/b/${encodeURIComponent(b.name)}/`, b.name)),
        h('td', { class: 'num', testid: 'bucket-objects' }, u ? String(u.objects) : ''),
        h('td', { class: 'num', testid: 'bucket-size', title: u ? `${u.bytes} bytes; all versions: ${u.versions}, ${u.versionBytes} bytes` : null }, u ? bytes(u.bytes) : ''),
        h('td', {}, when(b.created)),
        h('td', { class: 'actions' },
          link(`#/settings/${encodeURIComponent(b.name)}`, 'Settings', { class: 'button' }),
          actionButton('Delete', async () => {
            if (!(await confirmDialog(`Delete the bucket ${b.name}? It must be empty.`))) return;
            await s3.deleteBucket(b.name);
            notify(`Bucket ${b.name} deleted`, 'notice');
            await load();
          }, { class: 'danger', testid: 'bucket-delete' }))));
    }
  }
  await load();
}

// Every file under a dropped folder entry, with its path relative to the drop.
async function filesOfEntry(entry, path = '') {
  if (entry.isFile) {
    const file = await new Promise((res, rej) => entry.file(res, rej));
    return [{ file, path: path + file.name }];
  }
  const reader = entry.createReader();
  const out = [];
  for (;;) {
    const batch = await new Promise((res, rej) => reader.readEntries(res, rej));
    if (!batch.length) break;
    for (const e of batch) out.push(...(await filesOfEntry(e, `${path}${entry.name}/`)));
  }
  return out;
}

function uploadPanel() {
  return document.getElementById('uploads') || h('section', { id: 'uploads', 'aria-label': 'Uploads', class: 'uploads' });
}

// Uploads `items` ({file, path}) under `prefix`, one after the other, each with a progress
// bar and a cancel button; calls `done` after each.
async function uploadAll(bucket, prefix, items, done) {
  const panel = uploadPanel();
  if (!panel.isConnected) document.querySelector('main').prepend(panel);
  const jobs = items.map(({ file, path }) => {
    const key = prefix + path;
    const bar = h('progress', { max: file.size || 1, value: 0, 'aria-label': `Upload of ${key}` });
    const state = h('span', { class: 'state' }, 'waiting');
    const cancel = { cancelled: false, abort: () => {} };
    const row = h('div', { class: 'upload', testid: 'upload-row', dataset: { key } },
      h('span', { class: 'name' }, key), bar, state,
      h('button', { type: 'button', class: 'link', testid: 'upload-cancel',
        onclick: () => { cancel.cancelled = true; cancel.abort(); } }, 'Cancel'));
    panel.append(row);
    return { file, key, bar, state, cancel, row };
  });
  for (const job of jobs) {
    if (job.cancel.cancelled) {
      job.state.textContent = 'cancelled';
      continue;
    }
    job.state.textContent = 'uploading';
    try {
      await s3.upload(bucket, job.key, job.file, (sent) => { job.bar.value = sent; }, job.cancel);
      job.bar.value = job.file.size || 1;
      job.state.textContent = 'done';
      job.row.classList.add('done');
      setTimeout(() => job.row.remove(), 5000);
    } catch (e) {
      job.state.textContent = e.code === 'Cancelled' ? 'cancelled' : 'failed';
      if (e.code !== 'Cancelled') showError(e);
    }
    done();
  }
}

export async function folderPage(main, bucket, prefix) {
  let pageTokens = [null];
  let page = 0;
  let search = '';
  let showDeleted = false;
  const selected = new Set();

  const crumbs = h('nav', { class: 'crumbs', 'aria-label': 'Folder' });
  const parts = prefix.split('/').filter(Boolean);
  crumbs.append(link('#/', 'Buckets'), ' / ', link(`#/b/${encodeURIComponent(bucket)}/`, bucket));
  parts.forEach((p, i) => {
    const sub = parts.slice(0, i + 1).join('/') + '/';
    crumbs.append(' / ', link(`#/b/${encodeURIComponent(bucket)}/${s3.encodeKey(sub)}`, p));
  });

  const files = h('input', { type: 'file', multiple: true, id: 'upload-files', testid: 'object-upload-input', class: 'sr-only' });
  const folder = h('input', { type: 'file', multiple: true, webkitdirectory: true, id: 'upload-folder', testid: 'folder-upload-input', class: 'sr-only' });
  const searchBox = h('input', { type: 'search', placeholder: 'Search by prefix', testid: 'object-search', 'aria-label': 'Search by prefix' });
  const newFolder = h('input', { type: 'text', placeholder: 'folder name', testid: 'folder-create-name', 'aria-label': 'New folder name' });
  const deleteSelected = actionButton('Delete selected', async () => {
    const keys = [...selected];
    if (!keys.length) return;
    if (!(await confirmDialog(`Delete ${keys.length} object(s)?`))) return;
    for (const key of keys) await s3.deleteObject(bucket, key);
    notify(`${keys.length} object(s) deleted`, 'notice');
    selected.clear();
    await load();
  }, { class: 'danger', testid: 'objects-delete-selected' });
  const deletedToggle = h('input', { type: 'checkbox', id: 'show-deleted', testid: 'show-deleted' });
  const tbody = h('tbody');
  const pager = h('div', { class: 'pager' });
  const drop = h('div', { class: 'dropzone', testid: 'dropzone' },
    h('table', { class: 'list' },
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Select')),
        h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'Size'), h('th', { scope: 'col' }, 'Modified'))),
      tbody),
    pager);

  main.append(
    crumbs,
    h('div', { class: 'toolbar' },
      h('label', { for: 'upload-files', class: 'button primary', tabindex: 0 }, 'Upload files'), files,
      h('label', { for: 'upload-folder', class: 'button', tabindex: 0 }, 'Upload folder'), folder,
      h('form', { class: 'inline-form', onsubmit: async (e) => {
        e.preventDefault();
        const name = newFolder.value.trim().replace(/\/+$/, '');
        if (!name) return;
        try {
          await s3.putEmpty(bucket, `${prefix}${name}/`);
          newFolder.value = '';
          await load();
        } catch (err) { showError(err); }
      } }, newFolder, h('button', { type: 'submit', testid: 'folder-create-submit' }, 'New folder')),
      deleteSelected,
      h('span', { class: 'check' }, deletedToggle, h('label', { for: 'show-deleted' }, 'Show deleted')),
      searchBox),
    h('p', { class: 'hint' }, 'Drop files or folders on the list to upload them here.'),
    drop);

  for (const label of main.querySelectorAll('label.button')) {
    label.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); label.click(); }
    });
  }
  const reload = () => load().catch(showError);
  files.addEventListener('change', () => {
    const items = [...files.files].map((file) => ({ file, path: file.name }));
    files.value = '';
    uploadAll(bucket, prefix, items, reload);
  });
  folder.addEventListener('change', () => {
    const items = [...folder.files].map((file) => ({ file, path: file.webkitRelativePath || file.name }));
    folder.value = '';
    uploadAll(bucket, prefix, items, reload);
  });
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', async (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const entries = [...e.dataTransfer.items].map((i) => i.webkitGetAsEntry && i.webkitGetAsEntry()).filter(Boolean);
    let items = [];
    if (entries.length) {
      for (const entry of entries) items.push(...(await filesOfEntry(entry)));
    } else {
      items = [...e.dataTransfer.files].map((file) => ({ file, path: file.name }));
    }
    uploadAll(bucket, prefix, items, reload);
  });
  let timer = null;
  searchBox.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => { search = searchBox.value; pageTokens = [null]; page = 0; reload(); }, 250);
  });
  deletedToggle.addEventListener('change', () => { showDeleted = deletedToggle.checked; reload(); });

  function folderRow(p) {
    const name = p.slice(prefix.length);
    return h('tr', { testid: 'prefix-row', dataset: { prefix: p } },
      h('td', {}),
      h('td', {}, link(`#/b/${encodeURIComponent(bucket)}/${s3.encodeKey(p)}`, name, { class: 'folder' })),
      h('td', {}), h('td', {}));
  }

  function objectRow(o) {
    const box = h('input', { type: 'checkbox', 'aria-label': `Select ${o.key}`, testid: 'object-select' });
    box.checked = selected.has(o.key);
    box.addEventListener('change', () => (box.checked ? selected.add(o.key) : selected.delete(o.key)));
    const name = o.key.slice(prefix.length) || o.key;
    const target = `#/o/${encodeURIComponent(bucket)}/${s3.encodeKey(o.key)}`;
    return h('tr', { testid: 'object-row', dataset: { key: o.key }, class: o.deleted ? 'deleted' : null },
      h('td', {}, o.deleted ? null : box),
      h('td', {}, link(target, name), o.deleted ? h('span', { class: 'badge' }, 'deleted') : null),
      h('td', { class: 'num' }, o.deleted ? '' : bytes(o.size)),
      h('td', {}, when(o.modified)));
  }

  async function load() {
    clear(tbody);
    clear(pager);
    const full = prefix + search;
    if (showDeleted) {
      // Deleted objects are those whose newest version is a delete marker.
      const v = await s3.listVersions(bucket, full, '/');
      for (const p of v.prefixes) tbody.append(folderRow(p));
      const latest = v.entries.filter((e) => e.latest);
      for (const e of latest) tbody.append(objectRow({ ...e, deleted: e.deleteMarker }));
      if (!v.prefixes.length && !latest.length) tbody.append(h('tr', {}, h('td', { colspan: 4, class: 'empty' }, 'Nothing here.')));
      return;
    }
    const res = await s3.listPage(bucket, full, pageTokens[page]);
    for (const p of res.prefixes) tbody.append(folderRow(p));
    for (const o of res.objects) {
      if (o.key === prefix) continue;
      tbody.append(objectRow(o));
    }
    if (!res.prefixes.length && !res.objects.filter((o) => o.key !== prefix).length) {
      tbody.append(h('tr', {}, h('td', { colspan: 4, class: 'empty' }, 'Nothing here.')));
    }
    pageTokens[page + 1] = res.next;
    if (page > 0) pager.append(h('button', { type: 'button', testid: 'page-prev', onclick: () => { page -= 1; reload(); } }, '← Previous'));
    pager.append(h('span', {}, `Page ${page + 1}`));
    if (res.next) pager.append(h('button', { type: 'button', testid: 'page-next', onclick: () => { page += 1; reload(); } }, 'Next →'));
  }
  await load();
}


