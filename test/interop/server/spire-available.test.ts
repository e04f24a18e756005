/**
 * One visible verdict on the SPIRE build the server suite needs: passes when spire-server and
 * spire-agent v1.13.3 are there and report that version; in CI (CI=true or SPIRE_REQUIRED=1) a
 * missing or failed build is a failed test with the reason (the build log's tail), never a skip.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { plan } from './fixture.js';

describe.skipIf(plan.skip)('SPIRE for the server suite', () => {
  it('spire-server and spire-agent v1.13.3 are built (scripts/spire.sh)', () => {
    const bins = plan.require();
    const want = bins.version.replace(/^v/, '');
    for (const bin of [bins.server, bins.agent]) {
      const r = spawnSync(bin, ['--version'], { encoding: 'utf8' }); // SPIRE prints its version on stderr
      const out = `${r.stdout}${r.stderr}`.trim();
      expect(out, bin).toMatch(new RegExp(`^${want.replace(/\./g, '\\.')}\\b`));
    }
  });
});
