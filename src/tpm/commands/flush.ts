/**
 * TPM2_FlushContext (Part 3). The handle to flush is a parameter, not in the handle area, and the
 * command takes no session: flushing needs no authorization.
 */
import { CC } from '../constants.js';
import { Writer } from '../marshal.js';
import type { Command } from '../wire.js';

export function flushContextCommand(handle: number): Command<void> {
  return {
    spec: { cc: CC.FlushContext, handles: [], params: new Writer().u32(handle).finish(), responseHandles: 0 },
    parse: ({ params }) => params.end(),
  };
}
