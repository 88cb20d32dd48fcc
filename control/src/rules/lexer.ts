// Splits a rules file into logical lines of tokens: `#` starts a comment
// (outside quotes), a trailing `\` joins the next physical line, and a
// double-quoted string ("free text", with \" and \\ escapes) is one token.
// A logical line keeps the number of its first physical line, so errors name
// the line where the rule starts.

export interface Token {
  text: string;
  /** True for a double-quoted string (text is unescaped). */
  quoted: boolean;
}

export interface LogicalLine {
  line: number;
  tokens: Token[];
  /** The rule's text: comment removed, continuations joined. */
  source: string;
}

export interface LexProblem {
  line: number;
  message: string;
}

/** Drops an unquoted `#` comment; returns the code part of one physical line. */
function stripComment(raw: string): string {
  let inQuote = false;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (inQuote && c === '\\') i++;
    else if (c === '"') inQuote = !inQuote;
    else if (c === '#' && !inQuote) return raw.slice(0, i);
  }
  return raw;
}

function tokenize(text: string): { tokens: Token[]; error?: string } {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === ' ' || c === '\t' || c === '\r') { i++; continue; }
    if (c === '"') {
      let value = '';
      i++;
      while (i < text.length && text[i] !== '"') {
        if (text[i] === '\\' && i + 1 < text.length) i++;
        value += text[i];
        i++;
      }
      tokens.push({ text: value, quoted: true });
      // Keep the rest of the line as the string so the line's other
      // keywords are still checked.
      if (i >= text.length) return { tokens, error: 'unterminated quoted string' };
      i++;
      continue;
    }
    const start = i;
    while (i < text.length && !' \t\r"'.includes(text[i]!)) i++;
    tokens.push({ text: text.slice(start, i), quoted: false });
  }
  return { tokens };
}

export function lexRules(text: string): { lines: LogicalLine[]; problems: LexProblem[] } {
  const lines: LogicalLine[] = [];
  const problems: LexProblem[] = [];
  let pending: { line: number; parts: string[] } | undefined;

  const physical = text.split('\n');
  physical.forEach((raw, index) => {
    let code = stripComment(raw).trimEnd();
    const continues = code.endsWith('\\');
    if (continues) code = code.slice(0, -1);
    if (pending) pending.parts.push(code);
    else pending = { line: index + 1, parts: [code] };
    if (continues && index < physical.length - 1) return;

    const source = pending.parts.map((p) => p.trim()).filter((p) => p !== '').join(' ');
    const { tokens, error } = tokenize(source);
    if (error) problems.push({ line: pending.line, message: error });
    if (tokens.length > 0) lines.push({ line: pending.line, tokens, source });
    pending = undefined;
  });
  return { lines, problems };
}
