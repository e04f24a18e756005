/** Proto values in proto-loader's object form; the loaders live in src/proto (re-exported here). */
export { loadProto, PROTO_OPTIONS, protoRoot } from '../proto/load.js';

/** JSON value → google.protobuf.Value in proto-loader's object form. */
export function toProtoValue(v: unknown): Record<string, unknown> {
  if (v === null || v === undefined) return { nullValue: 'NULL_VALUE' };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(toProtoValue) } };
  if (typeof v === 'object') return { structValue: toProtoStruct(v as Record<string, unknown>) };
  return { stringValue: String(v) };
}

export function toProtoStruct(obj: Record<string, unknown>): { fields: Record<string, unknown> } {
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) fields[k] = toProtoValue(v);
  return { fields };
}
