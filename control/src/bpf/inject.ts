// Puts frames back on the wire from the controller with BPF_PROG_TEST_RUN in
// live-frames mode: the kernel runs an XDP program on the frame as if it had
// arrived on the given interface and then really performs the verdict
// (XDP_PASS into the stack, XDP_REDIRECT/XDP_TX out of an interface).
//
// Re-injecting a first packet through the main program itself (rather than
// sending it from user space with AF_PACKET) means one code path tracks every
// packet: the program finds the blank entry the controller just inserted,
// runs the TCP state machine on the SYN, emits the "new" event and forwards
// it with the same FIB lookup as any later packet. No MAC, TTL or checksum
// rewriting in user space, and no neighbour resolution of our own.
import { BPF_F_TEST_XDP_LIVE_FRAMES, progTestRunInPlace } from './libbpf.js';

// struct xdp_md { data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex }
const XDP_MD_SIZE = 24;
const XDP_MD_DATA_END = 4;
const XDP_MD_INGRESS_IFINDEX = 12;

export class FrameInjector {
  private readonly ctx = Buffer.alloc(XDP_MD_SIZE);
  private readonly mainProgFd: number;
  private readonly txProgFd: number;

  constructor(mainProgFd: number, txProgFd: number) {
    this.mainProgFd = mainProgFd;
    this.txProgFd = txProgFd;
  }

  /** Runs the main program on a frame as if it had just arrived on ifindex. */
  reinject(frame: Uint8Array, ifindex: number): void {
    this.run(this.mainProgFd, frame, ifindex);
  }

  /** Transmits a crafted frame out of ifindex (xdp_tx_out returns XDP_TX). */
  transmit(frame: Uint8Array, ifindex: number): void {
    this.run(this.txProgFd, frame, ifindex);
  }

  private run(progFd: number, frame: Uint8Array, ifindex: number): void {
    this.ctx.writeUInt32LE(frame.length, XDP_MD_DATA_END);
    this.ctx.writeUInt32LE(ifindex, XDP_MD_INGRESS_IFINDEX);
    progTestRunInPlace(progFd, frame, this.ctx, BPF_F_TEST_XDP_LIVE_FRAMES);
  }
}
