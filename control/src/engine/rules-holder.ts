// The rule set in force. A reload parses and compiles the new file first and
// swaps it in with one assignment, so every first-packet decision sees
// either the old or the new rules, never a mix.
import { compileMatcher } from '../rules/matcher.js';
import { loadRulesFile } from '../rules/parser.js';
import type { Matcher, RuleSet } from '../rules/types.js';

export interface ActiveRules {
  readonly ruleSet: RuleSet;
  readonly matcher: Matcher;
  readonly loadedAt: Date;
}

export class RulesHolder {
  private active: ActiveRules;
  private readonly file: string;

  /** Loads the rules file; throws the parser's RulesError when it is invalid. */
  constructor(file: string) {
    this.file = file;
    this.active = RulesHolder.compile(file);
  }

  current(): ActiveRules {
    return this.active;
  }

  /** Re-reads the rules file; on error the rules in force stay unchanged. */
  reload(): ActiveRules {
    this.active = RulesHolder.compile(this.file);
    return this.active;
  }

  private static compile(file: string): ActiveRules {
    const ruleSet = loadRulesFile(file);
    return { ruleSet, matcher: compileMatcher(ruleSet), loadedAt: new Date() };
  }
}
