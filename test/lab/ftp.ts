// A real FTP server (Debian's vsftpd) and client (curl) inside a lab:
// vsftpd runs in the server namespace from a generated config (anonymous
// with uploads, IPv4 and IPv6, one fixed passive port, active mode from port
// 20), curl uploads and downloads files in the client namespace in the mode
// a test names, and files are compared by SHA-256. Every transfer is bounded
// by curl's --max-time.
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab } from './netns.js';
import { waitFor } from './poll.js';
import type { LabProcess, RunResult } from './processes.js';
import { urlHost } from './traffic.js';

/** How the data connection is opened: passive (PASV 227, EPSV 229) or active (PORT, EPRT). */
export type FtpMode = 'pasv' | 'epsv' | 'port' | 'eprt';

/** The FTP user's uid/gid (the vsftpd package creates it). */
function ftpUser(): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('ftp:'));
  const fields = line?.split(':');
  if (!fields) throw new Error('no ftp user: install vsftpd (make setup)');
  return { uid: Number(fields[2]), gid: Number(fields[3]) };
}

export class FtpServer {
  private constructor(
    readonly proc: LabProcess,
    /** Directory served as /pub (anonymous uploads land here). */
    readonly pubDir: string,
    private passivePort: number,
  ) {}

  /**
   * Starts vsftpd on `host` offering `passivePort` as its only passive port.
   * The directories live in the lab's temp directory (removed at teardown).
   */
  static async start(lab: Lab, host: string, passivePort: number): Promise<FtpServer> {
    const base = join(lab.tmpDir, `ftp-${host}`);
    const root = join(base, 'root');
    const pub = join(root, 'pub');
    const empty = join(base, 'empty');
    for (const dir of [root, pub, empty]) mkdirSync(dir, { recursive: true });
    // vsftpd's anonymous user reaches its chroot through the lab's private temp directory
    chmodSync(lab.tmpDir, 0o711);
    chmodSync(base, 0o755);
    // a writable chroot root is refused: only pub/ belongs to the ftp user
    chmodSync(root, 0o555);
    const { uid, gid } = ftpUser();
    chownSync(pub, uid, gid);
    chmodSync(pub, 0o755);
    const conf = join(base, 'vsftpd.conf');
    writeFileSync(conf, FtpServer.config(root, empty, passivePort));
    const proc = lab.spawn(host, ['vsftpd', conf], { logFile: join(base, 'vsftpd.log') });
    const server = new FtpServer(proc, pub, passivePort);
    await waitFor(
      async () => {
        if (!proc.running) throw new Error(`vsftpd exited: ${JSON.stringify(proc.exit)} ${proc.stderr}`);
        const r = await lab.exec(host, ['ss', '-Htln', 'sport = :21']);
        return r.stdout.includes(':21');
      },
      { timeoutMs: 10_000, intervalMs: 100, what: 'vsftpd to listen on port 21' },
    );
    return server;
  }

  get port(): number {
    return this.passivePort;
  }

  private static config(root: string, empty: string, passivePort: number): string {
    return [
      // standalone, in the foreground, one socket for IPv6 and IPv4
      'listen=NO',
      'listen_ipv6=YES',
      'background=NO',
      'anonymous_enable=YES',
      'no_anon_password=YES',
      `anon_root=${root}`,
      'write_enable=YES',
      'anon_upload_enable=YES',
      'anon_umask=022',
      'local_enable=NO',
      'pasv_enable=YES',
      `pasv_min_port=${passivePort}`,
      `pasv_max_port=${passivePort}`,
      'port_enable=YES',
      // active data connections come from port 20: the data connection's tuple is known but for this port
      'connect_from_port_20=YES',
      `secure_chroot_dir=${empty}`,
      // its seccomp filter does not expect a lab's unusual syscalls (nsenter, unshare)
      'seccomp_sandbox=NO',
      'xferlog_enable=NO',
      'dual_log_enable=NO',
      '',
    ].join('\n');
  }
}

export interface TransferOptions {
  mode: FtpMode;
  /** Client data port for active mode (the PORT/EPRT port). */
  activePort?: number;
  /** Client source port range for the control (and a passive data) connection. */
  localPorts?: [number, number];
  maxTimeS?: number;
}

function curlArgs(clientAddr: string, o: TransferOptions): string[] {
  const argv = ['curl', '-sS', '--noproxy', '*', '--max-time', String(o.maxTimeS ?? 10)];
  if (o.localPorts) argv.push('--local-port', `${o.localPorts[0]}-${o.localPorts[1]}`);
  switch (o.mode) {
    case 'pasv':
      argv.push('--ftp-pasv', '--disable-epsv');
      break;
    case 'epsv':
      argv.push('--ftp-pasv');
      break;
    case 'port':
    case 'eprt': {
      if (o.activePort === undefined) throw new Error('active mode needs activePort');
      const port = `${urlHost(clientAddr)}:${o.activePort}-${o.activePort}`;
      argv.push('--ftp-port', port);
      if (o.mode === 'port') argv.push('--disable-eprt');
      break;
    }
  }
  return argv;
}

export const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** A file of random bytes in the lab's temp directory. */
export function randomFile(lab: Lab, name: string, size: number): { path: string; sha: string } {
  const data = randomBytes(size);
  const path = join(lab.tmpDir, name);
  writeFileSync(path, data);
  return { path, sha: sha256(data) };
}

/** curl uploads localPath to /pub/name on the server (the client at clientAddr). */
export function upload(lab: Lab, host: string, clientAddr: string, serverAddr: string, localPath: string, name: string, o: TransferOptions): Promise<RunResult> {
  const argv = [...curlArgs(clientAddr, o), '-T', localPath, `ftp://${urlHost(serverAddr)}/pub/${name}`];
  return lab.exec(host, argv, { timeoutMs: ((o.maxTimeS ?? 10) + 10) * 1000 });
}

/** curl downloads /pub/name into localPath. */
export function download(lab: Lab, host: string, clientAddr: string, serverAddr: string, name: string, localPath: string, o: TransferOptions): Promise<RunResult> {
  const argv = [...curlArgs(clientAddr, o), '-o', localPath, `ftp://${urlHost(serverAddr)}/pub/${name}`];
  return lab.exec(host, argv, { timeoutMs: ((o.maxTimeS ?? 10) + 10) * 1000 });
}
