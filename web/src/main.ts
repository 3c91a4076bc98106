/**
 * The dashboard shell: sign-in, the top bar, and the view for whoever signed in — a trader
 * (a user's key), a teacher (a class's teacher key) or the admin (the admin token).
 */
import './styles.css';
import { Api, errorChain } from './api.js';
import type { ViewContext, Unmount } from './context.js';
import { field, h, replace } from './dom.js';
import { forgetToken, storedToken, storeToken, toMe, type Me } from './session.js';
import type { StreamStatus } from './stream.js';

const app = document.getElementById('app')!;
const who = document.getElementById('who')!;
const conn = document.getElementById('conn')!;
const signOutButton = document.getElementById('sign-out') as HTMLButtonElement;
let token: string | undefined = storedToken();
const api = new Api(() => token);
let unmount: Unmount | undefined;

const STATUS_TEXT: Record<StreamStatus, string> = { connecting: 'Connecting…', live: 'Live', reconnecting: 'Reconnecting…', closed: 'Offline' };

function setConnection(status: StreamStatus, detail?: string): void {
  conn.textContent = STATUS_TEXT[status] + (detail && status !== 'live' ? ` (${detail})` : '');
  conn.dataset.status = status;
}

let toastTimer: ReturnType<typeof setTimeout> | undefined;
const toast = h('div', { class: 'toast', role: 'status', 'aria-live': 'polite' });
document.body.append(toast);
function notify(text: string, kind: 'info' | 'error' = 'info'): void {
  toast.textContent = text;
  toast.dataset.kind = kind;
  toast.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (toast.hidden = true), 6_000);
}

function signOut(): void {
  unmount?.();
  unmount = undefined;
  token = undefined;
  forgetToken();
  who.textContent = '';
  conn.textContent = '';
  signOutButton.hidden = true;
  showSignIn();
}
signOutButton.addEventListener('click', signOut);

function showSignIn(message?: string[]): void {
  const input = h('input', { type: 'password', name: 'token', autocomplete: 'off', spellcheck: 'false', required: true, placeholder: 'ptk_…' });
  const errors = h('div', { class: 'error', role: 'alert' }, ...(message ?? []).map((line) => h('div', {}, line)));
  const form = h(
    'form',
    { class: 'card signin', 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title' }, 'Sign in'),
    h('p', { class: 'muted' }, 'Paste an API key (from ', h('code', {}, 'papertrade user create'), '), a teacher key, or the admin token. It is kept in this tab only.'),
    field('Key or token', input),
    errors,
    h('button', { type: 'submit' }, 'Sign in'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void signIn(input.value.trim(), errors);
  });
  replace(app, form);
  input.focus();
}

async function signIn(candidate: string, errors?: HTMLElement): Promise<void> {
  if (!candidate) return;
  token = candidate;
  let me: Me;
  try {
    me = toMe(await api.get<Record<string, unknown>>('/me'));
  } catch (error) {
    token = undefined;
    forgetToken();
    if (errors) replace(errors, ...errorChain(error).map((line) => h('div', {}, line)));
    else showSignIn(errorChain(error));
    return;
  }
  storeToken(candidate);
  await mount(me, candidate);
}

async function mount(me: Me, signedInToken: string): Promise<void> {
  who.textContent = me.kind === 'admin' ? 'Admin' : me.kind === 'teacher' ? `Teacher · class ${me.class_id}` : `${me.name} · ${me.email}`;
  signOutButton.hidden = false;
  const ctx: ViewContext = { api, me, token: signedInToken, setConnection, notify };
  replace(app, h('p', { class: 'muted' }, 'Loading…'));
  // Each role's view is its own chunk: a trader never downloads the admin's code.
  if (me.kind === 'user') unmount = (await import('./trader/trader.js')).mountTrader(app, ctx);
  else if (me.kind === 'teacher') unmount = (await import('./teacher.js')).mountTeacher(app, ctx);
  else unmount = (await import('./admin.js')).mountAdmin(app, ctx);
}


if (token) void signIn(token);
else showSignIn();
