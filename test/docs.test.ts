/**
 * The docs render as written: every Markdown table is one table (a row that a blank line or a
 * comment cut off renders as a paragraph of pipes), every link to a heading of the same file
 * finds it, and nothing points outside the repository.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import MarkdownIt from 'markdown-it';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const DOCS = (process.env.DOCS_ONLY ?? 'README.md,docs/DESIGN.md').split(',');

const md = new MarkdownIt({ html: true });

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
function slug(text: string): string {
  return text
    .trim()
    .toLowerCase()
    .replace(/<[^>]+>/g, '')
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

describe.each(DOCS)('%s', (file) => {
  const text = readFileSync(`${root}${file}`, 'utf8');
  const tokens = md.parse(text, {});

  it('has no table row outside a table', () => {
    const stray: string[] = [];
    tokens.forEach((t, i) => {
      if (t.type !== 'inline' || tokens[i - 1]?.type !== 'paragraph_open') return;
      for (const line of t.content.split('\n')) if (/^\s*\|.*\|\s*$/.test(line)) stray.push(`line ${(t.map?.[0] ?? 0) + 1}: ${line.slice(0, 80)}`);
    });
    expect(stray, 'rows that render as text: a blank line or comment inside a table?').toEqual([]);
  });

  it('has no HTML comment left inside the text', () => {
    const comments = tokens.filter((t) => t.type === 'html_block' && t.content.trim().startsWith('<!--'));
    expect(comments.map((t) => t.content.trim())).toEqual([]);
  });

  it('links only to headings that exist', () => {
    const anchors = new Set<string>();
    tokens.forEach((t, i) => {
      if (t.type === 'heading_open') anchors.add(slug(tokens[i + 1]!.content));
    });
    const broken: string[] = [];
    for (const t of tokens) {
      for (const child of t.children ?? []) {
        const href = child.type === 'link_open' ? child.attrGet('href') : null;
        if (href?.startsWith('#') && !anchors.has(href.slice(1))) broken.push(href);
      }
    }
    expect(broken).toEqual([]);
  });

  it('points nowhere outside the repository', () => {
    expect(text).not.toMatch(/\.\.\/shared|in the workspace/);
  });
});
