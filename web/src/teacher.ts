/**
 * The teacher's page (a class's teacher key): that one class, its members and leaderboard,
 * adding members from a roster and resetting a member. The key belongs to the class, so the
 * page is the class page and nothing else; GET /me said which class it is.
 */
import type { Unmount, ViewContext } from './context.js';
import { mountClassView } from './class-view.js';
import { h, replace } from './dom.js';

export function mountTeacher(root: HTMLElement, ctx: ViewContext): Unmount {
  if (ctx.me.kind !== 'teacher') {
    replace(root, h('p', { class: 'error', role: 'alert' }, 'This page is for a teacher key; sign in with the key of your class.'));
    return () => undefined;
  }
  const page = h('div', { class: 'teacher-view' });
  replace(root, page);
  return mountClassView(page, ctx, ctx.me.class_id, { titleTag: 'h1' });
}
