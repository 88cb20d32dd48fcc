// Finds the line of a field path in a parsed YAML document, so config errors
// can point at the line the user has to change.

import { isMap, isScalar, isSeq, type Document, type LineCounter, type Node } from 'yaml';

/**
 * Line of the key (or list item) at `path`; where the path does not exist
 * (a missing key), the line of its deepest existing parent; 0 for an empty
 * document.
 */
export function lineOfPath(doc: Document, lines: LineCounter, path: readonly PropertyKey[]): number {
  const lineAt = (offset: number | undefined): number => (offset === undefined ? 0 : lines.linePos(offset).line);
  let node: unknown = doc.contents;
  let line = lineAt((doc.contents as Node | null)?.range?.[0]);
  for (const segment of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(segment));
      if (!pair) return line;
      line = lineAt((pair.key as Node).range?.[0]);
      node = pair.value;
    } else if (isSeq(node) && typeof segment === 'number' && node.items[segment] !== undefined) {
      node = node.items[segment];
      line = lineAt((node as Node).range?.[0]);
    } else {
      return line;
    }
  }
  return line;
}
