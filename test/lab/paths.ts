// Fixed locations the lab shares with the daemon and the checkout.
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url)).replace(/\/$/, '');
/** Where a lab records its owner's pid, so a later run can tell a stale lab from a live one. */
export const LAB_RUN_DIR = '/run/syncwall-lab';
/**
 * syncwalld pins its maps and links under <bpffs>/<instance>; a lab's
 * instance is its prefix. Not /sys/fs/bpf: `ip netns exec` remounts /sys,
 * which hides the host's bpffs from the daemon, and a bpffs mounted afresh
 * inside would be a new, empty instance on every start (a restarted daemon
 * would not find its pins). A bpffs mounted here on the host stays visible.
 */
export const BPFFS_ROOT = `${LAB_RUN_DIR}/bpffs`;
