// The FTP helper: a control connection's PORT/EPRT commands and 227/229
// replies (parsed strictly by ftp-parse.ts) become the data connection to
// expect, and the packet is held until the expectation reached the cluster.
// Refused lines (a bounce to a third host, privileged ports, broken or
// oversized lines) create nothing, are counted by reason and are still
// forwarded: the server answers a command it cannot use, as without a
// firewall.
import { HelperId } from '../gen/layout.js';
import { IPPROTO_TCP } from '../net/protocols.js';
import { parseFtpPayload, type FtpRefusal } from './ftp-parse.js';
import { NOTHING, type HelperDecision, type HelperPacket, type ProtocolHelper } from './helper.js';

const REFUSALS: readonly FtpRefusal[] = ['truncated', 'oversized', 'malformed', 'address-mismatch', 'family-mismatch', 'privileged-port'];

export class FtpHelper implements ProtocolHelper {
  readonly id = HelperId.HELPER_FTP;
  readonly name = 'ftp';
  private readonly refused = new Map<FtpRefusal, number>(REFUSALS.map((r) => [r, 0]));
  private active = 0;
  private passive = 0;

  inspect(pkt: HelperPacket): HelperDecision {
    // The originator of the control connection is the FTP client.
    const r = parseFtpPayload(pkt.payload, pkt.fromOriginator, { family: pkt.family, client: pkt.originator, server: pkt.responder });
    if (r.kind === 'none') return NOTHING;
    if (r.kind === 'refused') {
      this.refused.set(r.reason, this.refused.get(r.reason)! + 1);
      return NOTHING;
    }
    const e = r.expectation;
    if (e.mode === 'active') this.active++;
    else this.passive++;
    // The data connection's source port is left open by the protocol (20 by custom, not by rule).
    return { expect: [{ proto: IPPROTO_TCP, from: e.from, fromPort: 0, to: e.to, toPort: e.port }], hold: true };
  }

  counters(): Record<string, bigint> {
    const out: Record<string, bigint> = { ftp_expect_active: BigInt(this.active), ftp_expect_passive: BigInt(this.passive) };
    for (const [reason, n] of this.refused) out[`ftp_refused_${reason.replaceAll('-', '_')}`] = BigInt(n);
    return out;
  }
}
