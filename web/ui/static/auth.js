// Sign-in for a server with authentication on. The token is kept for the
// tab only (sessionStorage): it goes in the Authorization header of every
// REST call and in the access_token parameter of every websocket.
const KEY = 'fhirsub.token';
const NOTE = 'fhirsub.signin-note';

/** token returns the tab's bearer token, or null (none, or expired). */
export function token() {
  const t = sessionStorage.getItem(KEY);
  if (!t) return null;
  const exp = expiry(t);
  if (exp !== null && exp <= Date.now()) {
    signOut('Your session expired; sign in again.');
    return null;
  }
  return t;
}

/** expiry returns the token's exp claim in ms, or null (not a JWT, no exp). */
export function expiry(t) {
  try {
    const b64 = t.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4)));
    return typeof claims.exp === 'number' ? claims.exp * 1000 : null;
  } catch {
    return null;
  }
}

/** claims returns the token's payload (best effort, unverified). */
export function claims(t) {
  try {
    const b64 = t.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4)));
  } catch {
    return {};
  }
}

/** signIn keeps the token for the tab and restarts the page with it. */
export function signIn(t) {
  sessionStorage.setItem(KEY, t.trim());
  sessionStorage.removeItem(NOTE);
  location.reload();
}

/** signOut forgets the token and restarts the page (showing note). */
export function signOut(note) {
  sessionStorage.removeItem(KEY);
  if (note) sessionStorage.setItem(NOTE, note);
  location.reload();
}

/** note returns (once) why the last session ended. */
export function takeNote() {
  const n = sessionStorage.getItem(NOTE);
  sessionStorage.removeItem(NOTE);
  return n;
}

/** authInfo asks the server what sign-in it needs. */
export async function authInfo() {
  try {
    const r = await fetch('/ui/auth', { headers: { Accept: 'application/json' } });
    if (r.ok) return await r.json();
    // A server that guards even this endpoint wants a token.
    if (r.status === 401) return { required: true, devLogin: false };
  } catch {
    // the server is down: try without a token; the connection indicator says so
  }
  return { required: false, devLogin: false };
}

/** devLogin gets a short-lived development token (server --dev-login). */
export async function devLogin() {
  const r = await fetch('/ui/dev-login', { headers: { Accept: 'application/json', 'X-Fhirsub-Dev-Login': '1' } });
  const body = await r.json().catch(() => null);
  if (!r.ok || !body?.access_token) throw new Error(body?.error_description ?? `development login: HTTP ${r.status}`);
  return body.access_token;
}
