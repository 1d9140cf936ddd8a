import { errorMessage } from '../util/errors.ts';
import { policyRef } from '../api/policy.ts';
import {
  ADMISSION_POLICY_NAME,
  admissionObjects,
  admissionPlan,
  canonicalJson,
  type AdmissionFallback,
  type AdmissionPlan,
} from '../engine/index.ts';
import type { PolicyCatalog } from './policy-catalog.ts';
import type { Logger } from '../util/logger.ts';

import type { InjectionMode } from '../metrics/index.ts';

/** The operator's writes of its MutatingAdmissionPolicy (src/kube/admission.ts). */
export interface AdmissionWriter {
  apply(objects: readonly unknown[], signal: AbortSignal): Promise<void>;
  remove(name: string, signal: AbortSignal): Promise<void>;
}

/** Where one policy's terms are injected, as its status shows it. */
export type PolicyInjection =
  | { readonly kind: 'admission' }
  | { readonly kind: 'reconciler'; readonly why: AdmissionFallback | 'notServed' | 'disabled' };

/**
 * Keeps the operator's one MutatingAdmissionPolicy in step with the Enforce policies of the
 * catalog: regenerated whenever they change, written only when its text changes, removed
 * when no policy is left to admit. Writes run one at a time; the last plan wins.
 */
export class AdmissionSync {
  readonly mode: InjectionMode;
  readonly #writer: AdmissionWriter | undefined;
  readonly #log: Logger;
  #plan: AdmissionPlan = { spec: null, admitted: [], fallback: {} };
  #written: string | undefined;
  #chain: Promise<void> = Promise.resolve();
  readonly #abort = new AbortController();

  readonly #off: 'notServed' | 'disabled';
  #catalog: PolicyCatalog | undefined;
  #heldBack: readonly string[] = [];

  /**
   * `writer` undefined: injection at admission is off, because the API server does not
   * serve MutatingAdmissionPolicy (`notServed`) or `--injection=reconciler` (`disabled`).
   */
  constructor(
    writer: AdmissionWriter | undefined,
    log: Logger,
    off: 'notServed' | 'disabled' = 'notServed',
  ) {
    this.#writer = writer;
    this.#off = off;
    this.mode = writer === undefined ? 'reconciler' : 'admission';
    this.#log = log;
  }

  /** Where a policy's terms are injected. */
  injectionOf(ref: string): PolicyInjection {
    if (this.mode === 'reconciler') return { kind: 'reconciler', why: this.#off };
    const why = this.#plan.fallback[ref];
    return why === undefined ? { kind: 'admission' } : { kind: 'reconciler', why };
  }

  /** The catalog changed: regenerate, and write when the result differs from what was written. */
  policiesChanged(catalog: PolicyCatalog): void {
    this.#catalog = catalog;
    const writer = this.#writer;
    if (writer === undefined) return;
    const entries = [...catalog.all()];
    const invalid = entries.flatMap((e) => (e.kind === 'invalid' ? [policyRef(e.source)] : []));
    const known = entries.flatMap((e) => (e.kind === 'valid' ? [e.policy.ref] : []));
    const plan = admissionPlan(catalog.active(), invalid, { heldBack: this.#heldBack, known });
    this.#plan = plan;
    const text = plan.spec === null ? '' : canonicalJson(plan.spec);
    this.#chain = this.#chain.then(async () => {
      if (text === this.#written) return;
      try {
        if (plan.spec === null) await writer.remove(ADMISSION_POLICY_NAME, this.#abort.signal);
        else await writer.apply(admissionObjects(plan.spec), this.#abort.signal);
        this.#written = text;
        this.#log.info('admission policy written', {
          admitted: plan.admitted.length,
          fallback: Object.keys(plan.fallback).length,
        });
      } catch (error) {
        // The reconciler still brings every workload in line; the next change retries.
        this.#written = undefined;
        this.#log.error('admission policy not written', {
          error: errorMessage(error),
        });
      }
    });
  }

  /**
   * The workloads (`Kind/namespace/name`) whose template write the reconciler holds back
   * because its rollout could not finish: admission leaves them alone, so that an owner's
   * update does not bring in the terms the reconciler judged it could not roll out.
   */
  heldBackChanged(keys: Iterable<string>): void {
    const sorted = [...keys].sort();
    if (sorted.join('\n') === this.#heldBack.join('\n')) return;
    this.#heldBack = sorted;
    if (this.#catalog !== undefined) this.policiesChanged(this.#catalog);
  }

  /** Waits for writes in flight (tests, shutdown). */
  async settled(): Promise<void> {
    await this.#chain;
  }

  stop(): void {
    this.#abort.abort();
  }
}
