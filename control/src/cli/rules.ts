// `syncwall rules check|reload`: check validates a file locally with the
// daemon's own parser; reload asks the daemon to swap in its rules file.
import type { ManagementClient } from '../api/client.js';
import { ExitCode } from '../api/errors.js';
import { loadRulesFile } from '../rules/parser.js';
import { formatProblem, RulesError } from '../rules/problem.js';
import { CliError } from './failure.js';
import { plural, toJson, write } from './output.js';

export async function checkRules(file: string): Promise<void> {
  try {
    const ruleSet = loadRulesFile(file);
    await write(`OK ${file}: ${plural(ruleSet.rules.length, 'rule')}\n`);
  } catch (err) {
    if (!(err instanceof RulesError)) throw err;
    throw new CliError(`${file}: ${plural(err.problems.length, 'problem')}\n${err.problems.map(formatProblem).join('\n')}`, ExitCode.user, { cause: err });
  }
}

export async function reloadRules(client: ManagementClient, recheck: boolean, json: boolean): Promise<void> {
  const result = await client.reloadRules(recheck);
  if (json) return write(`${toJson(result)}\n`);
  const removed = recheck ? `, removed ${plural(result.removed, 'connection')} no longer allowed` : '';
  await write(`reloaded ${plural(result.ruleCount, 'rule')}${removed}\n`);
}
