/** CI=true (or 1): a missing tool or privilege fails the tests that need it instead of skipping them. */
export function inCI(env: NodeJS.ProcessEnv = process.env): boolean {
  return env['CI'] === 'true' || env['CI'] === '1';
}
