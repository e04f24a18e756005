import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../../src/config/load.js';
import { expandEnv } from '../../../src/config/expand-env.js';

const HCL = `agent {
  trust_domain = "example.org"
  log_level = "debug"
  log_selectors = ["unix:uid"]
  sds {
    default_svid_name = "svid"
  }
}
plugins {
  WorkloadAttestor "unix" {
    plugin_data {
      discover_workload_path = true
      workload_size_limit = 10
    }
  }
  KeyManager "memory" {
    plugin_data {}
  }
  NodeAttestor "join_token" {
    enabled = false
    plugin_data {}
  }
}
embedded_authority {
  ca_ttl = "48h"
  ca_subject {
    country = ["DE"]
    common_name = "ca"
  }
  federated_bundles = { "partner.org" = "/b.json" }
}
health_checks {
  listener_enabled = true
  bind_port = "8080"
}
`;

const JSON_ARRAY_FORM = {
  agent: { trust_domain: 'example.org', log_level: 'debug', log_selectors: ['unix:uid'], sds: { default_svid_name: 'svid' } },
  plugins: {
    WorkloadAttestor: [{ unix: { plugin_data: { discover_workload_path: true, workload_size_limit: 10 } } }],
    KeyManager: [{ memory: { plugin_data: {} } }],
    NodeAttestor: [{ join_token: { enabled: false, plugin_data: {} } }],
  },
  embedded_authority: { ca_ttl: '48h', ca_subject: { country: ['DE'], common_name: 'ca' }, federated_bundles: { 'partner.org': '/b.json' } },
  health_checks: { listener_enabled: true, bind_port: '8080' },
};

const JSON_OBJECT_FORM = {
  ...JSON_ARRAY_FORM,
  plugins: {
    WorkloadAttestor: { unix: { plugin_data: { discover_workload_path: true, workload_size_limit: 10 } } },
    KeyManager: { memory: { plugin_data: {} } },
    NodeAttestor: { join_token: { enabled: false, plugin_data: {} } },
  },
};

const strip = <T extends { source: string }>(c: T) => ({ ...c, source: '' });

describe('HCL and JSON', () => {
  it.each([
    ['the array form of plugins', JSON_ARRAY_FORM],
    ['the object form of plugins', JSON_OBJECT_FORM],
  ])('give the same config for HCL and for JSON in %s', async (_name, json) => {
    const fromHcl = await parseConfigText(HCL, '/c/agent.conf', { expandEnv: false });
    const fromJson = await parseConfigText(JSON.stringify(json, null, 2), '/c/agent.json', { expandEnv: false });
    expect(strip(fromJson)).toEqual(strip(fromHcl));
    expect(fromHcl.plugins.map((p) => p.path)).toEqual([
      'plugins.WorkloadAttestor.unix',
      'plugins.KeyManager.memory',
      'plugins.NodeAttestor.join_token',
    ]);
  });

  it('picks the format by extension: JSON text in a .conf file is parsed as HCL', async () => {
    // HCL2 is a superset of JSON object syntax only for attributes; a JSON document is not valid HCL.
    await expect(parseConfigText(JSON.stringify(JSON_ARRAY_FORM), '/c/agent.conf', { expandEnv: false })).rejects.toMatchObject({ code: 'config_syntax' });
  });
});

describe('-expandEnv', () => {
  it('replaces $VAR and ${VAR} from the given environment before parsing', async () => {
    const text = 'agent {\n  trust_domain = "${TD}"\n  join_token = "$TOKEN"\n  insecure_bootstrap = true\n  server_address = "srv"\n}\n';
    const c = await parseConfigText(text, 'a.conf', { expandEnv: true, env: { TD: 'example.org', TOKEN: 'secret' } });
    expect(c.agent.trustDomain).toBe('example.org');
    expect(c.mode === 'server' && c.server.joinToken).toBe('secret');
  });

  it('leaves the text alone without -expandEnv', async () => {
    const text = 'agent {\n  trust_domain = "example.org"\n  join_token = "$TOKEN"\n  server_address = "srv"\n  insecure_bootstrap = true\n}\n';
    const c = await parseConfigText(text, 'a.conf', { expandEnv: false, env: { TOKEN: 'x' } });
    expect(c.mode === 'server' && c.server.joinToken).toBe('$TOKEN');
  });

  it.each([
    ['$A', 'a'],
    ['${A}', 'a'],
    ['x$A.y', 'xa.y'],
    ['$UNSET', ''],
    ['$$', '$'],
    ['${}', ''],
    ['cost: $', 'cost: $'],
    ['a $ b', 'a $ b'],
    ['${A', 'A'],
  ])('expands %j to %j as Go os.Expand does', (input, out) => {
    expect(expandEnv(input, { A: 'a' })).toBe(out);
  });
});

describe('sample configuration files', () => {
  it.each(['conf/agent/agent.conf', 'conf/agent/agent.json', 'systemd/agent.conf'])('%s is valid', async (file) => {
    const text = await readFile(file, 'utf8');
    const c = await parseConfigText(text, file, { expandEnv: true, env: {} });
    expect(c.agent.trustDomain).toBe('example.org');
    expect(c.plugins.some((p) => p.type === 'WorkloadAttestor' && p.name === 'unix')).toBe(true);
  });

  it('conf/agent/agent.conf and conf/agent/agent.json say the same thing', async () => {
    const hcl = await parseConfigText(await readFile('conf/agent/agent.conf', 'utf8'), 'agent.conf', { expandEnv: false });
    const json = await parseConfigText(await readFile('conf/agent/agent.json', 'utf8'), 'agent.json', { expandEnv: false });
    expect(strip(json)).toEqual(strip(hcl));
  });

  it('systemd/agent.conf puts the socket where the socket unit listens, in the RuntimeDirectory, and data in its StateDirectory', async () => {
    const c = await parseConfigText(await readFile('systemd/agent.conf', 'utf8'), 'agent.conf', { expandEnv: false });
    const unit = await readFile('systemd/spiffe-agent.service', 'utf8');
    expect(c.agent.socketPath).toBe('/run/spire-agent/public/api.sock');
    expect(c.agent.dataDir).toBe('/var/lib/spire-agent');
    expect(unit).toMatch(/^RuntimeDirectory=spire-agent spire-agent\/public$/m);
    expect(unit).toMatch(/^StateDirectory=spire-agent$/m);
    const socketUnit = await readFile('systemd/spiffe-agent.socket', 'utf8');
    expect(socketUnit).toContain(`\nListenStream=${c.agent.socketPath}\n`);
    expect(socketUnit).toMatch(/^SocketMode=0777$/m);
    expect(unit).toMatch(/^Type=notify$/m);
    expect(unit).not.toMatch(/^ProtectProc=invisible/m);
    expect(unit).toMatch(/^CapabilityBoundingSet=.*CAP_SYS_PTRACE/m);
  });

  it('conf/entries.example.json is in spire-server entry create -data shape', async () => {
    const doc = JSON.parse(await readFile('conf/entries.example.json', 'utf8')) as { entries: Record<string, unknown>[] };
    expect(doc.entries[0]).toMatchObject({
      spiffe_id: 'spiffe://example.org/workload',
      parent_id: 'spiffe://example.org/spire/agent/local',
      selectors: [{ type: 'unix', value: 'uid:1000' }],
    });
  });
});
