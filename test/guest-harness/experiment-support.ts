/** Shared pieces of the experiment tests: small scenario documents and a directory of them. */
import { join } from 'node:path';
import { type LoadedScenario, loadScenarioDocuments } from '../../guest-harness/index.js';
import { tempDir, writeJson } from './run-helpers.js';

export { capture as buffers } from './run-helpers.js';

/** CREATE whose RAX claims DebugSwap (0x21): 6.11 compares only the injection bits, 6.15 all of them. */
export const DEBUG_SWAP_RAX = {
  name: 'debug-swap-rax',
  description: 'CREATE with RAX 0x21 while vmsa_features is 0x1',
  steps: [
    { op: 'cpu-offline', cpu: 1 },
    { op: 'vmsa-alloc', page: 'a' },
    { op: 'vmsa-init', page: 'a' },
    { op: 'rmpadjust', page: 'a', vmsa: true },
    { op: 'ap-creation', request: 'create', apic: 1, page: 'a', rax: '0x21' },
    { op: 'wait-marker', page: 'a' },
  ],
};

/** Nothing here depends on the KVM version. */
export const HV_FEATURES = {
  name: 'hv-features',
  description: 'the hypervisor feature bitmap through the MSR protocol',
  steps: [{ op: 'hv-features' }],
};

/** RMPADJUST of an unvalidated page: the CPU's answer is a profile switch (rmpadjustNotValidated). */
export const UNVALIDATED_RMPADJUST = {
  name: 'unvalidated-rmpadjust',
  description: 'RMPADJUST (VMSA bit) on a page whose validation was rescinded',
  steps: [
    { op: 'vmsa-alloc', page: 'a', memory: 'unvalidated' },
    { op: 'rmpadjust', page: 'a', vmsa: true },
  ],
};

/** CREATE of a VMSA whose validation was rescinded: does VMRUN need Validated (vmrunRequiresValidated)? */
export const RESCINDED_VMSA = {
  name: 'rescinded-vmsa',
  description: 'CREATE with a VMSA page whose validation was rescinded after RMPADJUST',
  steps: [
    { op: 'cpu-offline', cpu: 1 },
    { op: 'vmsa-alloc', page: 'a' },
    { op: 'vmsa-init', page: 'a' },
    { op: 'rmpadjust', page: 'a', vmsa: true },
    { op: 'pvalidate', page: 'a', validate: false },
    { op: 'ap-creation', request: 'create', apic: 1, page: 'a' },
    { op: 'wait-marker', page: 'a' },
  ],
};

export function scenarios(...docs: readonly { name: string }[]): LoadedScenario[] {
  return loadScenarioDocuments(docs.map((value) => ({ file: `${value.name}.json`, value })));
}

/** A temporary directory holding the documents as scenario files, and its cleanup. */
export async function scenarioDir(
  ...docs: readonly { name: string }[]
): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const t = await tempDir('experiment');
  for (const doc of docs) await writeJson(join(t.dir, `${doc.name}.json`), doc);
  return t;
}
