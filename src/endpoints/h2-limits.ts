/**
 * Bounds on what one client may make the :authority filter buffer or decode, checked while
 * the bytes arrive (never after buffering them), and the GOAWAY an offending connection gets.
 *
 * The numbers: the gRPC server behind the filter is Node's HTTP/2 (nghttp2) as grpc-js
 * configures it, which advertises SETTINGS_MAX_FRAME_SIZE 16,384 and enforces a header list
 * of 65,535 octets and 128 fields (Node's maxHeaderListSize / maxHeaderListPairs defaults);
 * grpc-go's server allows a 16 MiB header list. The Workload and SDS APIs carry everything
 * in messages: a real request's headers are well under 1 KiB (Envoy's under 2 KiB). So the
 * frame size matches what the server advertised, and the header list is bounded at 16 KiB,
 * stricter than both, which also bounds the HPACK work one header block can cost to about a
 * millisecond. Rapid reset (CVE-2023-44487) gets a token bucket stricter than nghttp2's
 * (burst 1,000, 33/s): no Workload API client cancels more than a few streams a second.
 */
import { SpiffeAgentError } from '../errors.js';

export interface H2Limits {
  /** SETTINGS_MAX_FRAME_SIZE the server advertised; any larger frame is FRAME_SIZE_ERROR. */
  readonly maxFrameSize: number;
  /** Octets of one header block as sent (compressed, with CONTINUATION frame headers). */
  readonly maxHeaderBlock: number;
  /** RFC 7541 §4.1 size of the decoded header list: name + value + 32 per field. */
  readonly maxHeaderListSize: number;
  readonly maxHeaderFields: number;
  /** Client RST_STREAMs allowed at once, and refilled per second. */
  readonly resetBurst: number;
  readonly resetsPerSecond: number;
}

export const DEFAULT_H2_LIMITS: H2Limits = Object.freeze({
  maxFrameSize: 16_384,
  maxHeaderBlock: 16_384,
  maxHeaderListSize: 16_384,
  maxHeaderFields: 128,
  resetBurst: 100,
  resetsPerSecond: 10,
});

/** RFC 9113 §7 error codes used here. */
export const H2Code = Object.freeze({
  PROTOCOL_ERROR: 0x1,
  FRAME_SIZE_ERROR: 0x6,
  COMPRESSION_ERROR: 0x9,
  ENHANCE_YOUR_CALM: 0xb,
});

/** A connection-level error: the connection gets GOAWAY with `h2Code` and is closed. */
export class H2ProtocolError extends SpiffeAgentError<'h2_protocol'> {
  constructor(
    message: string,
    readonly h2Code: number = H2Code.PROTOCOL_ERROR,
  ) {
    super('h2_protocol', `h2filter: ${message}`);
  }
}

/** A GOAWAY frame (RFC 9113 §6.8) on stream 0. */
export function goawayFrame(lastStreamId: number, code: number): Buffer {
  const f = Buffer.alloc(9 + 8);
  f.writeUIntBE(8, 0, 3);
  f[3] = 0x7;
  f.writeUInt32BE(lastStreamId & 0x7fffffff, 9);
  f.writeUInt32BE(code >>> 0, 13);
  return f;
}

/** Token bucket for client stream resets; `now` in milliseconds. */
export class ResetBudget {
  private tokens: number;
  private at: number;

  constructor(
    private readonly limits: Pick<H2Limits, 'resetBurst' | 'resetsPerSecond'>,
    private readonly now: () => number,
  ) {
    this.tokens = limits.resetBurst;
    this.at = now();
  }

  /** Spends one token; false once the client resets faster than allowed. */
  take(): boolean {
    const t = this.now();
    if (t > this.at) {
      this.tokens = Math.min(this.limits.resetBurst, this.tokens + ((t - this.at) / 1000) * this.limits.resetsPerSecond);
    }
    this.at = t;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
