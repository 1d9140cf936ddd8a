/**
 * The life of a background loop that runs until stopped (the informer's list/watch, the leader
 * elector's renewals): it starts once, and stopping aborts its signal and waits for it to end.
 */
export class StoppableLoop {
  readonly #stopping = new AbortController();
  #loop: Promise<void> | undefined;

  /** Aborted once stop() is called. */
  get signal(): AbortSignal {
    return this.#stopping.signal;
  }

  get started(): boolean {
    return this.#loop !== undefined;
  }

  /**
   * Runs `body` once in the background. `stopped` is a function, not a narrowed property: the
   * body's awaits may abort the signal. Throws `alreadyStarted` on a second start.
   */
  start(
    alreadyStarted: string,
    body: (signal: AbortSignal, stopped: () => boolean) => Promise<void>,
  ): void {
    if (this.#loop !== undefined) throw new Error(alreadyStarted);
    const signal = this.#stopping.signal;
    this.#loop = body(signal, () => signal.aborted);
  }

  /** Aborts the signal and resolves once the body has returned. */
  async stop(): Promise<void> {
    this.#stopping.abort();
    await this.#loop;
  }
}
