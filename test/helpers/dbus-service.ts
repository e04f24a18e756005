/**
 * Test-only: answers incoming D-Bus method calls on a connection with an async handler, the way a
 * service on the bus would. The daemon itself never serves methods, so this lives with the tests.
 * A handler throws DBusRemoteError to send that error; anything else becomes ...Error.Failed.
 */
import type { DBusConnection, Reply } from '../../src/dbus/connection.js';
import { DBusRemoteError } from '../../src/dbus/errors.js';
import type { Message } from '../../src/dbus/message.js';

export type MethodHandler = (call: Message) => Reply | Promise<Reply>;

export function serveMethods(conn: DBusConnection, handler: MethodHandler): void {
  conn.onMethodCall((call) => {
    void (async () => {
      let reply: Reply | DBusRemoteError;
      try {
        reply = await handler(call);
      } catch (err) {
        reply = err instanceof DBusRemoteError ? err : new DBusRemoteError('org.freedesktop.DBus.Error.Failed', (err as Error).message);
      }
      conn.replyTo(call, reply);
    })();
  });
}
