// Counters of the peer sync transport. Plain numbers while counting (exact to
// 2^53, beyond any realistic uptime), bigint in the snapshot like every other
// counter syncwall reports.
export class TransportCounters {
  framesSent = 0;
  framesReceived = 0;
  bytesSent = 0;
  bytesReceived = 0;
  payloadsSent = 0;
  payloadsReceived = 0;
  /** entries, bulk records and removed keys */
  flowsSent = 0;
  flowsReceived = 0;
  /** payloads written again after a reconnect because they had not been acked */
  payloadsResent = 0;
  /** payloads received again (already delivered before a reconnect) and skipped */
  duplicatesSkipped = 0;
  /** payloads dropped from a full send queue before being acked (the periodic pass heals) */
  queueDrops = 0;
  /** payloads or frames that could not be decoded */
  malformed = 0;
  heartbeatTimeouts = 0;
  /** streams that completed the Hello exchange */
  connects = 0;
  /** dials that failed before the Hello exchange (peer down, TLS failure) */
  dialFailures = 0;
  /** peers this node refused: wrong certificate identity, wrong Hello */
  peersRefused = 0;
  /** dials the peer refused (PERMISSION_DENIED) */
  refusedByPeers = 0;

  snapshot(): Record<string, bigint> {
    return Object.fromEntries(Object.entries(this).map(([k, v]) => [k, BigInt(v as number)]));
  }
}
