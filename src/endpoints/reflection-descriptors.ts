/**
 * proto-loader gives one synthetic FileDescriptorProto per package (`root.proto` for files with
 * no package) with no `dependency` list and field types named relative to their scope. grpc-go
 * clients (grpcurl's describe) reject such a file ("cannot resolve type"). This links them: every
 * type name made absolute, each file's dependency list set to the files its types come from, and
 * map entries named as protoc names them (protobufjs says `Federated_bundles`, protoc
 * `FederatedBundlesEntry`; grpc-go refuses the former as "an invalid map").
 */
import { createRequire } from 'node:module';

interface Field {
  name?: string;
  typeName?: string;
}
interface Message {
  name: string;
  options?: { mapEntry?: boolean };
  field?: Field[];
  nestedType?: Message[];
  enumType?: { name: string }[];
}
interface FileProto {
  name: string;
  package?: string;
  dependency?: string[];
  messageType?: Message[];
  enumType?: { name: string }[];
  service?: { name: string; method?: { inputType?: string; outputType?: string }[] }[];
}

interface Codec {
  decode(b: Uint8Array): FileProto;
  encode(f: FileProto): { finish(): Uint8Array };
}

/** Loaded when reflection is first used, not at agent start (see reflection.ts). */
function codec(): Codec {
  const descriptor = createRequire(import.meta.url)('protobufjs/ext/descriptor/index.js') as { FileDescriptorProto: Codec };
  return descriptor.FileDescriptorProto;
}

/** protoc's name for a map field's entry type: CamelCase of the field name, then `Entry`. */
export function mapEntryName(field: string): string {
  return field.replace(/(?:^|_)(.)/g, (_, c: string) => c.toUpperCase()).replace(/_/g, '') + 'Entry';
}

function renameMapEntries(m: Message): void {
  for (const n of m.nestedType ?? []) {
    renameMapEntries(n);
    if (!n.options?.mapEntry) continue;
    const field = (m.field ?? []).find((f) => f.typeName === n.name);
    if (!field?.name) continue;
    n.name = mapEntryName(field.name);
    field.typeName = n.name;
  }
}

/** The unique files of a package definition, linked and re-encoded. */
export function linkFileDescriptors(encoded: Iterable<Uint8Array>): Uint8Array[] {
  const FileDescriptorProto = codec();
  const files = new Map<string, FileProto>();
  for (const b of encoded) {
    const f = FileDescriptorProto.decode(b);
    if (files.has(f.name)) continue;
    for (const m of f.messageType ?? []) renameMapEntries(m);
    files.set(f.name, f);
  }
  const owner = new Map<string, string>();
  const prefix = (f: FileProto): string => (f.package ? `${f.package}.` : '');
  const indexMessage = (scope: string, m: Message, file: string): void => {
    owner.set(scope + m.name, file);
    for (const e of m.enumType ?? []) owner.set(`${scope}${m.name}.${e.name}`, file);
    for (const n of m.nestedType ?? []) indexMessage(`${scope}${m.name}.`, n, file);
  };
  for (const f of files.values()) {
    for (const m of f.messageType ?? []) indexMessage(prefix(f), m, f.name);
    for (const e of f.enumType ?? []) owner.set(prefix(f) + e.name, f.name);
    for (const s of f.service ?? []) owner.set(prefix(f) + s.name, f.name);
  }
  /** Protobuf scoping: innermost scope first, then outwards, then from the root. */
  const resolve = (name: string, scope: string): string | undefined => {
    if (name.startsWith('.')) return owner.has(name.slice(1)) ? name.slice(1) : undefined;
    const parts = scope === '' ? [] : scope.split('.');
    for (let i = parts.length; i >= 0; i--) {
      const candidate = [...parts.slice(0, i), name].join('.');
      if (owner.has(candidate)) return candidate;
    }
    return undefined;
  };
  for (const f of files.values()) {
    const deps = new Set<string>();
    const link = (name: string | undefined, scope: string): string | undefined => {
      if (!name) return name;
      const fqn = resolve(name, scope);
      if (!fqn) return name;
      const from = owner.get(fqn)!;
      if (from !== f.name) deps.add(from);
      return `.${fqn}`;
    };
    const visit = (scope: string, m: Message): void => {
      const inner = scope === '' ? m.name : `${scope}.${m.name}`;
      for (const field of m.field ?? []) field.typeName = link(field.typeName, inner);
      for (const n of m.nestedType ?? []) visit(inner, n);
    };
    const pkg = f.package ?? '';
    for (const m of f.messageType ?? []) visit(pkg, m);
    for (const s of f.service ?? []) {
      for (const m of s.method ?? []) {
        m.inputType = link(m.inputType, pkg);
        m.outputType = link(m.outputType, pkg);
      }
    }
    f.dependency = [...deps].sort();
  }
  return [...files.values()].map((f) => FileDescriptorProto.encode(f).finish());
}
