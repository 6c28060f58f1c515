// One object: its preview, details (size, ETag, type, metadata, checksums, encryption,
// retention, legal hold), editable tags, share link, download, delete, and its versions
// (download, restore, delete).

import * as s3 from './s3.js';
import { h, clear, notify, showError, confirmDialog, bytes, when, copyText, actionButton } from './ui.js';
import { go, link } from './app.js';

const UNITS = { seconds: 1, minutes: 60, hours: 3600, days: 86400 };

function preview(bucket, key, versionId, type) {
  const url = s3.objectUrl(bucket, key, versionId);
  const box = h('section', { class: 'preview', 'aria-label': 'Preview', testid: 'object-preview' });
  if (type.startsWith('image/')) box.append(h('img', { src: url, alt: `Preview of ${key}` }));
  else if (type.startsWith('video/')) box.append(h('video', { src: url, controls: true }));
  else if (type.startsWith('audio/')) box.append(h('audio', { src: url, controls: true }));
  else if (type === 'application/pdf') box.append(h('iframe', { src: url, title: `Preview of ${key}` }));
  else if (type.startsWith('text/') || type.includes('json') || type.includes('xml') || type.includes('yaml')) {
    const pre = h('pre', {}, 'Loading…');
    box.append(pre);
    s3.readText(bucket, key, versionId).then((text) => {
      if (type.includes('json')) {
        try { text = JSON.stringify(JSON.parse(text), null, 2); } catch (_) { /* a partial or odd document shows as it is */ }
      }
      pre.textContent = text;
    }).catch((e) => { pre.textContent = e.message; });
  } else {
    return null;
  }
  return box;
}

function detailsTable(headers) {
  const rows = [];
  const add = (label, value) => { if (value) rows.push(h('tr', {}, h('th', { scope: 'row' }, label), h('td', {}, value))); };
  add('Size', `${bytes(Number(headers.get('content-length')))} (${headers.get('content-length')} bytes)`);
  add('ETag', headers.get('etag'));
  add('Content type', headers.get('content-type'));
  add('Last modified', when(headers.get('last-modified')));
  add('Version', headers.get('x-amz-version-id'));
  add('Storage class', headers.get('x-amz-storage-class') || 'STANDARD');
  const sse = headers.get('x-amz-server-side-encryption');
  const ssec = headers.get('x-amz-server-side-encryption-customer-algorithm');
  const kmsKey = headers.get('x-amz-server-side-encryption-aws-kms-key-id');
  add('Encryption', ssec ? `SSE-C (${ssec})` : sse ? `${sse}${kmsKey ? ` (key ${kmsKey})` : ''}` : 'none');
  for (const [name, value] of headers.entries()) {
    if (name.startsWith('x-amz-checksum-') && name !== 'x-amz-checksum-type') add(`Checksum ${name.slice(15).toUpperCase()}`, value);
  }
  add('Retention', headers.get('x-amz-object-lock-mode')
    ? `${headers.get('x-amz-object-lock-mode')} until ${when(headers.get('x-amz-object-lock-retain-until-date'))}` : '');
  add('Legal hold', headers.get('x-amz-object-lock-legal-hold'));
  add('Expires (lifecycle)', headers.get('x-amz-expiration'));
  for (const [name, value] of headers.entries()) {
    if (name.startsWith('x-amz-meta-')) add(`Metadata ${name.slice(11)}`, value);
  }
  return h('table', { class: 'details', testid: 'object-details' }, h('tbody', {}, rows));
}

function tagsEditor(bucket, key, versionId, tags) {
  const list = h('div', { class: 'tags' });
  const addRow = (t = { key: '', value: '' }) => {
    const k = h('input', { type: 'text', value: t.key, 'aria-label': 'Tag key', class: 'tag-key' });
    const v = h('input', { type: 'text', value: t.value, 'aria-label': 'Tag value', class: 'tag-value' });
    const row = h('div', { class: 'tag', testid: 'tag-row' }, k, v,
      h('button', { type: 'button', class: 'link', 'aria-label': 'Remove tag', onclick: () => row.remove() }, '×'));
    list.append(row);
  };
  tags.forEach(addRow);
  return h('section', { 'aria-label': 'Tags' }, h('h2', {}, 'Tags'), list,
    h('div', { class: 'actions' },
      h('button', { type: 'button', onclick: () => addRow() }, 'Add tag'),
      actionButton('Save tags', async () => {
        const current = [...list.querySelectorAll('.tag')].map((r) => ({
          key: r.querySelector('.tag-key').value.trim(),
          value: r.querySelector('.tag-value').value,
        })).filter((t) => t.key);
        await s3.putTags(bucket, key, versionId, current);
        notify('Tags saved', 'notice');
      }, { testid: 'tags-save' })));
}

function sharePanel(bucket, key, versionId) {
  const amount = h('input', { type: 'number', min: 1, value: 1, testid: 'share-expiry', 'aria-label': 'Share link lasts' });
  const unit = h('select', { testid: 'share-expiry-unit', 'aria-label': 'Unit' },
    Object.keys(UNITS).map((u) => h('option', { value: u, selected: u === 'hours' }, u)));
  const url = h('input', { type: 'text', readonly: true, testid: 'share-url', 'aria-label': 'Share link', class: 'wide' });
  const copy = h('button', { type: 'button', testid: 'share-copy', disabled: true, onclick: () => copyText(url.value, url) }, 'Copy');
  const make = actionButton('Make link', async () => {
    const secs = Math.round(Number(amount.value) * UNITS[unit.value]);
    url.value = await s3.presign(bucket, key, versionId, secs);
    copy.disabled = false;
  }, { testid: 'share-create' });
  return h('section', { class: 'share', 'aria-label': 'Share link', testid: 'share-panel' },
    h('h2', {}, 'Share link'),
    h('p', { class: 'hint' }, 'Anyone with the link can download this object until it expires (7 days at most).'),
    h('div', { class: 'inline-form' }, amount, unit, make), h('div', { class: 'inline-form' }, url, copy));
}

async function versionsSection(bucket, key, reload) {
  const { entries } = await s3.listVersions(bucket, key);
  const mine = entries.filter((e) => e.key === key);
  if (mine.length <= 1 && (!mine.length || mine[0].versionId === 'null')) return null;
  const tbody = h('tbody');
  for (const v of mine) {
    tbody.append(h('tr', { testid: 'version-row', dataset: { versionId: v.versionId } },
      h('td', {}, h('code', {}, v.versionId), v.latest ? h('span', { class: 'badge' }, 'current') : null,
        v.deleteMarker ? h('span', { class: 'badge' }, 'delete marker') : null),
      h('td', {}, when(v.modified)),
      h('td', { class: 'num' }, v.deleteMarker ? '' : bytes(v.size)),
      h('td', { class: 'actions' },
        v.deleteMarker ? null : h('a', { href: s3.downloadUrl(bucket, key, v.versionId), class: 'button', download: '' }, 'Download'),
        v.latest || v.deleteMarker ? null : actionButton('Restore', async () => {
          await s3.restoreVersion(bucket, key, v.versionId);
          notify('Version restored as the current one', 'notice');
          await reload();
        }, { testid: 'version-restore' }),
        actionButton('Delete', async () => {
          if (!(await confirmDialog(`Delete version ${v.versionId} for good?`))) return;
          await s3.deleteObject(bucket, key, v.versionId);
          await reload();
        }, { class: 'danger', testid: 'version-delete' }))));
  }
  return h('section', { 'aria-label': 'Versions' }, h('h2', {}, 'Versions'),
    h('table', { class: 'list' }, h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Version'),
      h('th', { scope: 'col' }, 'Modified'), h('th', { scope: 'col' }, 'Size'), h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')))), tbody));
}

export async function objectPage(main, bucket, key) {
  const folder = key.includes('/') ? key.slice(0, key.lastIndexOf('/') + 1) : '';
  const back = `#/b/${encodeURIComponent(bucket)}/${s3.encodeKey(folder)}`;
  const crumbs = h('nav', { class: 'crumbs', 'aria-label': 'Folder' },
    link('#/', 'Buckets'), ' / ', link(`#/b/${encodeURIComponent(bucket)}/`, bucket));
  const parts = key.split('/');
  parts.slice(0, -1).forEach((p, i) => {
    crumbs.append(' / ', link(`#/b/${encodeURIComponent(bucket)}/${s3.encodeKey(parts.slice(0, i + 1).join('/') + '/')}`, p));
  });
  const body = h('div', { class: 'object' });
  main.append(crumbs, h('h1', { class: 'key' }, parts[parts.length - 1] || key), body);

  async function render() {
    clear(body);
    let headers = null;
    try {
      headers = await s3.head(bucket, key);
    } catch (e) {
      // A deleted object (its newest version a delete marker) still has versions to show.
      if (e.status !== 404) throw e;
    }
    const share = h('div', { hidden: true });
    const actions = h('div', { class: 'toolbar' });
    if (headers) {
      actions.append(
        h('a', { href: s3.downloadUrl(bucket, key), class: 'button primary', download: '', testid: 'object-download' }, 'Download'),
        h('button', { type: 'button', testid: 'object-share', onclick: () => { share.hidden = !share.hidden; } }, 'Share'),
        actionButton('Delete', async () => {
          if (!(await confirmDialog(`Delete ${key}?`))) return;
          await s3.deleteObject(bucket, key);
          notify(`${key} deleted`, 'notice');
          go(back);
        }, { class: 'danger', testid: 'object-delete' }));
      share.append(sharePanel(bucket, key, null));
    } else {
      body.append(h('p', { class: 'empty' }, 'This object is deleted; its versions are below.'));
    }
    body.append(actions, share);
    if (headers) {
      const p = preview(bucket, key, null, (headers.get('content-type') || '').toLowerCase());
      const grid = h('div', { class: 'object-grid' }, detailsTable(headers), p);
      body.append(grid);
      try {
        body.append(tagsEditor(bucket, key, null, await s3.getTags(bucket, key)));
      } catch (e) {
        body.append(h('p', { class: 'hint' }, `Tags: ${e.message}`));
      }
    }
    const versions = await versionsSection(bucket, key, () => render().catch(showError));
    if (versions) body.append(versions);
  }
  await render();
}
