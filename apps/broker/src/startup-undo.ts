import type { Logger } from './logger.js';

/**
 * What start-up has begun, so a later step that fails undoes all of it:
 * each part is recorded as soon as it has started, and undone in reverse
 * order, the way it was built. One list instead of a hand-written one per
 * failure point, which drifted (a later part added, an earlier failure
 * point not told).
 */
export class StartupUndo {
  readonly #steps: (() => unknown)[] = [];
  readonly #log: Logger;

  constructor(log: Logger) {
    this.#log = log;
  }

  /** Records how to undo a part that has just started. */
  add(undo: () => unknown): void {
    this.#steps.push(undo);
  }

  /** Runs `step`; when it fails, undoes everything begun so far and fails with the step's error. */
  async guard<T>(step: () => Promise<T>): Promise<T> {
    try {
      return await step();
    } catch (error: unknown) {
      await this.undo();
      throw error;
    }
  }

  /** Undoes every recorded part, newest first; a part that fails to stop is logged and the rest still run. */
  async undo(): Promise<void> {
    for (const undo of this.#steps.splice(0).reverse()) {
      try {
        await undo();
      } catch (error: unknown) {
        this.#log.warn('undoing a part of start-up failed', { error: error instanceof Error ? error.message : String(error) });
      }
    }
  }
}
