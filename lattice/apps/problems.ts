/**
 * Field-level problems of a manifest: each names the field's path (`spec.actors[1].weight`), what
 * is wrong, and the line it is on, and a manifest that has any is refused with all of them at
 * once (an operator fixes a file in one pass, not one error per apply). The YAML node tree (with
 * a LineCounter) gives the lines; the checks run on the plain value and ask the tree for lines.
 */
import { LineCounter, isMap, isPair, isScalar, isSeq, parseDocument, type Document } from 'yaml';
import { TrellisError } from '../errors/index.ts';

/** One thing wrong with a manifest. */
export interface Problem {
  /** The field, e.g. `spec.actors[1].spread[0].weight`; empty for the document itself. */
  path: string;
  message: string;
  /** 1-based line in the manifest text, when known. */
  line?: number;
}

/** A path into the manifest, as keys and list indexes. */
export type Path = readonly (string | number)[];

/** `spec.actors[1].spread[0].weight` from its keys and indexes. */
export function formatPath(path: Path): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out === '' ? part : `.${part}`;
  return out;
}

/** One problem as a line: `path: message (line n)`. */
export function formatProblem(p: Problem): string {
  return `${p.path ? `${p.path}: ` : ''}${p.message}${p.line ? ` (line ${p.line})` : ''}`;
}

/** A refused manifest: TRELLIS_BAD_REQUEST whose JSON form carries every problem as data. */
export class ManifestError extends TrellisError {
  readonly problems: Problem[];
  constructor(source: string, problems: Problem[]) {
    const n = problems.length;
    super('TRELLIS_BAD_REQUEST', `${source} has ${n} problem${n === 1 ? '' : 's'}:\n${problems.map((p) => `  ${formatProblem(p)}`).join('\n')}`);
    this.problems = problems;
  }
  override toJSON(): { code: string; message: string; problems: Problem[] } {
    return { ...super.toJSON(), problems: this.problems };
  }
}

/** Gathers problems, finding each one's line in the parsed document. */
export class Problems {
  readonly list: Problem[] = [];
  constructor(
    private readonly doc: Document | undefined,
    private readonly lines: LineCounter | undefined,
  ) {}

  /**
   * Report a problem at `path`. `key: true` points at the key itself (an unknown field); a path
   * that does not exist (a missing field) points at the nearest enclosing node.
   */
  add(path: Path, message: string, options: { key?: boolean; line?: number } = {}): void {
    this.list.push({ path: formatPath(path), message, line: options.line ?? this.lineOf(path, options.key ?? false) });
  }

  /** The problems in the order of the file (stable for problems on one line): how an operator fixes them. */
  sorted(): Problem[] {
    return this.list.map((p, i) => ({ p, i })).sort((a, b) => (a.p.line ?? 0) - (b.p.line ?? 0) || a.i - b.i).map((o) => o.p);
  }

  /** The 1-based line of the node at `path` (or of the nearest existing parent). */
  lineOf(path: Path, key = false): number | undefined {
    if (!this.doc || !this.lines) return undefined;
    let node: unknown = this.doc.contents;
    let offset = rangeStart(node);
    for (let i = 0; i < path.length; i++) {
      const part = path[i]!;
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(part));
        if (!pair) break;
        const keyStart = rangeStart(pair.key);
        if (key && i === path.length - 1) {
          offset = keyStart ?? offset;
          break;
        }
        node = pair.value;
        // `weight:` with nothing after it has no value node: the key's line is the field's line.
        offset = rangeStart(node) ?? keyStart ?? offset;
      } else if (isSeq(node) && typeof part === 'number' && part < node.items.length) {
        node = node.items[part];
        offset = rangeStart(node) ?? offset;
      } else break;
    }
    return offset === undefined ? undefined : this.lines.linePos(offset).line;
  }
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
  return range ? range[0] : undefined;
}

/** Parse YAML (or JSON, which YAML reads too) into a value and a problem collector with lines. */
export function parseText(text: string): { value: unknown; problems: Problems } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const problems = new Problems(doc, lines);
  for (const err of doc.errors) problems.add([], `not valid YAML or JSON: ${err.message.split('\n')[0]}`, { line: lines.linePos(err.pos[0]).line });
  return { value: doc.errors.length > 0 ? undefined : doc.toJS({ maxAliasCount: 100 }), problems };
}

/** The known field closest to an unknown one (a likely typo), within two edits. */
export function closest(word: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const k of known) {
    const d = editDistance(word.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) (best = k), (bestDistance = d);
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}
