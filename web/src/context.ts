/** What every view gets from the shell. */
import type { Api } from './api.js';
import type { Me } from './session.js';
import type { StreamStatus } from './stream.js';

export interface ViewContext {
  api: Api;
  me: Me;
  /** The signed-in key or token, for the live stream's auth message. */
  token: string;
  /** Shows the live stream's state in the top bar (reconnecting…, live). */
  setConnection(status: StreamStatus, detail?: string): void;
  /** Shows a short message in the page's status area (polite live region). */
  notify(text: string, kind?: 'info' | 'error'): void;
}

/** A mounted view; the shell calls the returned function on sign-out to stop timers and streams. */
export type Unmount = () => void;
