/**
 * Leader election on a coordination.k8s.io/v1 Lease, after client-go's leaderelection:
 * acquire a free or expired lease, renew it every retry period, step down when renewals fail
 * for renewDeadline, and on a graceful stop clear the holder so a standby takes over at once.
 *
 * Expiry is judged by the local clock from when this process last saw the lease change, not
 * from the renewTime written by another machine, so clock skew between nodes does not matter.
 *
 * Long because acquiring, renewing, stepping down and releasing are one state machine over
 * one Lease.
 */
import { V1MicroTime, type CoordinationV1Api, type V1Lease } from '@kubernetes/client-node';

import type { ApiHealthReporter } from './api-health.ts';
import { requestOptions } from './client.ts';
import { StoppableLoop } from './stoppable-loop.ts';
import { apiFailure } from './failure.ts';
import type { Plain } from './json.ts';
import { realWallClock, type WallClock } from '../util/clock.ts';
import { silentLogger, type Logger } from '../util/logger.ts';

/** The Lease calls the elector makes (CoordinationV1Api has them; tests may fake them). */
export type LeaseClient = Pick<
  CoordinationV1Api,
  'readNamespacedLease' | 'createNamespacedLease' | 'replaceNamespacedLease'
>;

export interface LeaderElectorOptions {
  readonly coordination: LeaseClient;
  readonly namespace: string;
  readonly name: string;
  /** Unique per replica, usually the pod name. */
  readonly identity: string;
  /** How long a lease stays valid without renewal. Default 15 s. */
  readonly leaseDurationMs?: number;
  /** How long the leader keeps retrying a failed renewal before it steps down. Default 10 s. */
  readonly renewDeadlineMs?: number;
  /** Interval between attempts to acquire or renew. Default 2 s. */
  readonly retryPeriodMs?: number;
  readonly clock?: WallClock;
  readonly onStartedLeading?: () => void;
  /** Called when leadership is lost or given up; the elector then competes again unless stopped. */
  readonly onStoppedLeading?: () => void;
  /** Called when the observed holder changes (empty string: nobody). */
  readonly onNewLeader?: (identity: string) => void;
  readonly logger?: Logger;
  /**
   * Told of every failed and successful Lease call. With one, a failure logs at debug only
   * (the reporter says once what is wrong); without, each warns.
   */
  readonly health?: ApiHealthReporter;
}

/** What a candidate may do with the lease it sees. */
export type LeaseDecision = 'renew' | 'take' | 'wait';

/**
 * Decides from the observed holder and when it was last seen to change: the holder renews,
 * anyone takes a free lease or one unchanged for a whole lease duration, others wait.
 */
export function leaseDecision(input: {
  readonly identity: string;
  readonly holder: string;
  readonly observedAtMs: number;
  readonly leaseDurationMs: number;
  readonly nowMs: number;
}): LeaseDecision {
  if (input.holder === input.identity) return 'renew';
  if (input.holder === '') return 'take';
  return input.observedAtMs + input.leaseDurationMs <= input.nowMs ? 'take' : 'wait';
}

/** ok: we hold it now; held: another holder's lease is valid; conflict: a concurrent write won. */
type Attempt = 'ok' | 'held' | 'conflict' | 'error';

type LeaseSpec = Plain<NonNullable<V1Lease['spec']>>;
const leaseBody = (lease: Plain<V1Lease>): V1Lease => lease;

/** Reads MicroTime as client-node hands it back (a string; its types say Date). */
const timeText = (value: unknown): string =>
  value instanceof Date ? value.toISOString() : typeof value === 'string' ? value : '';

export class LeaderElector {
  readonly #api: LeaseClient;
  readonly #namespace: string;
  readonly #name: string;
  readonly #identity: string;
  readonly #leaseDurationMs: number;
  readonly #renewDeadlineMs: number;
  readonly #retryPeriodMs: number;
  readonly #clock: WallClock;
  readonly #options: LeaderElectorOptions;
  readonly #logger: Logger;
  readonly #loop = new StoppableLoop();
  #leading = false;
  #lastRenewMs = 0;
  /** The lease record last seen (holder, renewTime, transitions) and when it was first seen so. */
  #observed = '';
  #observedAtMs = 0;
  #holder = '';

  constructor(options: LeaderElectorOptions) {
    this.#api = options.coordination;
    this.#namespace = options.namespace;
    this.#name = options.name;
    this.#identity = options.identity;
    this.#leaseDurationMs = options.leaseDurationMs ?? 15_000;
    this.#renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.#retryPeriodMs = options.retryPeriodMs ?? 2_000;
    if (!(
      this.#leaseDurationMs > this.#renewDeadlineMs && this.#renewDeadlineMs > this.#retryPeriodMs
    )) {
      throw new Error('leader election needs leaseDuration > renewDeadline > retryPeriod');
    }
    this.#clock = options.clock ?? realWallClock;
    this.#options = options;
    this.#logger = options.logger ?? silentLogger;
  }

  /** True while this replica holds the lease and renewed it within renewDeadline. */
  get isLeader(): boolean {
    return this.#leading && this.#clock.now() - this.#lastRenewMs < this.#renewDeadlineMs;
  }

  /** The holder last observed; empty when none. */
  get leader(): string {
    return this.#holder;
  }

  /** Starts competing for the lease; returns at once. */
  start(): void {
    this.#loop.start('leader elector already started', (signal, stopped) =>
      this.#run(signal, stopped),
    );
  }

  /** Stops competing; a leader releases the lease first so a standby can take it at once. */
  stop(): Promise<void> {
    return this.#loop.stop();
  }

  async #run(signal: AbortSignal, stopped: () => boolean): Promise<void> {
    while (!stopped()) {
      if (!this.#leading) {
        const attemptedAt = this.#clock.now();
        // A candidate loses nothing by waiting for a slow answer: give it the renew deadline.
        if ((await this.#attempt(this.#renewDeadlineMs)) === 'ok') {
          this.#leading = true;
          // From when the renewTime was written, not when the answer came: others count from it.
          this.#lastRenewMs = attemptedAt;
          this.#logger.info('became leader', {
            lease: this.#leaseName(),
            identity: this.#identity,
          });
          this.#options.onStartedLeading?.();
          continue;
        }
        await this.#clock.sleep(this.#retryPeriodMs, signal);
        continue;
      }
      await this.#clock.sleep(this.#retryPeriodMs, signal);
      if (stopped()) break;
      const attemptedAt = this.#clock.now();
      const remainingMs = this.#lastRenewMs + this.#renewDeadlineMs - attemptedAt;
      const attempt: Attempt = remainingMs > 0 ? await this.#attempt(remainingMs) : 'error';
      if (attempt === 'ok') {
        this.#lastRenewMs = attemptedAt;
      } else if (
        // Another valid holder: step down now, two leaders must not overlap. A failed or
        // conflicting write is retried until the deadline.
        attempt === 'held' ||
        this.#clock.now() - this.#lastRenewMs >= this.#renewDeadlineMs
      ) {
        this.#stepDown(
          attempt === 'held' ? 'another holder took the lease' : 'renewal deadline passed',
        );
      }
    }
    if (this.#leading) {
      await this.#release();
      this.#stepDown('stopped');
    }
  }

  #stepDown(why: string): void {
    this.#leading = false;
    this.#logger.info('stopped leading', {
      lease: this.#leaseName(),
      identity: this.#identity,
      why,
    });
    this.#options.onStoppedLeading?.();
  }

  #leaseName(): string {
    return `${this.#namespace}/${this.#name}`;
  }

  /** Notes the lease as seen now; its expiry clock restarts whenever the record changes. */
  #observe(lease: V1Lease): void {
    const spec = lease.spec;
    const holder = spec?.holderIdentity ?? '';
    const record = JSON.stringify([holder, timeText(spec?.renewTime), spec?.leaseTransitions ?? 0]);
    if (record !== this.#observed) {
      this.#observed = record;
      this.#observedAtMs = this.#clock.now();
    }
    if (holder !== this.#holder) {
      this.#holder = holder;
      this.#options.onNewLeader?.(holder);
    }
  }

  /** One attempt; the health reporter hears of it only when all of its calls got through. */
  async #attempt(timeoutMs: number): Promise<Attempt> {
    const attempt = await this.#tryAcquireOrRenew(timeoutMs);
    if (attempt !== 'error') this.#options.health?.ok(this.#source());
    return attempt;
  }

  async #tryAcquireOrRenew(timeoutMs: number): Promise<Attempt> {
    const options = requestOptions({ timeoutMs });
    const now = this.#clock.now();
    const name = this.#name;
    const namespace = this.#namespace;
    let lease: V1Lease;
    try {
      lease = await this.#api.readNamespacedLease({ name, namespace }, options);
    } catch (error) {
      const failure = apiFailure(error);
      if (failure.status !== 404) return this.#failed('read', error);
      return this.#write('create', () =>
        this.#api.createNamespacedLease(
          {
            namespace,
            body: leaseBody({
              metadata: { name, namespace },
              spec: this.#spec(now, undefined, false),
            }),
          },
          options,
        ),
      );
    }
    this.#observe(lease);
    const durationMs = (lease.spec?.leaseDurationSeconds ?? this.#leaseDurationMs / 1000) * 1000;
    const decision = leaseDecision({
      identity: this.#identity,
      holder: lease.spec?.holderIdentity ?? '',
      observedAtMs: this.#observedAtMs,
      leaseDurationMs: durationMs,
      nowMs: now,
    });
    if (decision === 'wait') return 'held';
    return this.#write('update', () =>
      this.#api.replaceNamespacedLease(
        {
          name,
          namespace,
          body: leaseBody({
            metadata: lease.metadata ?? { name, namespace },
            spec: this.#spec(now, lease, decision === 'renew'),
          }),
        },
        options,
      ),
    );
  }

  /** Writes the lease; 409: someone else wrote it since we read it, and the next read tells who. */
  async #write(what: 'create' | 'update', write: () => Promise<V1Lease>): Promise<Attempt> {
    try {
      this.#observe(await write());
      return 'ok';
    } catch (error) {
      return apiFailure(error).status === 409 ? 'conflict' : this.#failed(what, error);
    }
  }

  /**
   * The spec this replica writes: a renewal keeps acquireTime and the transition count, a
   * takeover counts one more transition, a new lease starts at zero.
   */
  #spec(now: number, previous: V1Lease | undefined, renewing: boolean): LeaseSpec {
    const transitions = previous?.spec?.leaseTransitions ?? 0;
    const acquireTime = renewing ? previous?.spec?.acquireTime : undefined;
    return {
      holderIdentity: this.#identity,
      leaseDurationSeconds: Math.ceil(this.#leaseDurationMs / 1000),
      acquireTime: acquireTime ?? new V1MicroTime(now),
      renewTime: new V1MicroTime(now),
      leaseTransitions: previous === undefined || renewing ? transitions : transitions + 1,
    };
  }

  #failed(what: string, error: unknown): Attempt {
    const health = this.#options.health;
    const meta = {
      lease: this.#leaseName(),
      identity: this.#identity,
      error:
        health === undefined
          ? apiFailure(error).message
          : health.failed(this.#source(), error).cause,
    };
    if (health === undefined) this.#logger.warn(`lease ${what} failed`, meta);
    else this.#logger.debug(`lease ${what} failed`, meta);
    return 'error';
  }

  /** The name the health reporter knows this elector's calls by. */
  #source(): string {
    return `lease ${this.#leaseName()}`;
  }

  /** Clears the holder (client-go's ReleaseOnCancel), if the lease is still ours. */
  async #release(): Promise<void> {
    const options = requestOptions({ timeoutMs: this.#renewDeadlineMs });
    try {
      const lease = await this.#api.readNamespacedLease(
        { name: this.#name, namespace: this.#namespace },
        options,
      );
      if (lease.spec?.holderIdentity !== this.#identity) return;
      const now = new V1MicroTime(this.#clock.now());
      await this.#api.replaceNamespacedLease(
        {
          name: this.#name,
          namespace: this.#namespace,
          // The holder cleared, as client-go releases: a standby sees a free lease at once.
          body: leaseBody({
            metadata: lease.metadata ?? { name: this.#name, namespace: this.#namespace },
            spec: {
              holderIdentity: '',
              leaseDurationSeconds: 1,
              acquireTime: now,
              renewTime: now,
              leaseTransitions: lease.spec.leaseTransitions ?? 0,
            },
          }),
        },
        options,
      );
    } catch (error) {
      this.#failed('release', error);
    }
  }
}
