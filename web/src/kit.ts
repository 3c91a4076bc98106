/**
 * Small pieces the teacher's and the admin's views share: error and status regions, tabs that
 * follow the WAI-ARIA pattern, a table whose rows are updated in place, a poller, and what a
 * key shown once needs (a download made in the page, nothing sent anywhere).
 */
import { errorChain } from './api.js';
import { h, replace, type Column } from './dom.js';

type Child = Parameters<typeof replace>[1];

/** An element that reads refusals out at once (role="alert"); empty, it takes no room. */
export function alertArea(): HTMLElement {
  return h('div', { class: 'error alert-lines', role: 'alert' });
}

/**
 * Shows `error` in `area` as its cause chain, one line a layer, after `lead` (what was being
 * done). The same text twice in a row is left alone, so a poller that keeps failing does not
 * make a screen reader repeat it every few seconds.
 */
export function showError(area: HTMLElement, error: unknown, lead?: string): void {
  const chain = errorChain(error);
  const text = [lead ?? '', ...chain].join('\n');
  if (area.dataset.text === text) return;
  area.dataset.text = text;
  // The outermost refusal first; each cause under it is marked as what led to the one above.
  replace(
    area,
    lead ? h('div', { class: 'alert-lead' }, lead) : null,
    h('ol', { class: 'cause-chain' }, ...chain.map((line, i) => h('li', { class: i > 0 ? 'cause' : undefined }, i > 0 ? `← ${line}` : line))),
  );
}

/** Shows lines of words (not an API error) in an alert area. */
export function showProblem(area: HTMLElement, ...lines: string[]): void {
  area.dataset.text = lines.join('\n');
  replace(area, ...lines.map((line) => h('div', {}, line)));
}

export function clearArea(area: HTMLElement): void {
  delete area.dataset.text;
  area.replaceChildren();
}

/** A polite live region for results ("Reset done", "Deposited …"). */
export function statusArea(extraClass = ''): HTMLElement {
  return h('div', { class: `status-area ${extraClass}`.trim(), role: 'status', 'aria-live': 'polite' });
}

/**
 * Runs `action` on the form's submit, with its submit button disabled meanwhile, so a double
 * click or a second Enter never sends the request twice.
 */
export function onSubmit(form: HTMLFormElement, action: () => Promise<void> | void): void {
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const submit = form.querySelector<HTMLButtonElement>('button[type="submit"]');
    if (submit?.disabled) return;
    if (submit) submit.disabled = true;
    // A failure the action did not handle is a bug: it stays unhandled, so it is reported.
    void Promise.resolve()
      .then(action)
      .finally(() => {
        if (submit) submit.disabled = false;
      });
  });
}

export interface Tab {
  id: string;
  label: string;
}

export interface TabListOptions {
  /** What the tabs choose between, read out with the tab list ("Rank by", "Admin"). */
  label: string;
  /** Makes the tabs' element ids unique on the page: `${idPrefix}-tab-${tab.id}`. */
  idPrefix: string;
  tabs: readonly Tab[];
  /** The id of the panel a tab shows (several tabs may show one panel). */
  panelFor: (id: string) => string;
  select: (id: string) => void;
  initial?: string;
}

export const tabId = (idPrefix: string, id: string): string => `${idPrefix}-tab-${id}`;

/**
 * Tabs (role="tablist"): the selected tab is the one in the Tab order; the arrow keys, Home and
 * End move between tabs and select them. `select` shows the chosen panel, which the caller owns
 * and labels with the tab's id (tabId).
 */
export function tabList(options: TabListOptions): { el: HTMLElement; choose(id: string): void; selected(): string } {
  const { tabs, idPrefix } = options;
  const buttons = tabs.map((tab) =>
    h('button', { type: 'button', role: 'tab', id: tabId(idPrefix, tab.id), 'aria-controls': options.panelFor(tab.id), 'aria-selected': 'false', tabindex: '-1' }, tab.label),
  );
  const el = h('div', { class: 'tabs', role: 'tablist', 'aria-label': options.label }, ...buttons);
  let current = options.initial ?? tabs[0]!.id;
  const mark = (id: string, focus: boolean): void => {
    tabs.forEach((tab, i) => {
      const selected = tab.id === id;
      buttons[i]!.setAttribute('aria-selected', String(selected));
      buttons[i]!.tabIndex = selected ? 0 : -1;
      if (selected && focus) buttons[i]!.focus();
    });
  };
  const choose = (id: string, focus = false): void => {
    mark(id, focus);
    if (id === current) return;
    current = id;
    options.select(id);
  };
  buttons.forEach((b, i) => {
    b.addEventListener('click', () => choose(tabs[i]!.id));
    b.addEventListener('keydown', (event) => {
      const moves: Record<string, number> = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 };
      const to = moves[event.key];
      if (to === undefined) return;
      event.preventDefault();
      choose(tabs[(to + tabs.length) % tabs.length]!.id, true);
    });
  });
  // The initial tab is marked; its panel is the caller's to show (select runs on changes only).
  mark(current, false);
  return { el, choose: (id) => choose(id), selected: () => current };
}

export interface KeyedColumn<T> extends Column<T> {
  /** Made once per row and kept (a row's buttons), so focus on it survives every update. */
  stable?: boolean;
  /** A class for the cell from the row (up/down colouring). */
  tone?: (row: T) => string | undefined;
  /** Classes of the column's header and cells: `wide-only` hides it on a phone (class.css). */
  className?: string;
}

/**
 * A table updated in place: each row is found by its key and its cells refreshed, so a poller
 * can update it every few seconds without moving the focus or the scroll position, and the
 * buttons in it stay where the keyboard left them.
 */
export function keyedTable<T>(columns: KeyedColumn<T>[], key: (row: T) => string, caption: string, emptyText: string): { el: HTMLElement; update(rows: readonly T[]): void } {
  const tbody = h('tbody');
  const tableEl = h(
    'table',
    {},
    h('caption', { class: 'sr-only' }, caption),
    h('thead', {}, h('tr', {}, ...columns.map((c) => h('th', { scope: 'col', class: cellClass(c) || undefined }, c.header)))),
    tbody,
  );
  const wrap = h('div', { class: 'table-wrap' }, tableEl);
  const empty = h('p', { class: 'empty muted' }, emptyText);
  const el = h('div', {}, empty, wrap);
  const rows = new Map<string, HTMLTableRowElement>();
  const update = (list: readonly T[]): void => {
    empty.hidden = list.length > 0;
    wrap.hidden = list.length === 0;
    const seen = new Set<string>();
    list.forEach((row, index) => {
      const k = key(row);
      seen.add(k);
      let tr = rows.get(k);
      const fresh = !tr;
      if (!tr) {
        tr = h('tr', {}, ...columns.map((c) => h('td', { class: cellClass(c) || undefined })));
        rows.set(k, tr);
      }
      columns.forEach((c, i) => {
        const td = tr.children[i] as HTMLTableCellElement;
        if (c.stable && !fresh) return;
        replace(td, c.cell(row));
        const tone = c.tone?.(row);
        td.className = cellClass(c, tone);
      });
      // Moved only when out of place: moving a node takes the focus away from what is in it.
      if (tbody.children[index] !== tr) tbody.insertBefore(tr, tbody.children[index] ?? null);
    });
    for (const [k, tr] of rows) {
      if (!seen.has(k)) {
        tr.remove();
        rows.delete(k);
      }
    }
  };
  update([]);
  return { el, update };
}

function cellClass<T>(c: KeyedColumn<T>, tone?: string): string {
  return [c.numeric ? 'num' : '', c.className ?? '', tone ?? ''].filter(Boolean).join(' ');
}

/**
 * Calls `tick` now and then every `intervalMs` after each call has finished (calls never
 * overlap), skipping while the tab is hidden or `active()` says no. Returns the stop.
 */
export function poll(tick: () => Promise<void>, intervalMs: number, active: () => boolean = () => true): () => void {
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const run = async (): Promise<void> => {
    if (stopped) return;
    if (!document.hidden && active()) await tick().catch(() => undefined);
    if (!stopped) timer = setTimeout(() => void run(), intervalMs);
  };
  void run();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/**
 * An Idempotency-Key: 128 random bits in hex. crypto.getRandomValues, unlike randomUUID, is
 * there on a plain-http page too (a self-hosted server on the LAN is not a secure context).
 */
export function randomKey(prefix = 'web'): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `${prefix}-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

/**
 * A link that downloads `text` as a file made in the page (a Blob URL: the keys never leave the
 * browser again). `revoke` frees it once it is no longer offered.
 */
export function downloadLink(text: string, filename: string, label: string, type = 'text/csv'): { el: HTMLAnchorElement; revoke(): void } {
  const url = URL.createObjectURL(new Blob([text], { type: `${type};charset=utf-8` }));
  const el = h('a', { href: url, download: filename, class: 'button-link' }, label);
  return { el, revoke: () => URL.revokeObjectURL(url) };
}

/** A read-only field for a secret shown once: selected whole on focus, for copying. */
export function onceField(value: string): HTMLInputElement {
  const input = h('input', { type: 'text', readonly: true, value, spellcheck: 'false', autocomplete: 'off', class: 'mono' });
  input.addEventListener('focus', () => input.select());
  return input;
}

/** A file name made of the words of `name` (a class's name may hold anything). */
export function fileSafe(name: string): string {
  return (
    name
      .normalize('NFKD')
      .replace(/[^A-Za-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .toLowerCase()
      .slice(0, 60) || 'class'
  );
}

/** A definition list of label → value pairs (the class's facts, an account's numbers). */
export function facts(pairs: ReadonlyArray<readonly [string, Child]>): HTMLElement {
  return h('dl', { class: 'facts' }, ...pairs.flatMap(([term, value]) => [h('dt', {}, term), h('dd', {}, value)]));
}
