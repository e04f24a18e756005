/**
 * A minimal protobuf reader for the two server messages the session decodes before (or
 * without) a proto-loader type: types.Bundle from GetBundle, right after attestation, and
 * types.PermissionDeniedDetails inside a gRPC status. Unknown fields are skipped.
 */
export interface Field {
  readonly no: number;
  /** Varint value (wire type 0). */
  readonly varint?: bigint;
  /** Length-delimited bytes (wire type 2). */
  readonly bytes?: Uint8Array;
}

export function readFields(buf: Uint8Array): Field[] {
  const out: Field[] = [];
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (pos >= buf.length) throw new Error('protobuf: truncated varint');
      const b = buf[pos++] as number;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 63n) throw new Error('protobuf: varint too long');
    }
  };
  while (pos < buf.length) {
    const tag = Number(varint());
    const no = tag >>> 3;
    switch (tag & 7) {
      case 0:
        out.push({ no, varint: varint() });
        break;
      case 1:
        pos += 8;
        break;
      case 2: {
        const len = Number(varint());
        if (pos + len > buf.length) throw new Error('protobuf: truncated field');
        out.push({ no, bytes: buf.subarray(pos, pos + len) });
        pos += len;
        break;
      }
      case 5:
        pos += 4;
        break;
      default:
        throw new Error(`protobuf: unsupported wire type ${tag & 7}`);
    }
  }
  return out;
}

/** types.Bundle → own trust domain name and X.509 authorities (with their tainted flag). */
export function decodeBundleX509(buf: Uint8Array): { trustDomain: string; x509: { der: Uint8Array; tainted: boolean }[] } {
  let trustDomain = '';
  const x509: { der: Uint8Array; tainted: boolean }[] = [];
  for (const f of readFields(buf)) {
    if (f.no === 1 && f.bytes) trustDomain = Buffer.from(f.bytes).toString('utf8');
    if (f.no === 2 && f.bytes) {
      let der: Uint8Array = new Uint8Array();
      let tainted = false;
      for (const g of readFields(f.bytes)) {
        if (g.no === 1 && g.bytes) der = new Uint8Array(g.bytes);
        if (g.no === 2 && g.varint !== undefined) tainted = g.varint !== 0n;
      }
      x509.push({ der, tainted });
    }
  }
  return { trustDomain, x509 };
}

export const PERMISSION_DENIED_REASONS = ['UNKNOWN', 'AGENT_EXPIRED', 'AGENT_NOT_ATTESTED', 'AGENT_NOT_ACTIVE', 'AGENT_BANNED', 'AGENT_MUST_REATTEST'] as const;
export type PermissionDeniedReason = (typeof PERMISSION_DENIED_REASONS)[number];

/**
 * The PermissionDeniedDetails reasons in a gRPC error's `grpc-status-details-bin` trailer
 * (google.rpc.Status{3: repeated Any{1 type_url, 2 value}}).
 */
export function permissionDeniedReasons(statusDetails: Uint8Array): PermissionDeniedReason[] {
  const out: PermissionDeniedReason[] = [];
  for (const f of readFields(statusDetails)) {
    if (f.no !== 3 || !f.bytes) continue;
    let typeUrl = '';
    let value: Uint8Array | undefined;
    for (const g of readFields(f.bytes)) {
      if (g.no === 1 && g.bytes) typeUrl = Buffer.from(g.bytes).toString('utf8');
      if (g.no === 2 && g.bytes) value = g.bytes;
    }
    if (!typeUrl.endsWith('/spire.api.types.PermissionDeniedDetails')) continue;
    let reason = 0;
    for (const g of readFields(value ?? new Uint8Array())) if (g.no === 1 && g.varint !== undefined) reason = Number(g.varint);
    out.push(PERMISSION_DENIED_REASONS[reason] ?? 'UNKNOWN');
  }
  return out;
}
