/** For plugin tests that build no TPM plugin: opening a TPM fails loudly, so a test that needs one says so. */
import type { OpenTpm } from '../../src/tpm/open-tpm.js';

export const noTpm: OpenTpm = () => Promise.reject(new Error('this test opens no TPM'));
