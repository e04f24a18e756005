/** spire-agent reads a cache size of 0 (or less) as its default of 1000 (pkg/agent/manager/cache). */
export const DEFAULT_CACHE_SIZE = 1000;

export function cacheLimit(configured: number): number {
  return configured > 0 ? configured : DEFAULT_CACHE_SIZE;
}
