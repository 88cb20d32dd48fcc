// The one config resolver: parse YAML, validate it against the schema (which
// applies the defaults), resolve paths, and report every problem with file,
// line and field path.

import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { ProblemsError, type Problem } from '../rules/problem.js';
import type { RuleSet } from '../rules/types.js';
import type { ClusterConfig, RawClusterConfig } from './cluster-schema.js';
import { configSchema, type Config, type RawConfig, type Timeouts } from './schema.js';
import { lineOfPath } from './yaml-lines.js';

/** The config file has problems; `.problems` lists every one. */
export class ConfigError extends ProblemsError {}

/** Keys the schema allows at `path`, for the hint on an unknown key. */
function knownKeys(path: readonly PropertyKey[]): string[] {
  let schema: z.core.$ZodType = configSchema;
  const unwrap = (): void => {
    for (;;) {
      const def = schema._zod.def as { type: string; innerType?: z.core.$ZodType };
      if (!def.innerType) return;
      schema = def.innerType;
    }
  };
  for (const segment of path) {
    unwrap();
    const def = schema._zod.def as { type: string; shape?: Record<string, z.core.$ZodType>; element?: z.core.$ZodType };
    const next = typeof segment === 'number' ? def.element : def.shape?.[String(segment)];
    if (!next) return [];
    schema = next;
  }
  unwrap();
  return Object.keys((schema._zod.def as { shape?: object }).shape ?? {});
}

const fieldName = (path: readonly PropertyKey[]): string =>
  path.map((s, i) => (typeof s === 'number' ? `[${s}]` : `${i > 0 ? '.' : ''}${String(s)}`)).join('');

const camel = (key: string): string => key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

function resolveConfig(raw: RawConfig, configFile: string): Config {
  const dir = dirname(configFile);
  return {
    configFile,
    instance: raw.instance,
    bpffs: raw.bpffs,
    interfaces: raw.interfaces,
    xdpMode: raw.xdp_mode,
    rules: resolve(dir, raw.rules),
    management: { socket: resolve(dir, raw.management.socket) },
    tables: { connections: raw.tables.connections },
    punt: { rate: raw.punt.rate, burst: raw.punt.burst },
    fastForward: raw.fast_forward,
    lastSeenGranularityMs: raw.last_seen_granularity_ms,
    timeouts: Object.fromEntries(Object.entries(raw.timeouts).map(([k, v]) => [camel(k), v])) as Timeouts,
    expiry: { sweepIntervalMs: raw.expiry.sweep_interval_ms, batch: raw.expiry.batch },
    helpers: { holdTimeoutMs: raw.helpers.hold_timeout_ms },
    logLevel: raw.log.level,
    ...(raw.cluster ? { cluster: resolveCluster(raw.cluster, dir) } : {}),
  };
}

function resolveCluster(raw: RawClusterConfig, dir: string): ClusterConfig {
  return {
    id: raw.id,
    nodeId: raw.node_id,
    mode: raw.mode,
    backups: raw.backups,
    listen: raw.listen,
    peers: raw.peers.map((p) => ({ ...p })),
    tls: { ca: resolve(dir, raw.tls.ca), cert: resolve(dir, raw.tls.cert), key: resolve(dir, raw.tls.key) },
    mac: raw.mac.toLowerCase(),
    addresses: raw.addresses.map((a) => ({ ...a })),
    heartbeatMs: raw.heartbeat_ms,
    failureTimeoutMs: raw.failure_timeout_ms,
    sync: { node: raw.sync.node, common: raw.sync.common, periodicIntervalMs: raw.sync.periodic_interval_ms },
  };
}

/** The TLS files of the sync channel must be readable files (the key is read by the daemon only). */
function clusterFileProblems(config: Config, file: string, lineOf: (path: readonly PropertyKey[]) => number): Problem[] {
  const tls = config.cluster?.tls;
  if (!tls) return [];
  return (['ca', 'cert', 'key'] as const).flatMap((name) => {
    const path = tls[name];
    let why: string | undefined;
    try {
      if (!statSync(path).isFile()) why = 'is not a file';
      else accessSync(path, constants.R_OK);
    } catch (err) {
      why = `cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`;
    }
    const fieldPath = ['cluster', 'tls', name];
    return why ? [{ file, line: lineOf(fieldPath), field: fieldName(fieldPath), message: `${path} ${why}` }] : [];
  });
}

export interface ParseOptions {
  /**
   * Check that files the config names exist and are readable (default).
   * The CLI turns it off: it reads the config only for the socket path and
   * may run as a user who cannot read the node's private key.
   */
  checkFiles?: boolean;
}

/** Parses and resolves config text; `file` names it in errors and anchors relative paths. */
export function parseConfig(text: string, file: string, options: ParseOptions = {}): Config {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(doc.errors.map((e) => ({
      file, line: lines.linePos(e.pos[0]).line, field: '', message: e.message.split('\n')[0]!,
    })));
  }

  const result = configSchema.safeParse(doc.toJS() ?? {});
  if (!result.success) {
    const problems: Problem[] = result.error.issues.flatMap((issue) => {
      if (issue.code === 'unrecognized_keys') {
        const known = knownKeys(issue.path);
        return issue.keys.map((key) => {
          const path = [...issue.path, key];
          return { file, line: lineOfPath(doc, lines, path), field: fieldName(path), message: `unknown key (expected one of ${known.join(', ')})` };
        });
      }
      return [{ file, line: lineOfPath(doc, lines, issue.path), field: fieldName(issue.path), message: issue.message }];
    });
    throw new ConfigError(problems.sort((a, b) => a.line - b.line));
  }
  const config = resolveConfig(result.data, resolve(file));
  if (options.checkFiles ?? true) {
    const problems = clusterFileProblems(config, file, (path) => lineOfPath(doc, lines, path));
    if (problems.length > 0) throw new ConfigError(problems);
  }
  return config;
}

/** Reads and resolves a config file; an unreadable file is a ConfigError too. */
export function loadConfig(path: string, options: ParseOptions = {}): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const message = `cannot read config file: ${(err as Error).message}`;
    throw new ConfigError([{ file: path, line: 0, field: '', message }], { cause: err });
  }
  return parseConfig(text, path, options);
}

/** Rules that name interfaces or zones the config does not define (they could never match). */
export function checkRulesAgainstConfig(config: Config, rules: RuleSet): Problem[] {
  const names = new Set(config.interfaces.map((i) => i.name));
  const zones = new Set(config.interfaces.map((i) => i.zone));
  const problems: Problem[] = [];
  for (const rule of rules.rules) {
    for (const name of rule.iif ?? []) {
      if (!names.has(name)) {
        problems.push({ file: rules.file, line: rule.line, field: 'iif', message: `interface "${name}" is not in ${config.configFile} (${[...names].join(', ')})` });
      }
    }
    for (const zone of rule.zone ?? []) {
      if (!zones.has(zone)) {
        problems.push({ file: rules.file, line: rule.line, field: 'zone', message: `zone "${zone}" is not in ${config.configFile} (${[...zones].join(', ')})` });
      }
    }
  }
  return problems;
}
