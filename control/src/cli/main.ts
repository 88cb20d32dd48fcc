// `syncwall`: the command-line client of syncwalld's management service.
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { SYNCWALL_VERSION } from '../install-files.js';
import { formatDrain, formatPeers, formatSyncModeChange } from './cluster.js';
import { filterFromArgs, flushConnections, listConnections, withFilterOptions } from './conns.js';
import { certCommands } from './cert.js';
import { reportingFailures } from './failure.js';
import { write } from './output.js';
import { checkRules, reloadRules } from './rules.js';
import { formatStats, formatStatus } from './status.js';
import { DEFAULT_CONFIG, withClient } from './target.js';

// A reader that quits early (`syncwall conns list | head`) is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
  process.exit(0);
});

const withJson = <T>(y: Argv<T>) => y.option('json', { type: 'boolean', default: false, describe: 'print JSON for scripts' });

await yargs(hideBin(process.argv))
  .scriptName('syncwall')
  .usage('$0 <command> [options]\n\nTalks to syncwalld over its management socket.')
  .option('socket', { type: 'string', describe: 'management socket of syncwalld (default: management.socket from --config)' })
  .option('config', { type: 'string', default: DEFAULT_CONFIG, describe: 'syncwalld config file' })
  .command(
    'status',
    'show daemon, rules and interface status',
    (y) => withJson(y),
    reportingFailures('status', (argv) => withClient(argv, async (client) => write(formatStatus(await client.status(), argv.json)))),
  )
  .command('conns', 'list or delete tracked connections', (y) =>
    y
      .command(
        'list',
        'list connections (filters combine with AND)',
        (y) => withFilterOptions(withJson(y)),
        reportingFailures('conns list', (argv) => {
          const filter = filterFromArgs(argv);
          return withClient(argv, (client) => listConnections(client, filter, argv.json));
        }),
      )
      .command(
        'flush',
        'delete matching connections (all without filters)',
        (y) => withFilterOptions(withJson(y)),
        reportingFailures('conns flush', (argv) => {
          const filter = filterFromArgs(argv);
          return withClient(argv, (client) => flushConnections(client, filter, argv.json));
        }),
      )
      .demandCommand(1, 'give a subcommand: list or flush'),
  )
  .command('rules', 'check or reload rules', (y) =>
    y
      .command(
        'check <file>',
        'validate a rules file locally (no daemon needed)',
        (y) => y.positional('file', { type: 'string', demandOption: true }),
        reportingFailures('rules check', (argv) => checkRules(argv.file)),
      )
      .command(
        'reload',
        "make the daemon re-read its rules file (atomic; existing connections are kept)",
        (y) => withJson(y).option('recheck', { type: 'boolean', default: false, describe: 'also remove connections the new rules no longer allow' }),
        reportingFailures('rules reload', (argv) => withClient(argv, (client) => reloadRules(client, argv.recheck, argv.json))),
      )
      .demandCommand(1, 'give a subcommand: check or reload'),
  )
  .command(
    'stats',
    'show data-plane and controller counters',
    (y) => withJson(y),
    reportingFailures('stats', (argv) => withClient(argv, async (client) => write(formatStats(await client.stats(), argv.json)))),
  )
  .command('cert', 'create the cluster CA and node certificates for peer sync (local files)', (y) => certCommands(y))
  .command(
    'peers',
    'show the cluster peers: state, connection, incarnation, sync lag, unacked messages',
    (y) => withJson(y),
    reportingFailures('peers', (argv) => withClient(argv, async (client) => write(formatPeers(await client.peers(), argv.json)))),
  )
  .command('sync', 'cluster state sync', (y) =>
    y
      .command(
        'mode <class> <mode>',
        'switch the sync mode of a state class at run time',
        (y) =>
          withJson(y)
            .positional('class', { choices: ['node', 'common'] as const, demandOption: true, describe: 'node-specific or common state' })
            .positional('mode', { choices: ['on-demand', 'periodic', 'combined', 'off'] as const, demandOption: true }),
        reportingFailures('sync mode', (argv) =>
          withClient(argv, async (client) => write(formatSyncModeChange(await client.setSyncMode(argv.class, argv.mode), argv.json))),
        ),
      )
      .demandCommand(1, 'give a subcommand: mode'),
  )
  .command('node', 'this cluster node', (y) =>
    y
      .command(
        'drain',
        'hand this node\'s buckets and their connections to the other nodes, then stop forwarding',
        (y) => withJson(y),
        reportingFailures('node drain', (argv) => withClient(argv, async (client) => write(formatDrain(await client.drain(), argv.json)))),
      )
      .demandCommand(1, 'give a subcommand: drain'),
  )
  .command('version', 'print the CLI version', {}, reportingFailures('version', () => write(`syncwall ${SYNCWALL_VERSION}\n`)))
  .demandCommand(1, 'give a command')
  .strict()
  .version(SYNCWALL_VERSION)
  .help()
  .parseAsync();
