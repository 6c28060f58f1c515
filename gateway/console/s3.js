// The console's client: the server's own S3 API and admin API, reached through
// /console/api/s3/ and /console/api/admin/, which sign each request as the user logged in.
// Every error shown is the server's: S3's <Error> documents and the console's JSON errors
// both become an ApiError with the server's code and message.

let csrf = null;

export function setCsrf(token) {
  csrf = token;
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

export function parseXml(text) {
  return new DOMParser().parseFromString(text, 'application/xml');
}

function text(node, name) {
  const el = node.getElementsByTagName(name)[0];
  return el ? el.textContent : '';
}

function children(node, name) {
  return Array.from(node.children).filter((c) => c.localName === name);
}

async function errorOf(resp) {
  const body = await resp.text().catch(() => '');
  const type = resp.headers.get('content-type') || '';
  if (type.includes('json')) {
    try {
      const j = JSON.parse(body);
      return new ApiError(resp.status, j.code, j.message);
    } catch (_) { /* fall through */ }
  }
  if (body.includes('<Error>')) {
    const doc = parseXml(body);
    return new ApiError(resp.status, text(doc, 'Code'), text(doc, 'Message'));
  }
  return new ApiError(resp.status, String(resp.status), body || resp.statusText);
}

export function encodeKey(key) {
  return key.split('/').map(encodeURIComponent).join('/');
}

export function s3Url(bucket, key, query) {
  let url = '/console/api/s3/';
  if (bucket) url += encodeURIComponent(bucket);
  if (key !== undefined && key !== null) url += '/' + encodeKey(key);
  if (query) {
    const q = new URLSearchParams(query).toString();
    if (q) url += '?' + q;
  }
  return url;
}

async function call(method, url, { headers = {}, body } = {}) {
  const h = { ...headers };
  if (method !== 'GET' && method !== 'HEAD') h['x-tessera-csrf'] = csrf || '';
  const resp = await fetch(url, { method, headers: h, body, credentials: 'same-origin' });
  if (resp.status === 401) window.dispatchEvent(new Event('tessera-logged-out'));
  if (!resp.ok) throw await errorOf(resp);
  return resp;
}

async function xml(method, url, opts) {
  const resp = await call(method, url, opts);
  return parseXml(await resp.text());
}

// --- the console's own endpoints ---------------------------------------------------------

export async function session() {
  const resp = await fetch('/console/api/session', { credentials: 'same-origin' });
  if (!resp.ok) throw await errorOf(resp);
  return resp.json();
}

export async function login(accessKey, secretKey) {
  const resp = await fetch('/console/api/login', {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json', 'x-tessera-csrf': 'login' },
    body: JSON.stringify({ accessKey, secretKey }),
  });
  if (!resp.ok) throw await errorOf(resp);
  return resp.json();
}

export async function logout() {
  await call('POST', '/console/api/logout');
}

export async function presign(bucket, key, versionId, expiresSecs) {
  const resp = await call('POST', '/console/api/presign', {
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ bucket, key, versionId: versionId || null, expiresSecs }),
  });
  return (await resp.json()).url;
}

// Objects and bytes of each bucket the user may list: { name: {objects, bytes, ...} }.
export async function bucketUsage() {
  const resp = await call('GET', '/console/api/usage');
  return resp.json();
}

// This gateway's request rates and latencies over the last hour: {intervalSecs, points}.
export async function stats() {
  const resp = await call('GET', '/console/api/stats');
  return resp.json();
}

// --- buckets -----------------------------------------------------------------------------

export async function listBuckets() {
  const doc = await xml('GET', s3Url());
  return Array.from(doc.getElementsByTagName('Bucket')).map((b) => ({
    name: text(b, 'Name'),
    created: text(b, 'CreationDate'),
  }));
}

export async function createBucket(name, { objectLock = false } = {}) {
  const headers = objectLock ? { 'x-amz-bucket-object-lock-enabled': 'true' } : {};
  await call('PUT', s3Url(name), { headers });
}

export async function deleteBucket(name) {
  await call('DELETE', s3Url(name));
}

export async function getVersioning(bucket) {
  const doc = await xml('GET', s3Url(bucket, null, { versioning: '' }));
  return text(doc, 'Status') || 'Off';
}

export async function putVersioning(bucket, status) {
  const body = `<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>${status}</Status></VersioningConfiguration>`;
  await call('PUT', s3Url(bucket, null, { versioning: '' }), {
    headers: { 'content-type': 'application/xml' },
    body,
  });
}

// The bucket policy's text, or null when the bucket has none.
export async function getPolicy(bucket) {
  try {
    const resp = await call('GET', s3Url(bucket, null, { policy: '' }));
    return await resp.text();
  } catch (e) {
    if (e.code === 'NoSuchBucketPolicy') return null;
    throw e;
  }
}

export async function putPolicy(bucket, text) {
  await call('PUT', s3Url(bucket, null, { policy: '' }), {
    headers: { 'content-type': 'application/json' },
    body: text,
  });
}

export async function deletePolicy(bucket) {
  await call('DELETE', s3Url(bucket, null, { policy: '' }));
}

// A bucket sub-resource's XML document (lifecycle, cors, encryption, notification,
// object-lock), or null when the bucket has none.
const ABSENT = ['NoSuchLifecycleConfiguration', 'NoSuchCORSConfiguration',
  'ServerSideEncryptionConfigurationNotFoundError', 'ObjectLockConfigurationNotFoundError'];

export async function getConfig(bucket, name) {
  try {
    const resp = await call('GET', s3Url(bucket, null, { [name]: '' }));
    return await resp.text();
  } catch (e) {
    if (ABSENT.includes(e.code)) return null;
    throw e;
  }
}

export async function putConfig(bucket, name, xmlText) {
  await call('PUT', s3Url(bucket, null, { [name]: '' }), {
    headers: { 'content-type': 'application/xml' },
    body: xmlText,
  });
}

export async function deleteConfig(bucket, name) {
  await call('DELETE', s3Url(bucket, null, { [name]: '' }));
}

// --- objects -----------------------------------------------------------------------------

// One page of a folder: sub-folders (common prefixes) and objects.
export async function listPage(bucket, prefix, token, maxKeys = 200) {
  const query = { 'list-type': '2', delimiter: '/', prefix, 'max-keys': String(maxKeys) };
  if (token) query['continuation-token'] = token;
  const doc = await xml('GET', s3Url(bucket, null, query));
  const root = doc.documentElement;
  return {
    prefixes: children(root, 'CommonPrefixes').map((p) => text(p, 'Prefix')),
    objects: children(root, 'Contents').map((c) => ({
      key: text(c, 'Key'),
      size: Number(text(c, 'Size')),
      modified: text(c, 'LastModified'),
      etag: text(c, 'ETag'),
    })),
    next: text(root, 'IsTruncated') === 'true' ? text(root, 'NextContinuationToken') : null,
  };
}

// Versions and delete markers under `prefix` (one page of up to 1000), newest first per key.
export async function listVersions(bucket, prefix, delimiter) {
  const query = { versions: '', prefix };
  if (delimiter) query.delimiter = delimiter;
  const doc = await xml('GET', s3Url(bucket, null, query));
  const root = doc.documentElement;
  const entries = [];
  for (const el of Array.from(root.children)) {
    if (el.localName !== 'Version' && el.localName !== 'DeleteMarker') continue;
    entries.push({
      key: text(el, 'Key'),
      versionId: text(el, 'VersionId'),
      latest: text(el, 'IsLatest') === 'true',
      modified: text(el, 'LastModified'),
      size: Number(text(el, 'Size') || 0),
      deleteMarker: el.localName === 'DeleteMarker',
    });
  }
  return {
    entries,
    prefixes: children(root, 'CommonPrefixes').map((p) => text(p, 'Prefix')),
  };
}

export async function head(bucket, key, versionId) {
  const query = versionId ? { versionId } : null;
  const resp = await call('HEAD', s3Url(bucket, key, query), {
    headers: { 'x-amz-checksum-mode': 'ENABLED' },
  });
  return resp.headers;
}

export async function getTags(bucket, key, versionId) {
  const query = { tagging: '' };
  if (versionId) query.versionId = versionId;
  const doc = await xml('GET', s3Url(bucket, key, query));
  return Array.from(doc.getElementsByTagName('Tag')).map((t) => ({
    key: text(t, 'Key'),
    value: text(t, 'Value'),
  }));
}

function escapeXml(s) {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export async function putTags(bucket, key, versionId, tags) {
  const query = { tagging: '' };
  if (versionId) query.versionId = versionId;
  const set = tags
    .map((t) => `<Tag><Key>${escapeXml(t.key)}</Key><Value>${escapeXml(t.value)}</Value></Tag>`)
    .join('');
  await call('PUT', s3Url(bucket, key, query), {
    headers: { 'content-type': 'application/xml' },
    body: `<Tagging><TagSet>${set}</TagSet></Tagging>`,
  });
}

export async function deleteObject(bucket, key, versionId) {
  await call('DELETE', s3Url(bucket, key, versionId ? { versionId } : null));
}

export async function putEmpty(bucket, key) {
  await call('PUT', s3Url(bucket, key), { body: new Blob([]) });
}

// An older version becomes the current one again: copied onto its own key, as S3 does.
export async function restoreVersion(bucket, key, versionId) {
  const source = `/${bucket}/${encodeKey(key)}?versionId=${encodeURIComponent(versionId)}`;
  await call('PUT', s3Url(bucket, key), { headers: { 'x-amz-copy-source': source } });
}

export function downloadUrl(bucket, key, versionId) {
  const name = key.split('/').pop() || 'download';
  const query = {
    'response-content-disposition': `attachment; filename*=UTF-8''${encodeURIComponent(name)}`,
  };
  if (versionId) query.versionId = versionId;
  return s3Url(bucket, key, query);
}

export function objectUrl(bucket, key, versionId) {
  return s3Url(bucket, key, versionId ? { versionId } : null);
}

// Text of the first `limit` bytes of an object, for previews.
export async function readText(bucket, key, versionId, limit = 65536) {
  const resp = await call('GET', objectUrl(bucket, key, versionId), {
    headers: { range: `bytes=0-${limit - 1}` },
  });
  return resp.text();
}

// --- uploads -----------------------------------------------------------------------------

// Files at or above this size go up as multipart uploads, in parts of PART_SIZE.
export const MULTIPART_THRESHOLD = 16 * 1024 * 1024;
export const PART_SIZE = 8 * 1024 * 1024;

// A PUT with upload progress (fetch cannot report it). Resolves to the XHR; `cancel.abort`
// is set to a function that stops it.
function putXhr(url, body, headers, onProgress, cancel) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', url);
    xhr.setRequestHeader('x-tessera-csrf', csrf || '');
    for (const [k, v] of Object.entries(headers)) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(xhr);
        return;
      }
      const fake = new Response(xhr.responseText, {
        status: xhr.status,
        headers: { 'content-type': xhr.getResponseHeader('content-type') || '' },
      });
      errorOf(fake).then(reject);
    };
    xhr.onerror = () => reject(new ApiError(0, 'NetworkError', 'The connection to the server failed.'));
    xhr.onabort = () => reject(new ApiError(0, 'Cancelled', 'Upload cancelled.'));
    cancel.abort = () => xhr.abort();
    xhr.send(body);
  });
}

// Uploads `file` to `key`, calling onProgress(bytesSent). `cancel.cancelled` set and
// `cancel.abort()` called stop it; a multipart upload is then aborted on the server.
export async function upload(bucket, key, file, onProgress, cancel) {
  const type = file.type || 'application/octet-stream';
  if (file.size < MULTIPART_THRESHOLD) {
    await putXhr(s3Url(bucket, key), file, { 'content-type': type }, onProgress, cancel);
    return;
  }
  const created = await xml('POST', s3Url(bucket, key, { uploads: '' }), {
    headers: { 'content-type': type },
  });
  const uploadId = text(created, 'UploadId');
  const parts = [];
  try {
    for (let offset = 0, n = 1; offset < file.size; offset += PART_SIZE, n += 1) {
      if (cancel.cancelled) throw new ApiError(0, 'Cancelled', 'Upload cancelled.');
      const blob = file.slice(offset, offset + PART_SIZE);
      const xhr = await putXhr(
        s3Url(bucket, key, { partNumber: String(n), uploadId }),
        blob,
        {},
        (sent) => onProgress(offset + sent),
        cancel,
      );
      parts.push(`<Part><PartNumber>${n}</PartNumber><ETag>${escapeXml(xhr.getResponseHeader('etag') || '')}</ETag></Part>`);
    }
    await call('POST', s3Url(bucket, key, { uploadId }), {
      headers: { 'content-type': 'application/xml' },
      body: `<CompleteMultipartUpload>${parts.join('')}</CompleteMultipartUpload>`,
    });
  } catch (e) {
    await call('DELETE', s3Url(bucket, key, { uploadId })).catch(() => {});
    throw e;
  }
}

// --- admin API (root only) ---------------------------------------------------------------

export async function admin(method, path, query) {
  let url = '/console/api/admin/' + path;
  if (query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      for (const one of Array.isArray(v) ? v : [v]) params.append(k, one);
    }
    url += '?' + params.toString();
  }
  const resp = await call(method, url);
  const type = resp.headers.get('content-type') || '';
  return type.includes('json') ? resp.json() : null;
}
