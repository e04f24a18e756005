import { describe, expect, it } from 'vitest';
import { parseFlags } from '../../../src/cli/flags.js';
import { RUN_FLAGS, runFlagOverrides } from '../../../src/cli/commands/run-flags.js';

const overrides = (...args: string[]) => {
  const { values, set } = parseFlags(args, RUN_FLAGS);
  return runFlagOverrides(values, set);
};

describe("run's flags over agent.conf, as spire-agent v1.13.3 merges them", () => {
  it('overrides nothing when no flag is given (a default-true -retryBootstrap included)', () => {
    expect(overrides()).toEqual({});
  });

  it('maps each flag to its agent.conf key', () => {
    expect(
      overrides('-joinTokenFile', '/t', '-trustBundleFormat', 'spiffe', '-rebootstrapMode', 'auto', '-rebootstrapDelay', '1m', '-serverPort', '8081', '-insecureBootstrap', '-logSourceLocation'),
    ).toEqual({
      join_token_file: '/t',
      trust_bundle_format: 'spiffe',
      rebootstrap_mode: 'auto',
      rebootstrap_delay: '1m',
      server_port: 8081,
      insecure_bootstrap: true,
      log_source_location: true,
    });
  });

  it('-retryBootstrap overrides only when given, either way', () => {
    expect(overrides('-retryBootstrap=false')).toEqual({ retry_bootstrap: false });
    expect(overrides('-retryBootstrap')).toEqual({ retry_bootstrap: true });
  });
});
