/**
 * Adding members from a roster: a CSV file or pasted text (a header line `name,email`), checked
 * line by line in the page with the command line's own reader (src/core/roster.ts) before
 * anything is sent, then created 500 a call. The keys come back once: the page offers them as
 * a CSV download made in the browser and says plainly that they cannot be shown again.
 */
import { ApiError } from './api.js';
import type { ViewContext } from './context.js';
import { field, h, replace, table } from './dom.js';
import { alertArea, clearArea, downloadLink, fileSafe, showError, showProblem, statusArea } from './kit.js';
import { CSV_BYTES_MAX, csvLine } from '../../src/core/csv.js';
import { checkRoster, type Roster, type RosterMember } from '../../src/core/roster.js';

/** POST /classes/{id}/members takes at most this many members a call (one transaction each). */
export const MEMBERS_PER_CALL = 500;
/** Lines of the roster shown in the preview; the rest are counted. */
const PREVIEW_ROWS = 10;
/** Text longer than this is checked a moment after the typing stops rather than on every key. */
const CHECK_NOW_CHARS = 50_000;
const CHECK_DELAY_MS = 250;

export interface CreatedMember {
  user_id: string;
  name: string;
  email: string;
  api_key: string;
}

/** The keys as the download holds them: name,email,user_id,api_key with a header line. */
export function keysCsv(members: readonly CreatedMember[]): string {
  // A byte order mark first, so that a spreadsheet reads the names as UTF-8; the roster reader ignores it.
  return `\ufeff${csvLine(['name', 'email', 'user_id', 'api_key'])}${members.map((m) => csvLine([m.name, m.email, m.user_id, m.api_key])).join('')}`;
}

const plural = (n: number, one: string, many = `${one}s`): string => `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;

export interface RosterSection {
  el: HTMLElement;
  dispose(): void;
}

/**
 * The "Add members" card of a class. `className` names the download; `onAdded` runs after each
 * batch is created (the class page then reloads its members).
 */
export function rosterSection(ctx: ViewContext, classId: string, className: () => string, onAdded: () => void): RosterSection {
  const fileInput = h('input', { type: 'file', accept: '.csv,text/csv,text/plain' });
  const textarea = h('textarea', { rows: 6, spellcheck: 'false', autocomplete: 'off', placeholder: 'name,email\nAda Lovelace,ada@school.example' });
  const summary = statusArea('roster-summary');
  const problemsBox = h('div', { class: 'roster-problems' });
  const preview = h('div', { class: 'roster-preview' });
  const refusal = alertArea();
  const progress = statusArea();
  const keysBox = h('div', { class: 'keys-list' });
  const addButton = h('button', { type: 'submit' }, 'Add members');
  const disposers = new Set<() => void>();

  let checkTimer: ReturnType<typeof setTimeout> | undefined;
  let current: Roster = { members: [], problems: [] };

  const render = (): void => {
    const text = textarea.value;
    if (text.trim() === '') {
      current = { members: [], problems: [] };
      replace(summary, 'No roster yet: choose a CSV file or paste one. Its first line is the header name,email.');
      problemsBox.replaceChildren();
      preview.replaceChildren();
      return;
    }
    current = checkRoster(text);
    const { members, problems } = current;
    replace(
      summary,
      problems.length === 0
        ? `${plural(members.length, 'member')} ready to add${members.length > MEMBERS_PER_CALL ? ` (sent ${MEMBERS_PER_CALL} at a time)` : ''}.`
        : `${plural(problems.length, 'problem')} in the roster: fix ${problems.length === 1 ? 'it' : 'them'} before adding. Nothing has been sent.`,
    );
    replace(
      problemsBox,
      problems.length === 0
        ? null
        : h(
            'div',
            {},
            h('h3', {}, 'Problems in the roster'),
            h('ul', { class: 'problems' }, ...problems.slice(0, 200).map((p) => h('li', {}, `Line ${p.line}: ${p.message}`))),
            problems.length > 200 ? h('p', { class: 'muted' }, `…and ${plural(problems.length - 200, 'more problem')}.`) : null,
          ),
    );
    replace(
      preview,
      members.length === 0 ? null : h('h3', {}, 'Preview'),
      members.length === 0
        ? null
        : table<RosterMember>(
            [
              { header: 'Line', cell: (m) => m.line, numeric: true },
              { header: 'Name', cell: (m) => m.name },
              { header: 'Email', cell: (m) => m.email },
            ],
            members.slice(0, PREVIEW_ROWS),
            '',
            'Preview of the members to add',
          ),
      members.length > PREVIEW_ROWS ? h('p', { class: 'muted' }, `…and ${plural(members.length - PREVIEW_ROWS, 'more member')}.`) : null,
    );
  };

  const scheduleCheck = (): void => {
    clearTimeout(checkTimer);
    clearArea(refusal);
    if (textarea.value.length <= CHECK_NOW_CHARS) render();
    else checkTimer = setTimeout(render, CHECK_DELAY_MS);
  };
  textarea.addEventListener('input', scheduleCheck);

  fileInput.addEventListener('change', () => {
    const file = fileInput.files?.[0];
    if (!file) return;
    clearArea(refusal);
    if (file.size > CSV_BYTES_MAX) {
      showProblem(refusal, `${file.name} is ${plural(file.size, 'byte')}; a roster may be at most ${plural(CSV_BYTES_MAX, 'byte')}.`);
      return;
    }
    file.text().then(
      (text) => {
        textarea.value = text;
        render();
      },
      (error: unknown) => showError(refusal, error, `Could not read ${file.name}.`),
    );
  });

  /** Offers the keys of one successful addition, until the teacher says they are saved. */
  const offerKeys = (created: readonly CreatedMember[]): void => {
    const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-');
    const link = downloadLink(keysCsv(created), `${fileSafe(className())}-keys-${stamp}.csv`, `Download the keys of ${plural(created.length, 'new member')} (CSV)`);
    let downloaded = false;
    // Leaving the page before the download would lose the keys for good: the browser asks first.
    const warn = (event: BeforeUnloadEvent): void => {
      if (!downloaded) event.preventDefault();
    };
    window.addEventListener('beforeunload', warn);
    link.el.addEventListener('click', () => (downloaded = true));
    const headingId = `keys-${stamp}-${Math.random().toString(36).slice(2, 8)}`;
    const card = h(
      'section',
      { class: 'keys-once', 'aria-labelledby': headingId },
      h('h3', { id: headingId, tabindex: '-1' }, `Keys of ${plural(created.length, 'new member')}: shown only this once`),
      h(
        'p',
        {},
        h('strong', {}, 'Download the keys now. '),
        'papertrade keeps only a fingerprint of each key, so neither this page nor the server can show them again. ',
        'Hand each member their own key. A member who loses theirs gets a new one from the admin.',
      ),
      h('p', { class: 'row' }, link.el),
      h(
        'details',
        {},
        h('summary', {}, 'Show the keys on screen'),
        table<CreatedMember>(
          [
            { header: 'Name', cell: (m) => m.name },
            { header: 'Email', cell: (m) => m.email },
            { header: 'User id', cell: (m) => h('code', {}, m.user_id) },
            { header: 'API key', cell: (m) => h('code', {}, m.api_key) },
          ],
          created,
          '',
          'The new members and their keys',
        ),
      ),
    );
    const dispose = (): void => {
      window.removeEventListener('beforeunload', warn);
      link.revoke();
      card.remove();
      disposers.delete(dispose);
    };
    card.append(h('p', {}, h('button', { type: 'button', class: 'secondary', onclick: dispose }, 'I have saved the keys: hide them')));
    disposers.add(dispose);
    keysBox.prepend(card);
    card.querySelector<HTMLElement>('h3')!.focus();
  };

  const send = async (): Promise<void> => {
    clearTimeout(checkTimer);
    clearArea(refusal);
    render();
    const { members, problems } = current;
    if (problems.length > 0) {
      showProblem(refusal, `The roster has ${plural(problems.length, 'problem')} (listed below the preview): fix ${problems.length === 1 ? 'it' : 'them'} first. Nothing was sent.`);
      return;
    }
    if (members.length === 0) {
      showProblem(refusal, 'The roster has no members yet: give a header line name,email and one line per member.');
      return;
    }
    const created: CreatedMember[] = [];
    try {
      for (let i = 0; i < members.length; i += MEMBERS_PER_CALL) {
        const chunk = members.slice(i, i + MEMBERS_PER_CALL);
        replace(progress, members.length > MEMBERS_PER_CALL ? `Adding members ${i + 1} to ${i + chunk.length} of ${members.length}…` : `Adding ${plural(chunk.length, 'member')}…`);
        const answer = await ctx.api.post<{ members: CreatedMember[] }>(`/classes/${classId}/members`, { members: chunk.map((m) => ({ name: m.name, email: m.email })) });
        created.push(...answer.members);
      }
      replace(progress, `Added ${plural(created.length, 'member')}. Their keys are below, shown only this once.`);
      textarea.value = '';
      fileInput.value = '';
      render();
    } catch (error) {
      const failedAt = members[created.length];
      const lastLine = members[Math.min(created.length + MEMBERS_PER_CALL, members.length) - 1];
      const where = failedAt && lastLine ? `lines ${failedAt.line} to ${lastLine.line}` : 'the roster';
      const lines = [
        created.length === 0
          ? 'No member was added: the server refused the roster.'
          : `${plural(created.length, 'member')} before ${where} were added (their keys are below); ${where} were refused and not added.`,
      ];
      if (created.length > 0) {
        // The created members are committed: the roster keeps only the lines not added yet, so
        // that adding again sends just those.
        const done = new Set(created.map((m) => m.email.toLowerCase()));
        textarea.value = rosterText(members.filter((m) => !done.has(m.email.toLowerCase())));
        render();
        lines.push('The roster below now holds only the members not added yet.');
      }
      const taken = takenEmails(error);
      if (taken.length > 0) {
        const lineOf = new Map(current.members.map((m) => [m.email.toLowerCase(), m.line]));
        lines.push(`Already taken: ${taken.map((e) => `${e}${lineOf.has(e.toLowerCase()) ? ` (line ${lineOf.get(e.toLowerCase())})` : ''}`).join(', ')}. Change or remove those lines and add again.`);
      }
      showError(refusal, error, lines.join(' '));
      replace(progress, '');
    } finally {
      if (created.length > 0) {
        offerKeys(created);
        onAdded();
      }
    }
  };

  const form = h(
    'form',
    { class: 'roster-form stack', 'aria-label': 'Add members from a roster' },
    h(
      'p',
      { class: 'muted' },
      'A CSV with a header line ',
      h('code', {}, 'name,email'),
      ' (either order), then one member a line; quote a field that holds a comma. Every line is checked here before anything is sent.',
    ),
    h('div', { class: 'row top' }, field('Roster file (CSV)', fileInput), field('Roster (CSV text)', textarea, 'choosing a file puts its text here; edit it freely')),
    summary,
    problemsBox,
    preview,
    refusal,
    h('div', { class: 'row' }, addButton),
    progress,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (addButton.disabled) return;
    addButton.disabled = true;
    void send().finally(() => (addButton.disabled = false));
  });
  render();
  const el = h('div', { class: 'roster' }, form, keysBox);
  return {
    el,
    dispose: () => {
      clearTimeout(checkTimer);
      for (const dispose of [...disposers]) dispose();
    },
  };
}

/** The emails a 409 EMAIL_TAKEN names (details.emails, at most 20). */
function takenEmails(error: unknown): string[] {
  if (!(error instanceof ApiError) || error.code !== 'EMAIL_TAKEN') return [];
  const details = error.body.details as { emails?: unknown } | undefined;
  return Array.isArray(details?.emails) ? details.emails.filter((e): e is string => typeof e === 'string') : [];
}

/** A roster of just `members` (header and one line each), for sending what is left after a partial addition. */
function rosterText(members: readonly RosterMember[]): string {
  return `${csvLine(['name', 'email'])}${members.map((m) => csvLine([m.name, m.email])).join('')}`;
}
