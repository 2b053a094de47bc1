/**
 * Atomic steps. Every concurrent activity of the host (an issuer's VMGEXIT handling, a target's
 * KVM_RUN iteration, a guest action) is a generator that yields between atomic steps, telling the
 * driver what the next step needs: nothing (a preemption point), a mutex, or a condition (a wait).
 * `runSteps` drives one activity to completion synchronously; the scheduler interleaves several.
 */

/** A kernel mutex (`snp_vmsa_mutex`). The driver sets `locked` when it grants the lock. */
export class KvmMutex {
  locked = false;
  constructor(readonly name: string) {}
}

export type StepYield =
  /** A preemption point: the next step needs nothing. */
  | { readonly kind: 'point'; readonly label: string }
  /** The next step starts by acquiring `mutex`; the driver grants it (locked = true) before resuming. */
  | { readonly kind: 'lock'; readonly label: string; readonly mutex: KvmMutex }
  /** The next step runs only once `ready()` holds (e.g. KVM_REQUEST_WAIT: target out of guest mode). */
  | { readonly kind: 'wait'; readonly label: string; readonly ready: () => boolean };

/** An activity: yields before each atomic step, returns its result. */
export type Steps<T> = Generator<StepYield, T, undefined>;

/** A preemption point between two atomic steps. */
export function* point(label: string): Steps<void> {
  yield { kind: 'point', label };
}

/** mutex_lock: the following step holds `mutex` (granted by the driver). */
export function* lock(mutex: KvmMutex, label: string): Steps<void> {
  yield { kind: 'lock', label, mutex };
}

/** mutex_unlock (never blocks, so it is not a step of its own). */
export function unlock(mutex: KvmMutex): void {
  if (!mutex.locked) throw new Error(`unlock of ${mutex.name}, which is not locked`);
  mutex.locked = false;
}

/** Blocks until `ready()`; no step boundary when it already holds. */
export function* waitUntil(label: string, ready: () => boolean): Steps<void> {
  if (ready()) return;
  yield { kind: 'wait', label, ready };
}

/**
 * Runs an activity alone, to completion. In a single-threaded model nothing else can release a
 * lock or satisfy a wait meanwhile, so either would be a deadlock: that is a programming error
 * (use the scheduler for interleavings) and throws.
 */
export function runSteps<T>(steps: Steps<T>): T {
  for (;;) {
    const next = steps.next();
    if (next.done === true) return next.value;
    const y = next.value;
    if (y.kind === 'lock') {
      if (y.mutex.locked) throw new Error(`deadlock: ${y.label} needs ${y.mutex.name}, which is held`);
      y.mutex.locked = true;
    } else if (y.kind === 'wait' && !y.ready()) {
      throw new Error(`deadlock: ${y.label} waits for a condition nothing else can satisfy`);
    }
  }
}
