/** Reads an HTTP response body with a size cap, so a misbehaving local API cannot exhaust memory. */
import type { IncomingMessage } from 'node:http';
import { SpiffeAgentError } from '../errors.js';

declare module '../errors.js' {
  interface ErrorCodes {
    net: 'body_too_large';
  }
}

export class BodyTooLargeError extends SpiffeAgentError<'body_too_large'> {
  constructor(readonly maxBytes: number) {
    super('body_too_large', `response body exceeds ${maxBytes} bytes`);
  }
}

export function readBody(res: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (c: Buffer) => {
      size += c.length;
      if (size > maxBytes) {
        res.destroy();
        reject(new BodyTooLargeError(maxBytes));
        return;
      }
      chunks.push(c);
    });
    res.on('end', () => resolve(Buffer.concat(chunks)));
    res.on('error', reject);
  });
}
