/**
 * TPM2_GetCapability (Part 3) for the two capabilities the client needs: handle lists (what is
 * loaded, to leave the TPM as we found it) and TPM properties (buffer sizes, lockout counters).
 */
import { CAP, CC } from '../constants.js';
import { Writer, type Reader } from '../marshal.js';
import type { Command, Runner } from '../wire.js';

export interface CapabilityPage<T> {
  readonly more: boolean;
  readonly items: readonly T[];
}

function capabilityCommand<T>(capability: number, property: number, count: number, item: (r: Reader) => T, itemSize: number): Command<CapabilityPage<T>> {
  const params = new Writer().u32(capability).u32(property).u32(count).finish();
  return {
    spec: { cc: CC.GetCapability, handles: [], params, responseHandles: 0 },
    parse({ params: r }) {
      const more = r.u8('moreData');
      if (more > 1) throw r.malformed(`moreData ${more} is not YES or NO`);
      const cap = r.u32('capability');
      if (cap !== capability) throw r.malformed(`capability 0x${cap.toString(16)} answers a question not asked (0x${capability.toString(16)})`);
      const n = r.u32('count');
      if (n * itemSize > r.remaining) throw r.malformed(`count ${n} needs ${n * itemSize} bytes, ${r.remaining} left`);
      const items: T[] = [];
      for (let i = 0; i < n; i++) items.push(item(r));
      r.end();
      return { more: more === 1, items };
    },
  };
}

export function handlesCommand(first: number, max = 254): Command<CapabilityPage<number>> {
  return capabilityCommand(CAP.HANDLES, first, max, (r) => r.u32('handle'), 4);
}

export interface TaggedProperty {
  readonly property: number;
  readonly value: number;
}

export function propertiesCommand(first: number, count: number): Command<CapabilityPage<TaggedProperty>> {
  return capabilityCommand(CAP.TPM_PROPERTIES, first, count, (r) => ({ property: r.u32('property'), value: r.u32('value') }), 8);
}

/** Every handle from `first` to the end of its range (the top byte), following moreData. */
export async function listHandles(tpm: Runner, first: number, signal?: AbortSignal): Promise<number[]> {
  const out: number[] = [];
  const range = first >>> 24;
  let next = first;
  for (;;) {
    const page = await tpm.run(handlesCommand(next), signal);
    const inRange = page.items.filter((h) => h >>> 24 === range && h >= next);
    out.push(...inRange);
    // A TPM that says "more" but gives nothing new would loop forever; stop there instead.
    if (!page.more || inRange.length === 0) return out;
    next = inRange[inRange.length - 1]! + 1;
  }
}

/** One TPM property, or undefined when the TPM does not report it. */
export async function getProperty(tpm: Runner, property: number, signal?: AbortSignal): Promise<number | undefined> {
  const page = await tpm.run(propertiesCommand(property, 1), signal);
  return page.items.find((p) => p.property === property)?.value;
}
