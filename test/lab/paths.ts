// Fixed locations the lab shares with the daemon and the checkout.
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url)).replace(/\/$/, '');
/** syncwalld pins its maps and links under <bpffs>/<instance>; a lab's instance is its prefix. */
export const BPFFS_ROOT = '/sys/fs/bpf/syncwall';
/** Where a lab records its owner's pid, so a later run can tell a stale lab from a live one. */
export const LAB_RUN_DIR = '/run/syncwall-lab';
