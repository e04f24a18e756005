/**
 * k8s_psat against a real single-node Kubernetes (scripts/kube.sh: kube-apiserver and kubelet
 * v1.34.4) and the real spire-server v1.13.3, whose k8s_psat plugin asks the apiserver's
 * TokenReview about the token and reads the pod and node it is bound to. Tokens are minted with
 * the TokenRequest API, bound to a running pod, audience spire-server, as the kubelet mints the
 * projected token a DaemonSet's agent reads.
 *
 * Differential: spire-agent v1.13.3 and spiffe-agent attest in turn on the same node and must get
 * the same agent ID (spiffe://<td>/spire/agent/k8s_psat/<cluster>/<node uid>), the same selectors
 * (read from the server's agent list) and re-attest instead of renewing, reading the token file
 * again (it is replaced before the re-attestation). Then the refusals, both agents: an expired
 * token, another audience, a missing token file, a cluster the server does not know.
 *
 * The expired token is the one thing TokenRequest will not mint (10 minutes at least): it is a
 * minted token with exp moved into the past and signed again with the cluster's own
 * service-account key, which the apiserver verifies like any token it issued.
 */
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JSON_LOGS, agentConfFor, jsonLogs, startAgent, startSpireServer, waitFor, type AgentConf, type AgentKind, type SpireBinaries, type SpireServer } from '../../helpers/spire/index.js';
import { planKube, startKube, type KubeCluster } from '../../helpers/kube/cluster.js';
import { Cleanup, KINDS, TD, plan } from '../server/fixture.js';

const kube = planKube();
const skip = plan.skip || kube.skip;
const CLUSTER = 'spiffe-agent-test';
const NS = 'spire';
const SA = 'spire-agent';
const POD = 'spire-agent-node';

let bins: SpireBinaries;
let cluster: KubeCluster;
let server: SpireServer;
let podUid: string;
let nodeUid: string;
const cleanup = new Cleanup();

beforeAll(async () => {
  if (skip) return;
  bins = plan.require();
  kube.require();
  cluster = await startKube();
  cleanup.defer(() => cluster.down());
  await cluster.ensureServiceAccount(NS, SA);
  podUid = await cluster.createPod({ name: POD, namespace: NS, serviceAccount: SA, labels: { app: 'spire-agent', tier: 'node' } });
  nodeUid = await cluster.nodeUid();
  server = cleanup.add(
    await startSpireServer({
      bins,
      agentTtl: '1m',
      pluginsExtra: `    NodeAttestor "k8s_psat" {
        plugin_data {
            clusters = {
                "${CLUSTER}" = {
                    service_account_allow_list = ["${NS}:${SA}"]
                    kube_config_file = "${cluster.env.KUBECONFIG}"
                    allowed_pod_label_keys = ["app"]
                    allowed_node_label_keys = ["kubernetes.io/os"]
                }
            }
        }
    }\n`,
    }),
  );
}, 600_000);
afterAll(() => cleanup.run(), 300_000);

const agentId = () => `spiffe://${TD}/spire/agent/k8s_psat/${CLUSTER}/${nodeUid}`;
const podToken = (audience = 'spire-server') => cluster.token({ namespace: NS, serviceAccount: SA, audience, pod: { name: POD, uid: podUid } });

async function confFor(kind: AgentKind, what: string, o: { cluster?: string; tokenPath?: string } = {}): Promise<AgentConf & { tokenPath: string }> {
  const conf = await agentConfFor(server, { agentExtra: JSON_LOGS }, `k8s-psat-${what}-${kind}`);
  const tokenPath = o.tokenPath ?? join(conf.dir, 'token');
  return { ...conf, tokenPath, nodeAttestor: { name: 'k8s_psat', data: `            cluster = "${o.cluster ?? CLUSTER}"\n            token_path = "${tokenPath}"` } };
}

interface Seen {
  id: string;
  attestationType: string;
  canReattest: boolean;
  selectors: string[];
}

describe.skipIf(skip)('k8s_psat: spire-agent v1.13.3 and spiffe-agent on the same node', () => {
  it('same agent ID and selectors from the real server and apiserver; both re-attest, reading the token again', async () => {
    const seen: Partial<Record<AgentKind, Seen>> = {};
    for (const kind of KINDS) {
      const conf = await confFor(kind, 'same');
      const tokens = [await podToken()];
      await writeFile(conf.tokenPath, tokens[0]!, { mode: 0o600 });
      const agent = cleanup.add(await startAgent(kind, bins, conf));
      const me = await waitFor(`${kind}: ${agentId()} in the agent list`, async () => (await server.listAgents()).find((x) => x.id === agentId()), { timeoutMs: 30_000, describe: () => agent.logTail() });
      const sel = (me.raw['selectors'] ?? []) as { type: string; value: string }[];
      seen[kind] = { id: me.id, attestationType: me.attestationType, canReattest: me.canReattest, selectors: sel.map((s) => `${s.type}:${s.value}`).sort() };
      // A new token before the re-attestation: the agent must read the file again, not reuse the old one.
      tokens.push(await podToken());
      await writeFile(conf.tokenPath, tokens[1]!, { mode: 0o600 });
      await waitFor(
        `${kind} to re-attest`,
        async () => {
          const now = (await server.listAgents()).find((x) => x.id === agentId());
          return now && now.serial !== me.serial ? now : undefined;
        },
        { timeoutMs: 75_000, intervalMs: 1_000, describe: () => agent.logTail() },
      );
      const msgs = jsonLogs(agent).map((r) => String(r['msg']));
      if (kind === 'spire-agent') expect(msgs, agent.logTail()).toContain('Successfully reattested node');
      else expect(msgs.filter((m) => m === 'Attesting with projected service account token').length, agent.logTail()).toBeGreaterThanOrEqual(2);
      expect(msgs, `${kind} renewed instead of re-attesting`).not.toContain('Renewing agent SVID');
      if (kind === 'spiffe-agent') for (const t of tokens) expect(agent.daemon.lines.join('\n'), 'the token is never logged').not.toContain(t.split('.')[2]!);
      await agent.destroy();
      await server.evictAgent(agentId());
    }
    for (const s of Object.values(seen)) {
      console.info(`k8s_psat: ${s.id} ${s.attestationType} reattestable=${s.canReattest} selectors=${s.selectors.join(' ')}`);
      expect(s.id).toBe(agentId());
      expect(s.attestationType).toBe('k8s_psat');
      expect(s.canReattest).toBe(true);
      expect(s.selectors).toEqual(
        [
          `k8s_psat:cluster:${CLUSTER}`,
          `k8s_psat:agent_ns:${NS}`,
          `k8s_psat:agent_sa:${SA}`,
          `k8s_psat:agent_pod_name:${POD}`,
          `k8s_psat:agent_pod_uid:${podUid}`,
          `k8s_psat:agent_node_ip:${cluster.env.KUBE_NODE_IP}`,
          `k8s_psat:agent_node_name:${cluster.env.KUBE_NODE_NAME}`,
          `k8s_psat:agent_node_uid:${nodeUid}`,
          'k8s_psat:agent_pod_label:app:spire-agent',
          'k8s_psat:agent_node_label:kubernetes.io/os:linux',
        ].sort(),
      );
    }
    if (seen['spire-agent'] && seen['spiffe-agent']) expect(seen['spiffe-agent']).toEqual(seen['spire-agent']);
  }, 400_000);
});

describe.skipIf(skip)('k8s_psat refusals, both agents', () => {
  // TokenReview's answer: an error naming the reason, or just "not authenticated".
  const notAuthenticated = /token not authenticated according to TokenReview API|unable to validate token with TokenReview API/;
  const CASES: { name: string; token?: () => Promise<string>; cluster?: string; missing?: boolean; both: RegExp; ours: RegExp }[] = [
    {
      name: 'expired token',
      token: async () => {
        const now = Math.floor(Date.now() / 1000);
        return cluster.resign(await podToken(), { iat: now - 7200, nbf: now - 7200, exp: now - 3600 });
      },
      both: /unable to validate token with TokenReview API: .*service account token has expired|token not authenticated according to TokenReview API/,
      ours: /the token in \S+ expired at \d{4}-/,
    },
    { name: 'wrong audience', token: () => podToken('not-spire-server'), both: notAuthenticated, ours: /the token's audience is \["not-spire-server"\]; the server expects "spire-server"/ },
    { name: 'missing token file', missing: true, both: /unable to load token from \/tmp\/\S+\/no-such-token/, ours: /does not exist: mount the pod's projected service-account token there/ },
    { name: 'unknown cluster', token: () => podToken(), cluster: 'no-such-cluster', both: /not configured for cluster \\?"no-such-cluster\\?"/, ours: /the server's k8s_psat has no cluster "no-such-cluster"/ },
  ];

  it('each is refused with a message naming the cause; no agent is attested', async () => {
    const runs = CASES.flatMap((c) =>
      KINDS.map(async (kind) => {
        const slug = c.name.replace(/\W+/g, '-');
        const probe = await confFor(kind, slug);
        const conf = c.missing ? await confFor(kind, slug, { tokenPath: join(probe.dir, 'no-such-token') }) : await confFor(kind, slug, { cluster: c.cluster });
        await rm(probe.dir, { recursive: true, force: true });
        if (c.token) await writeFile(conf.tokenPath, await c.token(), { mode: 0o600 });
        const agent = cleanup.add(await startAgent(kind, bins, conf, { waitReady: false }));
        const t0 = Date.now();
        const log = await agent.waitExit(150_000);
        return { c, kind, log, exit: agent.daemon.proc.exitCode, ms: Date.now() - t0 };
      }),
    );
    const results = await Promise.all(runs);
    for (const r of results) {
      const last = r.log.split('\n').filter((l) => /k8s_psat|token|cluster/i.test(l)).slice(-1)[0] ?? '';
      console.info(`k8s_psat ${r.c.name}: ${r.kind} exit=${r.exit} after ${r.ms} ms: ${last.slice(0, 700)}`);
    }
    for (const r of results) {
      expect(r.exit, `${r.kind} ${r.c.name}`).not.toBe(0);
      expect(r.log, `${r.kind} ${r.c.name}`).toMatch(r.c.both);
      if (r.kind === 'spiffe-agent') expect(r.log, r.c.name).toMatch(r.c.ours);
    }
    expect((await server.listAgents()).filter((a) => a.attestationType === 'k8s_psat')).toEqual([]);
  }, 300_000);
});
