export { EmbeddedAuthority, type EmbeddedAuthorityOptions } from './embedded-authority.js';
export { EmbeddedAuthorityError } from './errors.js';
export { EntriesFileError, parseEntriesFile, deriveEntryId, type EntryDefinition, type EntriesFileProblem } from './entries-file.js';
export type { ReloadResult } from './entries-source.js';
