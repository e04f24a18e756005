import { spawn, type ChildProcess } from 'node:child_process';

/**
 * A real child process, under the given uid/gid, that connects to a Unix socket and
 * stays connected until killed. Tests run as root so they can pick any uid.
 */
export function connectAs(socketPath: string, ids: { uid?: number; gid?: number } = {}): ChildProcess {
  const code = `const s=require('net').connect(${JSON.stringify(socketPath)});s.on('error',e=>{console.error(e.message);process.exit(3)});setInterval(()=>{},1e6);`;
  return spawn(process.execPath, ['-e', code], { stdio: 'ignore', ...ids });
}

/** A real sleeping child process under the given ids. */
export function sleeper(ids: { uid?: number; gid?: number } = {}): ChildProcess {
  return spawn(process.execPath, ['-e', 'setInterval(()=>{},1e6)'], { stdio: 'ignore', ...ids });
}

export async function waitExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise((r) => child.once('exit', r));
}
