// Which daemon the CLI talks to: --socket if given, else the management
// socket named in the config file the daemon itself reads.
import { ManagementClient } from '../api/client.js';
import { ExitCode } from '../api/errors.js';
import { CliError } from './failure.js';

export const DEFAULT_CONFIG = '/etc/syncwall/syncwall.yaml';

export interface TargetArgs {
  socket?: string | undefined;
  config: string;
}

export async function socketPath(args: TargetArgs): Promise<string> {
  if (args.socket !== undefined) return args.socket;
  try {
    // Loaded only when needed: with --socket the CLI starts without the YAML and schema code.
    const { loadConfig } = await import('../config/load.js');
    return loadConfig(args.config, { checkFiles: false }).management.socket;
  } catch (err) {
    // The reason is a config problem list, one `file:line: field: message` per line.
    const reason = err instanceof Error ? err.message : String(err);
    throw new CliError(`cannot get the management socket from ${args.config} (or give --socket PATH):\n${reason}`, ExitCode.user, { cause: err });
  }
}

/** Runs `use` with a client for the target daemon and closes it afterwards. */
export async function withClient(args: TargetArgs, use: (client: ManagementClient) => Promise<void>): Promise<void> {
  const client = new ManagementClient(await socketPath(args));
  try {
    await use(client);
  } finally {
    client.close();
  }
}
