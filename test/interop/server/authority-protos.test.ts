/**
 * Our server API protos against the spire-api-sdk that SPIRE v1.13.3 builds with (read from the Go
 * module cache that scripts/spire.sh fills): every message, field (name, number, type, repeated),
 * enum value and RPC (types, streaming) must match, so the wire format is the same. The protos
 * are ours, written from the field tables; this only compares them.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { requireTool } from '../../helpers/require-tool.js';
import { REPO } from '../../helpers/spire/index.js';

const FILES = [
  'spire/api/server/agent/v1/agent.proto',
  'spire/api/server/entry/v1/entry.proto',
  'spire/api/server/svid/v1/svid.proto',
  'spire/api/server/bundle/v1/bundle.proto',
];

function sdkProtoRoot(): string | undefined {
  const modCache = spawnSync('go', ['env', 'GOMODCACHE'], { encoding: 'utf8' }).stdout?.trim();
  if (!modCache) return undefined;
  const spireMod = join(modCache, 'github.com/spiffe/spire@v1.13.3/go.mod');
  if (!existsSync(spireMod)) return undefined;
  const version = /github\.com\/spiffe\/spire-api-sdk (\S+)/.exec(readFileSync(spireMod, 'utf8'))?.[1];
  const root = version && join(modCache, `github.com/spiffe/spire-api-sdk@${version}/proto`);
  return root && existsSync(root) ? root : undefined;
}

function load(root: string): protobuf.Root {
  const r = new protobuf.Root();
  r.resolvePath = (origin, target) => (target.startsWith('google/protobuf') ? protobuf.util.path.resolve(origin, target) : target.startsWith('/') ? target : join(root, target));
  r.loadSync(FILES.map((f) => join(root, f)), { keepCase: true });
  r.resolveAll();
  return r;
}

/** Every difference as a path, e.g. "spire.api.types.Entry.hint: missing". */
function diff(ref: protobuf.Root, ours: protobuf.Root): { diffs: string[]; checked: number } {
  const diffs: string[] = [];
  let checked = 0;
  const walk = (ns: protobuf.NamespaceBase): void => {
    for (const obj of ns.nestedArray) {
      if (obj instanceof protobuf.Type) {
        const o = ours.lookup(obj.fullName);
        if (!(o instanceof protobuf.Type)) {
          diffs.push(`${obj.fullName}: missing`);
          continue;
        }
        for (const f of obj.fieldsArray) {
          checked++;
          const g = o.fields[f.name];
          const type = (x: protobuf.Field) => x.resolvedType?.fullName ?? x.type;
          if (!g) diffs.push(`${obj.fullName}.${f.name}: missing`);
          else if (g.id !== f.id || type(g) !== type(f) || g.repeated !== f.repeated) diffs.push(`${obj.fullName}.${f.name}: ${g.id} ${type(g)} vs ${f.id} ${type(f)}`);
        }
        for (const g of o.fieldsArray) if (!obj.fields[g.name]) diffs.push(`${obj.fullName}.${g.name}: not in the sdk`);
      } else if (obj instanceof protobuf.Enum) {
        checked++;
        const o = ours.lookup(obj.fullName);
        if (!(o instanceof protobuf.Enum) || JSON.stringify(o.values) !== JSON.stringify(obj.values)) diffs.push(`${obj.fullName}: enum values differ`);
      } else if (obj instanceof protobuf.Service) {
        const o = ours.lookup(obj.fullName);
        for (const m of obj.methodsArray) {
          checked++;
          const g = o instanceof protobuf.Service ? o.methods[m.name] : undefined;
          if (
            !g ||
            g.resolvedRequestType?.fullName !== m.resolvedRequestType?.fullName ||
            g.resolvedResponseType?.fullName !== m.resolvedResponseType?.fullName ||
            !!g.requestStream !== !!m.requestStream ||
            !!g.responseStream !== !!m.responseStream
          ) {
            diffs.push(`${obj.fullName}/${m.name}: differs`);
          }
        }
      }
      if ('nestedArray' in obj && (obj as protobuf.NamespaceBase).nestedArray) walk(obj as protobuf.NamespaceBase);
    }
  };
  walk(ref.lookup('spire') as protobuf.Namespace);
  return { diffs, checked };
}

const sdk = sdkProtoRoot();
const noSdk = requireTool('spire-api-sdk in the Go module cache', sdk !== undefined, 'the protos are compared with the sdk SPIRE v1.13.3 builds with; scripts/spire.sh fills the cache (.ci/run also runs go mod download)');

describe.skipIf(noSdk)('server API protos are wire-compatible with spire-api-sdk as SPIRE v1.13.3 uses it', () => {
  it('every message, field, enum and RPC the sdk defines for the agent, entry, svid and bundle services matches ours', () => {
    const { diffs, checked } = diff(load(sdk!), load(join(REPO, 'proto')));
    expect(diffs).toEqual([]);
    expect(checked).toBeGreaterThan(200);
  });
});

