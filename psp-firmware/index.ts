// Public entry of the platform layer (PSP firmware, RMP, CPU RMP instructions).

export * from './cpu/access.js';
export * from './cpu/codes.js';
export * from './cpu/fault.js';
export * from './cpu/guest-context.js';
export * from './cpu/guest-instructions.js';
export * from './cpu/host-instructions.js';
export * from './cpu/machine.js';
export * from './cpu/vmrun.js';
export * from './memory.js';
export * from './platform.js';
export * from './profile.js';
export * from './rmp/entry.js';
export * from './rmp/layout.js';
export * from './rmp/page-state.js';
export * from './rmp/table.js';
