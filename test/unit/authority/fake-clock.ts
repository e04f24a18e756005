/**
 * The shared fake Clock lives in test/helpers (another suite got there first); this
 * re-export keeps the authority tests' import path stable.
 */
export { FakeClock } from '../../helpers/fake-clock.js';
