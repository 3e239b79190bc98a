/**
 * `popdns help COMMAND`: the command's usage, then its section of docs/cli.md, the one source of the
 * commands' detail (shipped in the npm package beside dist/).
 */
import { readFileSync } from 'node:fs';

/** The `## COMMAND` section of docs/cli.md, without its heading; null when there is none. */
export function commandDetail(command: string, text?: string): string | null {
  let doc = text;
  if (doc === undefined) {
    try {
      doc = readFileSync(new URL('../../docs/cli.md', import.meta.url), 'utf8');
    } catch {
      return null;
    }
  }
  const start = doc.indexOf(`\n## ${command}\n`);
  if (start < 0) return null;
  const body = doc.slice(start + command.length + 5);
  const end = body.indexOf('\n## ');
  return (end < 0 ? body : body.slice(0, end)).trim();
}
