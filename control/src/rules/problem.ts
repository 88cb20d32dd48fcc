// A problem found in a user-written file (rules or config), and the error
// that carries all of them. Parsers collect every problem before throwing so
// a user fixes a file in one pass instead of one error per run.

export interface Problem {
  file: string;
  /** 1-based line; 0 when the problem concerns the whole file (e.g. unreadable). */
  line: number;
  /** Keyword or dotted field path the problem is about; '' for syntax-level problems. */
  field: string;
  message: string;
}

/** `file:line: field: message`, leaving out the parts a problem lacks. */
export function formatProblem(p: Problem): string {
  const where = p.line > 0 ? `${p.file}:${p.line}` : p.file;
  return p.field === '' ? `${where}: ${p.message}` : `${where}: ${p.field}: ${p.message}`;
}

/** Base of the errors that report problems in a user-written file. */
export class ProblemsError extends Error {
  readonly problems: readonly Problem[];

  constructor(problems: readonly Problem[], options?: { cause?: unknown }) {
    super(problems.map(formatProblem).join('\n'), options);
    this.name = new.target.name;
    this.problems = problems;
  }
}

/** The rules file has problems; `.problems` lists every one. */
export class RulesError extends ProblemsError {}
