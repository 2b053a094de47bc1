export * as guestHarness from './guest-harness/index.js';
export * as host from './host/index.js';
export * as firmware from './psp-firmware/index.js';
