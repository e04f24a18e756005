/**
 * A network namespace of a test's own, for spire-agent v1.13.3's azure_msi, which always asks
 * http://169.254.169.254 (no endpoint setting). Inside it 169.254.169.254/32 is put on the
 * namespace's own loopback (this kernel has no `dummy` link type: "Unknown device type"), so
 * nothing is ever sent to the host's link-local range.
 *
 * The test process stays in the host's namespace, yet everything it serves (the IMDS stand-in,
 * the recording attest server, spire-server) must be reachable from the agents inside. So one
 * small Node child runs in the namespace only to create listening sockets there and hand them
 * over Node's IPC channel (SCM_RIGHTS; a socket keeps the namespace it was made in); the test
 * serves on them in-process: the stand-in directly, the servers through a TCP relay to their
 * host loopback port. The agents run under `ip netns exec NAME` (see `prefix`).
 *
 * Removal: close() ends the child and deletes the namespace; a namespace left behind by a killed
 * test run (its creator's pid gone) is deleted by the next create().
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { promisify } from 'node:util';

const run = promisify(execFile);
const PREFIX = 'spiffe-it-';

/** Runs in the namespace: listens where asked, sends the listening handle, and closes its copy. */
const CHILD = `
process.on('disconnect', () => process.exit(0));
const net = require('node:net');
process.on('message', (m) => {
  const s = net.createServer();
  s.once('error', (e) => process.send({ id: m.id, error: String(e) }));
  s.listen(m.port, m.host, () => process.send({ id: m.id, port: s.address().port }, s, () => s.close()));
});
`;

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

export class TestNetns {
  private readonly servers: Server[] = [];
  private readonly sockets = new Set<Socket>();
  private next = 0;

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
  ) {}

  /** Whether this process may create namespaces (root and the `ip` tool). */
  static async available(): Promise<string | undefined> {
    if (process.getuid?.() !== 0) return 'not root';
    try {
      await run('ip', ['netns', 'list']);
      return undefined;
    } catch (err) {
      return `ip netns: ${(err as Error).message}`;
    }
  }

  /** A fresh namespace with lo up and `addresses` (each /32) on it. */
  static async create(addresses: readonly string[]): Promise<TestNetns> {
    await TestNetns.removeStale();
    const name = `${PREFIX}${process.pid}-${randomBytes(3).toString('hex')}`;
    await run('ip', ['netns', 'add', name]);
    try {
      await run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
      for (const a of addresses) await run('ip', ['-n', name, 'addr', 'add', `${a}/32`, 'dev', 'lo']);
      const child = spawn('ip', ['netns', 'exec', name, process.execPath, '-e', CHILD], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      return new TestNetns(name, child);
    } catch (err) {
      await run('ip', ['netns', 'del', name]).catch(() => undefined);
      throw err;
    }
  }

  /** Namespaces this helper made in runs whose process is gone. */
  private static async removeStale(): Promise<void> {
    const { stdout } = await run('ip', ['netns', 'list']);
    for (const line of stdout.split('\n')) {
      const m = new RegExp(`^(${PREFIX}(\\d+)-[0-9a-f]+)`).exec(line);
      if (m && !alive(Number(m[2]))) await run('ip', ['netns', 'del', m[1]!]).catch(() => undefined);
    }
  }

  /** The command prefix that runs a program inside the namespace. */
  get prefix(): string[] {
    return ['ip', 'netns', 'exec', this.name];
  }

  /** A socket listening at host:port inside the namespace (port 0: any), for a server in this process. */
  listen(host: string, port: number): Promise<{ handle: Server; port: number }> {
    const id = ++this.next;
    return new Promise((resolve, reject) => {
      const done = () => {
        this.child.off('message', onMessage);
        this.child.off('exit', onExit);
      };
      const onMessage = (m: { id: number; port?: number; error?: string }, handle: unknown) => {
        if (m.id !== id) return;
        done();
        if (m.error !== undefined || handle === undefined) reject(new Error(`netns ${this.name}: listen ${host}:${port}: ${m.error ?? 'no handle'}`));
        else resolve({ handle: handle as Server, port: m.port! });
      };
      const onExit = () => {
        done();
        reject(new Error(`netns ${this.name}: the listener child exited before listening on ${host}:${port}`));
      };
      this.child.on('message', onMessage).once('exit', onExit);
      this.child.send({ id, host, port });
    });
  }

  /** A TCP relay: 127.0.0.1:<returned port> inside the namespace to 127.0.0.1:targetPort outside. */
  async relay(targetPort: number): Promise<number> {
    const { handle, port } = await this.listen('127.0.0.1', 0);
    const server = createServer((inside) => {
      const outside = connect(targetPort, '127.0.0.1');
      inside.pipe(outside).pipe(inside);
      this.sockets.add(inside).add(outside);
      const end = () => {
        inside.destroy();
        outside.destroy();
        this.sockets.delete(inside);
        this.sockets.delete(outside);
      };
      inside.on('error', end).on('close', end);
      outside.on('error', end).on('close', end);
    });
    await new Promise<void>((resolve) => server.listen(handle, resolve));
    this.servers.push(server);
    return port;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    for (const s of this.servers.splice(0)) await new Promise<void>((resolve) => s.close(() => resolve()));
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
      this.child.disconnect();
      await exited;
    }
    await run('ip', ['netns', 'del', this.name]);
  }
}
