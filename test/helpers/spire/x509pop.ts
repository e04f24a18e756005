/**
 * x509pop node credentials made with test/helpers/test-ca.ts: a CA the server trusts
 * (ca_bundle_path) and a node certificate + key for the agent. The agent ID the server assigns is
 * spiffe://<td>/spire/agent/x509pop/<sha1 of the leaf DER>.
 */
import { createHash } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TestCA } from '../test-ca.js';
import type { X509popFiles } from './agents.js';

function pem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

export interface X509popCA {
  ca: TestCA;
  dir: string;
  /** PEM of the root, for the server's ca_bundle_path */
  caBundlePath: string;
  /** Issues a node identity; with viaIntermediate the leaf is signed by an intermediate sent in intermediates_path. */
  issueNode(name: string, opts?: { viaIntermediate?: boolean }): Promise<X509popNode>;
  /** Removes the dir of certificates and keys. */
  destroy(): Promise<void>;
}

export interface X509popNode extends X509popFiles {
  fingerprint: string;
  agentId(trustDomain: string): string;
}

export async function makeX509popCA(trustDomain = 'example.org'): Promise<X509popCA> {
  const dir = await mkdtemp('/tmp/spire-it-x509pop-');
  await chmod(dir, 0o755);
  const ca = await TestCA.create(trustDomain);
  const caBundlePath = join(dir, 'ca.pem');
  await writeFile(caBundlePath, pem('CERTIFICATE', ca.der()));
  let intermediate: TestCA | undefined;
  return {
    ca,
    dir,
    caBundlePath,
    destroy: () => rm(dir, { recursive: true, force: true }),
    async issueNode(name, opts = {}) {
      let signer = ca;
      if (opts.viaIntermediate) signer = intermediate ??= await ca.createIntermediate();
      const svid = await signer.createX509SVID(`spiffe://${trustDomain}/node/${name}`, { ttlMs: 24 * 3600_000 });
      const leaf = svid.chain[0]!;
      const certificatePath = join(dir, `${name}.crt.pem`);
      const privateKeyPath = join(dir, `${name}.key.pem`);
      await writeFile(certificatePath, pem('CERTIFICATE', leaf));
      await writeFile(privateKeyPath, pem('PRIVATE KEY', svid.privateKeyPkcs8), { mode: 0o600 });
      let intermediatesPath: string | undefined;
      if (svid.chain.length > 1) {
        intermediatesPath = join(dir, `${name}.intermediates.pem`);
        await writeFile(intermediatesPath, svid.chain.slice(1).map((d) => pem('CERTIFICATE', d)).join(''));
      }
      const fingerprint = createHash('sha1').update(leaf).digest('hex');
      return {
        certificatePath,
        privateKeyPath,
        ...(intermediatesPath ? { intermediatesPath } : {}),
        fingerprint,
        agentId: (td: string) => `spiffe://${td}/spire/agent/x509pop/${fingerprint}`,
      };
    },
  };
}
