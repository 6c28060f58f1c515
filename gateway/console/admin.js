// Bucket settings (versioning, policy), users and access keys (root only), and the cluster
// (disks, nodes, gateways, layout, usage, heal).

import * as s3 from './s3.js';
import { h, clear, notify, showError, confirmDialog, bytes, when, field, copyText, actionButton, lineChart } from './ui.js';
import { link } from './app.js';

function cannedPolicy(bucket, kind) {
  const read = ['s3:GetObject'];
  const write = ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'];
  const statements = [{
    Effect: 'Allow', Principal: '*', Action: kind === 'public-read' ? read : write,
    Resource: [`arn:aws:s3:::${bucket}/*`],
  }, {
    Effect: 'Allow', Principal: '*', Action: kind === 'public-read' ? ['s3:ListBucket'] : ['s3:ListBucket', 's3:ListBucketMultipartUploads'],
    Resource: [`arn:aws:s3:::${bucket}`],
  }];
  return JSON.stringify({ Version: '2012-10-17', Statement: statements }, null, 2);
}

export async function settingsPage(main, bucket) {
  main.append(h('nav', { class: 'crumbs', 'aria-label': 'Bucket' }, link('#/', 'Buckets'), ' / ',
    link(`#/b/${encodeURIComponent(bucket)}/`, bucket)), h('h1', {}, `Settings of ${bucket}`));

  const status = await s3.getVersioning(bucket);
  const versioning = h('select', { testid: 'versioning-status', id: 'versioning-status' },
    (status === 'Off' ? ['Off', 'Enabled'] : ['Enabled', 'Suspended']).map((s) => h('option', { value: s, selected: s === status }, s)));
  main.append(h('section', { 'aria-label': 'Versioning' }, h('h2', {}, 'Versioning'),
    h('p', { class: 'hint' }, 'A versioned bucket keeps every version of its objects; once on, versioning can be suspended but not turned off.'),
    h('div', { class: 'inline-form' }, field('Status', versioning), actionButton('Save', async () => {
      if (versioning.value === 'Off') return;
      await s3.putVersioning(bucket, versioning.value);
      notify(`Versioning ${versioning.value.toLowerCase()}`, 'notice');
    }, { testid: 'versioning-save' }))));

  const text = await s3.getPolicy(bucket);
  const editor = h('textarea', { rows: 14, spellcheck: 'false', testid: 'policy-editor', id: 'policy-editor', class: 'code' });
  editor.value = text || '';
  const canned = h('select', { testid: 'policy-canned', id: 'policy-canned' },
    h('option', { value: '' }, 'Custom (edit below)'),
    h('option', { value: 'private' }, 'private'),
    h('option', { value: 'public-read' }, 'public-read'),
    h('option', { value: 'public-read-write' }, 'public-read-write'));
  canned.addEventListener('change', () => {
    if (canned.value === 'private') editor.value = '';
    else if (canned.value) editor.value = cannedPolicy(bucket, canned.value);
  });
  main.append(h('section', { 'aria-label': 'Bucket policy' }, h('h2', {}, 'Bucket policy'),
    h('p', { class: 'hint' }, 'An empty policy (private) removes it. The server checks the document and answers MalformedPolicy with the reason when it is wrong.'),
    field('Canned policy', canned), field('Policy document (JSON)', editor),
    actionButton('Save policy', async () => {
      if (!editor.value.trim()) {
        await s3.deletePolicy(bucket);
        notify('Policy removed: the bucket is private', 'notice');
      } else {
        await s3.putPolicy(bucket, editor.value);
        notify('Policy saved', 'notice');
      }
    }, { testid: 'policy-save' })));

  for (const setting of XML_SETTINGS) main.append(await xmlSetting(bucket, setting));
}

// Bucket settings kept as S3 XML documents: shown as they are, edited as XML, checked by
// the server (its error message is what the user sees).
const XML_SETTINGS = [
  { name: 'object-lock', title: 'Object lock', removable: false,
    hint: 'Default retention of new objects (the bucket must have been created with object lock).' },
  { name: 'lifecycle', title: 'Lifecycle rules', removable: true,
    hint: 'Expiry of objects, noncurrent versions, delete markers and incomplete uploads.' },
  { name: 'encryption', title: 'Default encryption', removable: true,
    hint: 'SSE-S3 or SSE-KMS for new objects that ask for none.' },
  { name: 'cors', title: 'CORS', removable: true, hint: 'Which web origins may call this bucket from a browser.' },
  { name: 'notification', title: 'Event notifications', removable: false,
    hint: 'Webhook targets (arn:tessera:sqs::NAME:webhook) for object events; an empty configuration removes them.' },
];

function pretty(xmlText) {
  // Indents the one-line documents S3 writes, for reading.
  let depth = 0;
  return xmlText.replace(/>\s*</g, '>\n<').split('\n').map((line) => {
    if (/^<\//.test(line)) depth = Math.max(depth - 1, 0);
    const out = '  '.repeat(depth) + line;
    if (/^<[^!?/][^>]*[^/]>$/.test(line) && !/<\/[^>]+>$/.test(line)) depth += 1;
    return out;
  }).join('\n');
}

async function xmlSetting(bucket, setting) {
  let current = null;
  let failure = null;
  try {
    current = await s3.getConfig(bucket, setting.name);
  } catch (e) {
    failure = e;
  }
  const editor = h('textarea', { rows: 8, spellcheck: 'false', class: 'code', testid: `setting-${setting.name}`, id: `setting-${setting.name}` });
  editor.value = current ? pretty(current) : '';
  const state = failure ? `${failure.code}: ${failure.message}` : current ? 'configured' : 'none';
  return h('section', { 'aria-label': setting.title, class: 'setting' },
    h('h2', {}, setting.title, h('span', { class: 'badge', testid: `setting-${setting.name}-state` }, state)),
    h('p', { class: 'hint' }, setting.hint),
    failure ? null : h('details', { open: current ? true : null },
      h('summary', {}, current ? 'Edit the configuration (S3 XML)' : 'Add a configuration (S3 XML)'),
      field(`${setting.title} (XML)`, editor),
      h('div', { class: 'actions' },
        actionButton('Save', async () => {
          await s3.putConfig(bucket, setting.name, editor.value);
          notify(`${setting.title} saved`, 'notice');
        }, { testid: `setting-${setting.name}-save` }),
        setting.removable && current ? actionButton('Remove', async () => {
          if (!(await confirmDialog(`Remove the ${setting.title.toLowerCase()} of ${bucket}?`))) return;
          await s3.deleteConfig(bucket, setting.name);
          editor.value = '';
          notify(`${setting.title} removed`, 'notice');
        }, { class: 'danger' }) : null)));
}

export async function usersPage(main) {
  const name = h('input', { type: 'text', required: true, testid: 'user-create-name', autocomplete: 'off' });
  const policy = h('select', { testid: 'user-create-policy' },
    ['readwrite', 'readonly', 'writeonly', 'owner'].map((p) => h('option', { value: p }, p)));
  const scopes = h('input', { type: 'text', testid: 'user-create-buckets', placeholder: 'all buckets', autocomplete: 'off' });
  const created = h('div', { 'aria-live': 'polite' });
  const form = h('form', { class: 'inline-form', 'aria-label': 'Add a user' },
    field('User name', name), field('Policy', policy), field('Buckets (comma-separated, empty: all)', scopes),
    h('button', { type: 'submit', testid: 'user-create-submit' }, 'Add user'));
  const tbody = h('tbody');
  main.append(h('h1', {}, 'Users'), form, created,
    h('table', { class: 'list' }, h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'User'),
      h('th', { scope: 'col' }, 'Policy'), h('th', { scope: 'col' }, 'Buckets'), h('th', { scope: 'col' }, 'State'),
      h('th', { scope: 'col' }, 'Access keys'), h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')))), tbody));

  function showSecret(k) {
    clear(created);
    const secret = h('input', { type: 'text', readonly: true, value: k.secret_key, testid: 'user-secret', class: 'wide', 'aria-label': 'Secret key' });
    created.append(h('div', { class: 'secret-box', role: 'status' },
      h('p', {}, `Access key of ${k.name}: `, h('code', { testid: 'user-access-key' }, k.access_key)),
      h('p', {}, 'Secret key (shown this once; copy it now):'),
      h('div', { class: 'inline-form' }, secret, h('button', { type: 'button', onclick: () => copyText(secret.value, secret) }, 'Copy'))));
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      const buckets = scopes.value.split(',').map((b) => b.trim()).filter(Boolean);
      const k = await s3.admin('POST', 'users', { name: name.value.trim(), policy: policy.value, bucket: buckets });
      showSecret(k);
      name.value = '';
      scopes.value = '';
      await load();
    } catch (err) { showError(err); }
  });

  async function load() {
    const { users } = await s3.admin('GET', 'users');
    clear(tbody);
    if (!users.length) tbody.append(h('tr', {}, h('td', { colspan: 6, class: 'empty' }, 'No users yet: only root.')));
    for (const u of users) {
      const keys = h('ul', { class: 'keys' }, u.access_keys.map((k) => h('li', {}, h('code', {}, k),
        actionButton('Remove', async () => {
          if (!(await confirmDialog(`Remove the access key ${k}?`))) return;
          await s3.admin('DELETE', 'users/keys', { name: u.name, access_key: k });
          await load();
        }, { class: 'link danger', 'aria-label': `Remove key ${k}` }))));
      tbody.append(h('tr', { testid: 'user-row', dataset: { name: u.name } },
        h('td', {}, u.name), h('td', {}, [u.policy, ...u.policies].join(', ')),
        h('td', {}, u.buckets.length ? u.buckets.join(', ') : 'all'),
        h('td', {}, u.enabled ? 'enabled' : h('span', { class: 'badge' }, 'disabled')),
        h('td', {}, keys),
        h('td', { class: 'actions' },
          actionButton('Add key', async () => { showSecret(await s3.admin('POST', 'users/keys', { name: u.name })); await load(); }),
          actionButton(u.enabled ? 'Disable' : 'Enable', async () => {
            await s3.admin('POST', u.enabled ? 'users/disable' : 'users/enable', { name: u.name });
            await load();
          }, { testid: u.enabled ? 'user-disable' : 'user-enable' }),
          actionButton('Remove', async () => {
            if (!(await confirmDialog(`Remove the user ${u.name}? Its buckets pass to root.`))) return;
            await s3.admin('DELETE', 'users', { name: u.name });
            await load();
          }, { class: 'danger', testid: 'user-remove' }))));
    }
  }
  await load();
}

function diskState(d) {
  if (d.state) return typeof d.state === 'string' ? d.state : Object.keys(d.state)[0];
  return 'unknown';
}

function keyValues(obj) {
  return h('table', { class: 'details' }, h('tbody', {}, Object.entries(obj || {})
    .filter(([, v]) => v === null || typeof v !== 'object')
    .map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, k.replace(/_/g, ' ')), h('td', {}, v === null ? '—' : String(v))))));
}

export async function clusterPage(main) {
  const body = h('div');
  main.append(h('h1', {}, 'Cluster'), body);
  let timer = null;
  async function render() {
    const [info, stats] = await Promise.all([s3.admin('GET', 'info'), s3.stats()]);
    clear(body);
    const l = info.layout;
    body.append(h('p', {}, `tessera ${info.version}, up ${Math.round(info.uptime_secs / 60)} min. `,
      `Erasure layout: ${l.disks} disks in ${l.sets} set(s) of ${l.set_size}, ${l.data} data + ${l.parity} parity shards per chunk.`));
    const disks = h('tbody');
    for (const d of info.disks) {
      const state = diskState(d);
      disks.append(h('tr', { testid: 'cluster-disk-row', dataset: { path: d.path, state }, class: state === 'online' ? null : 'bad' },
        h('td', {}, d.path), h('td', {}, String(d.set)),
        h('td', {}, state, d.reason ? h('div', { class: 'hint' }, d.reason) : null),
        h('td', { class: 'num' }, d.space ? bytes(d.space.free) : '—'),
        h('td', { class: 'num' }, d.space ? bytes(d.space.total) : '—')));
    }
    body.append(h('section', { 'aria-label': 'Disks' }, h('h2', {}, 'Disks'),
      h('table', { class: 'list' }, h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Disk'), h('th', { scope: 'col' }, 'Set'),
        h('th', { scope: 'col' }, 'State'), h('th', { scope: 'col' }, 'Free'), h('th', { scope: 'col' }, 'Size'))), disks)));
    const table = (label, heads, rows) => h('section', { 'aria-label': label }, h('h2', {}, label),
      h('table', { class: 'list' }, h('thead', {}, h('tr', {}, heads.map((x) => h('th', { scope: 'col' }, x)))), h('tbody', {}, rows)));
    if (info.nodes && info.nodes.length) {
      body.append(table('Nodes', ['Node', 'State', 'Disks', 'Latency', 'Error'], info.nodes.map((n) =>
        h('tr', { testid: 'cluster-node-row', dataset: { url: n.url, state: n.state }, class: n.state === 'online' ? null : 'bad' },
          h('td', {}, n.url), h('td', {}, n.state), h('td', {}, n.positions.join(', ')),
          h('td', { class: 'num' }, n.latency_ms === null ? '—' : `${n.latency_ms.toFixed(1)} ms`),
          h('td', {}, n.error || '')))));
    }
    if (info.gateways) {
      body.append(table('Gateways', ['Gateway', 'Role', 'Address', 'Alive', 'Jobs'], info.gateways.map((g) =>
        h('tr', { testid: 'cluster-gateway-row', dataset: { role: g.role } },
          h('td', {}, g.who), h('td', {}, g.role), h('td', {}, g.url || ''), h('td', {}, g.alive ? 'yes' : 'no'),
          h('td', {}, g.jobs.join(', '))))));
    } else if (info.gateways_error) {
      body.append(h('p', { class: 'message error' }, `Gateways: ${info.gateways_error}`));
    }
    const pts = stats.points;
    const series = (name, color, key) => ({ name, color, values: pts.map((p) => ({ t: p.atMs, v: p[key] })) });
    const rate = (v) => `${v < 10 ? v.toFixed(2) : Math.round(v)}/s`;
    const ms = (v) => `${v < 10 ? v.toFixed(2) : Math.round(v)} ms`;
    body.append(h('section', { 'aria-label': 'Activity', class: 'charts' }, h('h2', {}, 'Activity of this gateway, last hour'),
      h('div', { class: 'chart-grid' },
        lineChart('Requests', [series('requests', '#2f6f9f', 'requestsPerSec')], rate),
        lineChart('Bytes', [series('in', '#1a7f37', 'receivedPerSec'), series('out', '#b35900', 'sentPerSec')], (v) => `${bytes(v)}/s`),
        lineChart('Latency', [series('mean', '#2f6f9f', 'latencyMeanMs'), series('p95', '#b42318', 'latencyP95Ms')], ms))));
    const u = info.usage;
    body.append(h('section', { 'aria-label': 'Usage' }, h('h2', {}, 'Usage'), h('table', { class: 'details', testid: 'cluster-usage' }, h('tbody', {},
      h('tr', {}, h('th', { scope: 'row' }, 'Buckets'), h('td', {}, String(u.buckets))),
      h('tr', {}, h('th', { scope: 'row' }, 'Objects'), h('td', {}, String(u.objects))),
      h('tr', {}, h('th', { scope: 'row' }, 'Versions'), h('td', {}, String(u.versions))),
      h('tr', {}, h('th', { scope: 'row' }, 'Data as clients see it'), h('td', {}, bytes(u.logical_bytes))),
      h('tr', {}, h('th', { scope: 'row' }, 'Stored chunks'), h('td', {}, `${u.chunks} (${bytes(u.chunk_bytes)})`)),
      h('tr', {}, h('th', { scope: 'row' }, 'Dedup ratio'), h('td', {}, `${info.dedup_ratio.toFixed(2)}x`)),
      h('tr', {}, h('th', { scope: 'row' }, 'Compression ratio'), h('td', {}, `${info.compression_ratio.toFixed(2)}x`))))));
    const heal = info.heal;
    body.append(h('section', { 'aria-label': 'Heal' }, h('h2', {}, 'Heal'),
      h('p', {}, `Queue: ${heal.queue} chunk(s) waiting; ${heal.queue_healed} healed from the queue since start.`),
      h('div', { testid: 'heal-progress' }, keyValues(heal.pass)),
      info.scrub ? h('div', {}, h('h3', {}, 'Last scan'), keyValues(info.scrub)) : null,
      actionButton('Start heal', async () => {
        await s3.admin('POST', 'heal');
        notify('Heal pass started', 'notice');
        await render();
      }, { testid: 'heal-start' })));
    body.append(h('p', { class: 'hint' }, `Updated ${when(new Date().toISOString())}; refreshes every 5 s.`));
  }
  await render();
  timer = setInterval(() => {
    if (!body.isConnected) { clearInterval(timer); return; }
    render().catch(showError);
  }, 5000);
}
