/** The minimal D-Bus client's marshalling, message framing and addresses, without a bus. */
import { describe, expect, it } from 'vitest';
import { parseAddress } from '../../../src/dbus/address.js';
import { DBusError } from '../../../src/dbus/errors.js';
import { MessageType, decodeMessage, encodeMessage, messageLength, type Message } from '../../../src/dbus/message.js';
import { WireReader, WireWriter, splitSignature } from '../../../src/dbus/wire.js';

const call: Message = {
  type: MessageType.MethodCall, flags: 0, serial: 7, destination: 'org.freedesktop.systemd1', path: '/org/freedesktop/systemd1',
  interface: 'org.freedesktop.systemd1.Manager', member: 'GetUnitByPID', signature: 'u', body: [4242],
};

function code(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(DBusError);
    return (err as DBusError).code;
  }
}

describe('D-Bus wire format', () => {
  it('encodes a GetUnitByPID call byte for byte as the specification lays it out', () => {
    const buf = encodeMessage(call);
    expect(buf.subarray(0, 12)).toEqual(Buffer.from([0x6c, 1, 0, 1, 4, 0, 0, 0, 7, 0, 0, 0]));
    expect(buf.length % 8).toBe(4); // 8-aligned header + one uint32 body
    expect(buf.readUInt32LE(buf.length - 4)).toBe(4242);
    expect(messageLength(buf)).toBe(buf.length);
    expect(messageLength(buf.subarray(0, buf.length - 1))).toBeUndefined();
  });

  it('round-trips a message with every header field we use', () => {
    const reply: Message = { type: MessageType.Error, flags: 1, serial: 9, replySerial: 7, errorName: 'org.freedesktop.systemd1.NoUnitForPID', sender: ':1.0', destination: ':1.1', signature: 's', body: ['PID 1 does not belong to any loaded unit.'] };
    expect(decodeMessage(encodeMessage(reply))).toEqual(reply);
    expect(decodeMessage(encodeMessage(call))).toEqual(call);
  });

  it('round-trips variants, arrays, structs and dicts with correct alignment', () => {
    const sig = 'yvas(ub)a{sv}xt';
    const values = [3, { signature: 's', value: '/lib/systemd/system/nginx.service' }, ['a', 'bc'], [1, true], [['k', { signature: 'o', value: '/a/b' }]], -5n, 2n ** 63n];
    const w = new WireWriter();
    splitSignature(sig).forEach((t, i) => w.value(t, values[i]));
    expect(new WireReader(w.toBuffer(), true).values(sig)).toEqual(values);
  });

  it('reads big-endian messages, which the bus forwards unchanged from big-endian peers', () => {
    // method return, serial 2; fields: REPLY_SERIAL (5) = u 1, then at the next 8-byte boundary SIGNATURE (8) = g "o"
    const fields = Buffer.from([5, 1, 0x75, 0, 0, 0, 0, 1, 8, 1, 0x67, 0, 1, 0x6f, 0]);
    const header = Buffer.concat([Buffer.from([0x42, 2, 0, 1, 0, 0, 0, 7, 0, 0, 0, 2, 0, 0, 0, 15]), fields.subarray(0, 15), Buffer.alloc(1)]);
    const body = Buffer.from([0, 0, 0, 2, 0x2f, 0x61, 0]);
    const m = decodeMessage(Buffer.concat([header, body]));
    expect({ type: m.type, replySerial: m.replySerial, signature: m.signature, body: m.body }).toEqual({ type: 2, replySerial: 1, signature: 'o', body: ['/a'] });
  });

  it.each([
    ['a truncated body', () => decodeMessage(encodeMessage(call).subarray(0, 40)), 'dbus_protocol'],
    ['a bad endianness byte', () => messageLength(Buffer.alloc(16, 0x41)), 'dbus_protocol'],
    ['a message over 128 MiB', () => messageLength(Buffer.from([0x6c, 1, 0, 1, 0xff, 0xff, 0xff, 0x7f, 1, 0, 0, 0, 0, 0, 0, 0])), 'dbus_protocol'],
    ['a string without its NUL', () => new WireReader(Buffer.from([1, 0, 0, 0, 0x61, 0x62]), true).value('s'), 'dbus_protocol'],
    ['an array longer than the message', () => new WireReader(Buffer.from([0xff, 0, 0, 0]), true).value('au'), 'dbus_protocol'],
    ['an invalid object path', () => new WireWriter().value('o', 'not/a/path'), 'dbus_protocol'],
    ['an unbalanced signature', () => splitSignature('(su'), 'dbus_protocol'],
    ['a uint32 out of range', () => new WireWriter().value('u', -1), 'dbus_protocol'],
  ])('rejects %s', (_name, fn, want) => {
    expect(code(fn)).toBe(want);
  });
});

describe('D-Bus addresses', () => {
  it.each([
    ['unix:path=/run/dbus/system_bus_socket', ['/run/dbus/system_bus_socket']],
    ['unix:path=/tmp/a%20b', ['/tmp/a b']],
    ['unix:abstract=/tmp/dbus-x,guid=00', ['\0/tmp/dbus-x']],
    ['tcp:host=localhost,port=1;unix:path=/s', ['/s']],
  ])('parses %s', (address, paths) => {
    expect(parseAddress(address).map((t) => t.path)).toEqual(paths);
  });

  it.each([['tcp:host=localhost,port=1'], ['unix:guid=1'], [''], ['nocolon'], ['unix:path=%zz']])('rejects %j', (address) => {
    expect(code(() => parseAddress(address))).toBe('dbus_address_invalid');
  });
});
