/**
 * What spire-server's http_challenge plugin (v1.13.3, pkg/server/plugin/nodeattestor/httpchallenge)
 * means by each refusal, in terms of the keys an operator can change. The server's words stay in
 * the error; this adds what to do. Matched on the server's message, as that is all the agent sees.
 */
import { challengePath } from './challenge-server.js';
import type { HttpChallengeConfig } from './config.js';

export function explainRefusal(c: HttpChallengeConfig, listenedPort: number | undefined, said: string): string | undefined {
  const port = c.advertisedPort || listenedPort;
  const url = `http://${c.hostname}:${port ?? '<port>'}${challengePath(c.agentName)}`;
  if (/the requested hostname is not allowed to connect/.test(said)) {
    return `hostname "${c.hostname}" matches none of the server's allowed_dns_patterns: set hostname to a name they allow, or extend them on the server`;
  }
  if (/you can not use localhost as a hostname/.test(said)) return 'set hostname to a DNS name of this node that the server resolves to it';
  if (/port \d+ is not allowed to be used by this server/.test(said)) {
    return 'the server accepts only its required_port: set port to it (or advertised_port, with a proxy from that port to port)';
  }
  if (/port \d+ is not allowed to be >= 1024/.test(said)) {
    return 'the server sets allow_non_root_ports = false: listen on a port below 1024 (root or CAP_NET_BIND_SERVICE), or advertise one with advertised_port and proxy it';
  }
  if (/agent name is not valid/.test(said)) {
    return `agentname "${c.agentName}" is not one the server takes (v1.13.3: letters followed by one letter, digit or dash, e.g. "default" or "web1")`;
  }
  if (/attestation data has already been used to attest an agent/.test(said)) {
    return `this hostname has attested before and the server trusts it on first use only (tofu): evict the old agent (spire-server agent evict -spiffeID <.../spire/agent/http_challenge/${c.hostname}>) to attest again`;
  }
  if (/challenge verification failed/.test(said)) {
    return `the server could not fetch ${url}: check that ${c.hostname} resolves, from the server, to this node and that the port is reachable from it (firewall, proxy)`;
  }
  return undefined;
}
