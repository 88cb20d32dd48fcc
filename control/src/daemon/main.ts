// `syncwalld`: run the daemon, validate a configuration, or remove syncwall
// from the interfaces. Config and rules problems are printed one per line as
// `file:line: field: message` with exit code 1. The data-plane modules (and
// libbpf behind them) are loaded only by the commands that use them, so
// check-config runs anywhere.
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { checkRulesAgainstConfig, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { SYNCWALL_VERSION } from '../install-files.js';
import { createLogger } from '../log.js';
import { loadRulesFile } from '../rules/parser.js';
import { formatProblem, ProblemsError, type Problem } from '../rules/problem.js';

const DEFAULT_CONFIG = '/etc/syncwall/syncwall.yaml';

/** Thrown after the failure was printed or logged: only the exit code is left to set. */
class AlreadyReported extends Error {
  override name = 'AlreadyReported';
}

function printProblems(problems: readonly Problem[]): void {
  process.stderr.write(problems.map((p) => `${formatProblem(p)}\n`).join(''));
}

/** Loads the config; on problems prints them all and throws AlreadyReported. */
function configOrReport(path: string): Config {
  try {
    return loadConfig(path);
  } catch (err) {
    if (!(err instanceof ProblemsError)) throw err;
    printProblems(err.problems);
    throw new AlreadyReported(path, { cause: err });
  }
}

/** Everything `syncwalld` would refuse at start-up, without touching the system. */
function checkConfig(path: string): void {
  const config = configOrReport(path);
  let problems: readonly Problem[];
  let ruleCount = 0;
  try {
    const ruleSet = loadRulesFile(config.rules);
    ruleCount = ruleSet.rules.length;
    problems = checkRulesAgainstConfig(config, ruleSet);
  } catch (err) {
    if (!(err instanceof ProblemsError)) throw err;
    problems = err.problems;
  }
  if (problems.length > 0) {
    printProblems(problems);
    throw new AlreadyReported(path);
  }
  const names = config.interfaces.map((i) => i.name).join(', ');
  process.stdout.write(`OK ${path}: interfaces ${names}; ${ruleCount} rules from ${config.rules}\n`);
}

async function run(path: string): Promise<void> {
  const config = configOrReport(path);
  const log = createLogger(config.logLevel);
  const { runDaemon } = await import('./run.js');
  try {
    await runDaemon(config, log);
  } catch (err) {
    log.fatal({ err }, 'syncwalld failed');
    throw new AlreadyReported('syncwalld failed', { cause: err });
  }
}

async function detach(path: string): Promise<void> {
  const config = configOrReport(path);
  const { detachDatapath } = await import('./run.js');
  detachDatapath(config, createLogger(config.logLevel));
}

/** Runs a command; failures already reported become exit code 1, anything else is printed first. */
async function exitCodeOf(command: () => void | Promise<void>): Promise<void> {
  try {
    await command();
  } catch (err) {
    if (!(err instanceof AlreadyReported)) process.stderr.write(`syncwalld: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}

await yargs(hideBin(process.argv))
  .scriptName('syncwalld')
  .usage('$0 [command] [--config FILE]\n\nThe syncwall firewall daemon.')
  .option('config', { type: 'string', default: DEFAULT_CONFIG, describe: 'config file' })
  .command('$0', 'run the daemon until SIGTERM/SIGINT (SIGHUP reloads the rules)', (y) => y, (argv) => exitCodeOf(() => run(argv.config)))
  .command('check-config', 'validate the config, its rules file, and the rules against the config', (y) => y, (argv) =>
    exitCodeOf(() => checkConfig(argv.config)),
  )
  .command('detach', 'remove the XDP programs from the interfaces and the pinned maps', (y) => y, (argv) =>
    exitCodeOf(() => detach(argv.config)),
  )
  .strict()
  .version(SYNCWALL_VERSION)
  .help()
  .parseAsync();
