// The console's shell: login, the session, the header and navigation, and the routes
// (#/ buckets, #/b/BUCKET/PREFIX folder, #/o/BUCKET/KEY object, #/settings/BUCKET,
// #/users, #/cluster). The secret key typed at login goes to the server once and is never
// kept in the page: the session is an HttpOnly cookie the page cannot read.

import * as s3 from './s3.js';
import { h, clear, showError, clearMessages, field } from './ui.js';
import { bucketsPage, folderPage } from './browser.js';
import { objectPage } from './object.js';
import { settingsPage, usersPage, clusterPage } from './admin.js';

let me = null;

export function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

export function link(href, text, attrs = {}) {
  return h('a', { href, ...attrs }, text);
}

function loginPage(main) {
  const access = h('input', { type: 'text', required: true, autocomplete: 'username', testid: 'login-access-key', autofocus: true });
  const secret = h('input', { type: 'password', required: true, autocomplete: 'current-password', testid: 'login-secret-key' });
  const form = h('form', { class: 'login', 'aria-label': 'Log in' },
    h('h1', {}, 'tessera'),
    h('p', { class: 'hint' }, 'Log in with an access key and its secret: root\'s, or a user\'s.'),
    field('Access key', access), field('Secret key', secret),
    h('button', { type: 'submit', class: 'primary', testid: 'login-submit' }, 'Log in'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearMessages();
    try {
      me = await s3.login(access.value.trim(), secret.value);
      secret.value = '';
      s3.setCsrf(me.csrf);
      renderShell();
      route();
    } catch (err) {
      showError(err);
    }
  });
  main.append(form);
}

function renderShell() {
  const header = document.getElementById('header');
  clear(header);
  if (!me) return;
  const nav = h('nav', { 'aria-label': 'Main' },
    link('#/', 'Buckets', { testid: 'nav-buckets' }),
    me.root ? link('#/users', 'Users', { testid: 'nav-users' }) : null,
    link('#/cluster', 'Cluster', { testid: 'nav-cluster' }));
  header.append(
    h('a', { href: '#/', class: 'brand' }, h('img', { src: 'favicon.svg', alt: '' }), 'tessera'),
    nav,
    h('span', { class: 'who', testid: 'whoami' }, me.accessKey),
    h('button', { type: 'button', testid: 'logout', onclick: async () => {
      try { await s3.logout(); } catch (_) { /* the session may be gone already */ }
      loggedOut();
    } }, 'Log out'));
}

function loggedOut() {
  me = null;
  s3.setCsrf(null);
  renderShell();
  const main = clear(document.querySelector('main'));
  loginPage(main);
}

async function route() {
  const main = clear(document.querySelector('main'));
  if (!me) {
    loginPage(main);
    return;
  }
  const hash = location.hash.replace(/^#/, '') || '/';
  const [, page, ...rest] = hash.split('/');
  const decoded = rest.map(decodeURIComponent);
  for (const a of document.querySelectorAll('#header nav a')) {
    a.toggleAttribute('aria-current', a.getAttribute('href') === `#/${page || ''}` || (page === '' && a.getAttribute('href') === '#/'));
  }
  try {
    if (page === 'b' && decoded.length) await folderPage(main, decoded[0], decoded.slice(1).join('/'));
    else if (page === 'o' && decoded.length > 1) await objectPage(main, decoded[0], decoded.slice(1).join('/'));
    else if (page === 'settings' && decoded.length) await settingsPage(main, decoded[0]);
    else if (page === 'users') await usersPage(main);
    else if (page === 'cluster') await clusterPage(main);
    else await bucketsPage(main);
  } catch (e) {
    showError(e);
  }
}

// On a phone each table row is a card: its cells get their column's name as a label.
function labelCells() {
  for (const table of document.querySelectorAll('main table.list')) {
    const heads = [...table.querySelectorAll('thead th')].map((th) => (th.querySelector('.sr-only') ? '' : th.textContent.trim()));
    for (const tr of table.querySelectorAll('tbody tr')) {
      [...tr.children].forEach((td, i) => {
        if (i > 0 && heads[i] && !td.dataset.label) td.dataset.label = heads[i];
      });
    }
  }
}
new MutationObserver(labelCells).observe(document.querySelector('main'), { childList: true, subtree: true });

window.addEventListener('hashchange', () => { clearMessages(); route(); });
window.addEventListener('tessera-logged-out', () => { if (me) loggedOut(); });

(async () => {
  try {
    me = await s3.session();
    s3.setCsrf(me.csrf);
  } catch (_) {
    me = null;
  }
  renderShell();
  route();
})();
