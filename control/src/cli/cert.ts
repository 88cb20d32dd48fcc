// `syncwall cert ca|node`: the cluster CA and node certificates for the peer
// sync channel's mutual TLS. Local files only; no daemon involved.
import type { Argv } from 'yargs';
import { ExitCode } from '../api/errors.js';
import { CertError, createClusterCa, createNodeCert, type CertFiles } from '../cluster/certs.js';
import { IdentityError } from '../cluster/peer-identity.js';
import { CliError, reportingFailures } from './failure.js';
import { write } from './output.js';

function certFailure(err: unknown): never {
  if (err instanceof CertError || err instanceof IdentityError) throw new CliError(err.message, ExitCode.user, { cause: err });
  throw err;
}

const wrote = (files: CertFiles): Promise<void> => write(`wrote ${files.cert}\nwrote ${files.key} (private key, mode 0600)\n`);

const common = <T>(y: Argv<T>) =>
  y
    .option('dir', { type: 'string', demandOption: true, describe: 'directory of ca.pem, ca-key.pem and node-<id>[-key].pem' })
    .option('cluster', { type: 'string', demandOption: true, describe: 'cluster id (the certificates\' OU)' })
    .option('force', { type: 'boolean', default: false, describe: 'replace existing files' });

export const certCommands = <T>(y: Argv<T>) =>
  y
    .command(
      'ca',
      'create the cluster CA (EC P-256, valid 10 years)',
      (y) => common(y),
      reportingFailures('cert ca', async (argv) => {
        try {
          await wrote(createClusterCa(argv.dir, argv.cluster, { force: argv.force }));
        } catch (err) {
          certFailure(err);
        }
      }),
    )
    .command(
      'node',
      'create and sign a node certificate (CN=node-<id>, valid 2 years)',
      (y) => common(y).option('id', { type: 'number', demandOption: true, describe: 'node id (1-65535)' }),
      reportingFailures('cert node', async (argv) => {
        try {
          await wrote(createNodeCert(argv.dir, argv.id, argv.cluster, { force: argv.force }));
        } catch (err) {
          certFailure(err);
        }
      }),
    )
    .demandCommand(1, 'give a subcommand: ca or node');
